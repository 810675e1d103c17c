"""Scattering backends: raw second-order time scattering of fixed-length windows.

A backend is built for one window length ``shape`` and maps a batch of windows
``(B, shape)`` float32 to raw coefficients ``(B, n_channels, n_frames)`` in
kymatio's channel order (zeroth order, first order by n1, second order by (n1, n2)),
before any renormalisation or log. Two implementations share that contract:

* ``"kymatio"`` — kymatio 0.3.0's torch frontend, the reference. kymatio pads
  every input itself (a window of ``2^20`` to ``2^21``), so in the pipeline its
  frames equal the fast backend's up to the window-context tolerance of
  :mod:`genreseg.features.framing`, not exactly;
* ``"fast"`` — :mod:`genreseg.features.fast`, our band-limited implementation,
  tested against the reference; in the pipeline it treats each window as one
  period (``periodic=True``), which makes a 30-s clip one ``2^20`` window.

Building a backend is expensive (kymatio: 10–20 s), so :func:`get_backend` caches one
per process and per (settings, window length).
"""

from __future__ import annotations

import functools

import numpy as np

from ..runtime import resolve_device
from .config import FeatureConfig
from .filter_bank import ALPHA, R_PSI, SIGMA0
from .kymatio_compat import kymatio_1d


class KymatioBackend:
    """Reference backend: kymatio's ``Scattering1D`` (torch frontend, float32)."""

    name = "kymatio"

    def __init__(self, J: int, Q: tuple[int, int], shape: int, oversampling: int, device: str = "cpu"):
        import torch

        from .kymatio_compat import import_scattering1d

        Scattering1D = import_scattering1d()
        self.device = resolve_device(device)
        self.shape = shape
        self._torch = torch
        self._scattering = Scattering1D(J=J, shape=shape, Q=Q, oversampling=oversampling, max_order=2)
        if self.device != "cpu":
            self._scattering = self._scattering.to(self.device)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.shape:
            raise ValueError(f"expected windows of shape (B, {self.shape}), got {x.shape}")
        with self._torch.no_grad():
            out = self._scattering(self._torch.from_numpy(x).to(self.device))
        return out.cpu().numpy()


def _build(name: str, J: int, Q: tuple[int, int], shape: int, oversampling: int, device: str):
    if name == "kymatio":
        return KymatioBackend(J, Q, shape, oversampling, device)
    if name == "fast":
        from .fast import FastScattering1D

        # The pipeline's windows carry their own context: one period each, no padding.
        return FastScattering1D(J=J, Q=Q, shape=shape, oversampling=oversampling, device=resolve_device(device),
                                periodic=True)
    raise ValueError(f"unknown scattering backend {name!r}")


@functools.lru_cache(maxsize=4)
def _cached_backend(name, J, Q, shape, oversampling, device):
    return _build(name, J, Q, shape, oversampling, device)


def get_backend(config: FeatureConfig, shape: int | None = None):
    """The process-wide backend for ``config`` and window length ``shape``.

    Parameters
    ----------
    config : FeatureConfig
    shape : int, optional
        Window length in samples; defaults to ``config.window_samples``.
    """
    shape = config.window_samples if shape is None else shape
    return _cached_backend(config.backend, config.J, (config.Q1, config.Q2), shape, config.oversampling,
                           resolve_device(config.device))


@functools.lru_cache(maxsize=8)
def raw_channel_meta(J: int, Q1: int, Q2: int) -> dict:
    """Per-channel metadata of the raw transform, in backend channel order.

    Returns
    -------
    dict of np.ndarray
        ``order`` (0/1/2), ``xi1``/``xi2`` (centre frequency in cycles per sample of
        the first/second wavelet, NaN where absent), ``n1``/``n2`` (filter indices,
        -1 where absent), ``parent`` (raw index of the first-order parent of a
        second-order channel, -1 otherwise).
    """
    meta = kymatio_1d("utils").compute_meta_scattering(J, (Q1, Q2), 2**J, 2, R_PSI, SIGMA0, ALPHA)
    order = np.asarray(meta["order"], dtype=np.int64)
    n = np.asarray(meta["n"], dtype=float)
    xi = np.asarray(meta["xi"], dtype=float)
    n1 = np.where(np.isnan(n[:, 0]), -1, n[:, 0]).astype(np.int64)
    n2 = np.where(np.isnan(n[:, 1]), -1, n[:, 1]).astype(np.int64)
    first_index = {int(n1[i]): i for i in np.flatnonzero(order == 1)}
    parent = np.array([first_index[int(n1[i])] if order[i] == 2 else -1 for i in range(len(order))],
                      dtype=np.int64)
    return {"order": order, "xi1": xi[:, 0], "xi2": xi[:, 1], "n1": n1, "n2": n2, "parent": parent}
