"""Windowed scattering of signals of any length, and the post-processing to features.

Signals are processed in windows of a fixed length ``N = (window_frames + 2 *
context_frames) * hop`` samples, so that one cached backend (one plan, one set of
FFT sizes) serves every track and memory does not grow with track length. The fast
backend treats each window as one period (no padding of its own: the window's
context *is* the padding), and returns a frame at every multiple of the hop.

* **A track that fits in one window** (``n_frames <= window_frames``) is centred in
  it and reflect-padded to ``N``, the way kymatio pads a whole track. When kymatio
  would pad the track to the same ``N`` by a multiple of the hop (for ``N = 2^20``:
  any 29.7-s clip of 655360 samples, or 655360 - 16384 k), the window *is* kymatio's
  padded signal and the output equals kymatio's whole-track transform up to the
  backend's own error. A 30-s GTZAN clip (81 frames) takes one window of ``2^20``.
* **A longer track** is cut into windows of ``window_frames`` output frames, each
  seeing ``C = context_frames * hop`` samples of real signal on either side; the
  track is reflected at both ends. Frames near window joins differ from a
  whole-track transform only through the filter tails beyond ``C``: the low-pass
  phi_T alone has a time standard deviation of T / (2π·0.1) ≈ 1.6 T, so ``C`` must
  be several T. Measured on a gtzan_mini clip against kymatio's whole-track
  transform, the largest per-frame relative L2 difference (orders 1 and 2) is 6e-2
  with C = 4 hops, 4e-3 with 8 and 4e-5 with the default 12 (98304 samples, 4.5 s).
  ``tests/test_features.py`` asserts < 2e-4 on real clips.

Signals arrive as an iterable of blocks (:func:`scatter_blocks`), so a file can be
decoded, resampled and transformed as a stream: a 1-hour file never exists in memory
as a whole, only as the ~2 windows the current one and the end reflection need.

Frame ``m`` is centred on sample ``m * hop`` of the track. (kymatio's own whole-track
grid is offset from that by ``ceil(pad_left / hop) * hop - pad_left`` samples, which
depends on the track length; comparisons use lengths where the offset is zero.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from .config import FeatureConfig


def n_frames(n_samples: int, hop: int) -> int:
    """Number of output frames of a signal: one every ``hop`` samples, as kymatio."""
    return max(1, math.ceil(n_samples / hop))


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices into a signal of length ``n`` reflected at both ends (numpy's/kymatio's "reflect").

    No edge repeat, reflecting again when an index lies more than a signal length
    outside.
    """
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def reflected_window(x: np.ndarray, start: int, length: int, n: int | None = None, offset: int = 0) -> np.ndarray:
    """Samples ``start .. start + length`` of a track, reflected where they fall outside it.

    Parameters
    ----------
    x : np.ndarray
        The samples of the track held in memory: track samples ``offset ..
        offset + len(x)``.
    start, length : int
        The window, in track samples (``start`` may be negative).
    n : int, optional
        Length of the track (where the end reflection happens); defaults to
        ``offset + len(x)``, the end of what ``x`` holds.
    offset : int
        Track index of ``x[0]``.
    """
    n = offset + len(x) if n is None else n
    src = reflect_index(np.arange(start, start + length), n) - offset
    if src.min() < 0 or src.max() >= len(x):
        raise ValueError("window needs samples that are no longer (or not yet) buffered")
    return x[src]


def iter_scatter_blocks(blocks: Iterable[np.ndarray], config: FeatureConfig, backend) -> Iterator[np.ndarray]:
    """Raw scattering of a signal that arrives in blocks, yielded window by window.

    Parameters
    ----------
    blocks : iterable of np.ndarray
        Consecutive pieces of one mono float32 signal at ``config.sample_rate``.
    config : FeatureConfig
    backend : callable
        Maps ``(1, config.window_samples)`` to ``(1, n_raw_channels, frames)`` with a
        frame at every multiple of the hop of the window.

    Yields
    ------
    np.ndarray, shape (n_window_frames, n_raw_channels), float32
        Raw coefficients of consecutive frames, frame-major; concatenated they are
        the whole track's (:func:`scatter_blocks`).
    """
    hop, F, c = config.hop, config.window_frames, config.context_frames
    N, C = config.window_samples, c * hop
    buf, offset, n_seen = np.zeros(0, np.float32), 0, 0
    k = 0

    def run(start, first_window_frame, count, n):
        raw = backend(reflected_window(buf, start, N, n, offset)[None])[0]
        return raw[:, first_window_frame:first_window_frame + count].T

    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        buf = np.concatenate([buf, block]) if len(buf) else block
        n_seen += len(block)
        if n_seen <= F * hop:
            continue  # may still be a one-window track: wait for more, or the end
        # Longer than one window: run every window whose samples have all arrived.
        while k * F * hop - C + N <= n_seen:
            yield run(k * F * hop - C, c, F, n_seen)
            k += 1
            # The end reflection of a later window reaches back at most F hops
            # before its start (it holds at least one frame), so keep from there.
            keep_from = max(k * F * hop - C - F * hop, 0)
            if keep_from > offset:
                buf, offset = buf[keep_from - offset:], keep_from
    if n_seen == 0:
        raise ValueError("empty signal")
    total = n_frames(n_seen, hop)
    if total <= F:  # one window, the track centred in it as kymatio pads a whole track
        P = (F + 2 * c - total) // 2
        yield run(-P * hop, P, total, n_seen)
    else:  # the windows whose samples arrived only with the end
        for w in range(k, math.ceil(total / F)):
            yield run(w * F * hop - C, c, min(F, total - w * F), n_seen)


def scatter_blocks(blocks: Iterable[np.ndarray], config: FeatureConfig, backend) -> np.ndarray:
    """Raw scattering ``(n_frames, n_raw_channels)`` of a signal that arrives in blocks.

    The frames of :func:`iter_scatter_blocks`, concatenated.
    """
    return np.concatenate(list(iter_scatter_blocks(blocks, config, backend)), axis=0)


def scatter_windows(x: np.ndarray, config: FeatureConfig, backend) -> np.ndarray:
    """Raw scattering of a whole in-memory signal; see :func:`scatter_blocks`."""
    return scatter_blocks([x], config, backend)


def select_channels(meta: dict, config: FeatureConfig) -> np.ndarray:
    """Raw channel indices kept as features (zeroth order and low bands by config)."""
    order = meta["order"]
    keep = order > 0 if not config.keep_zeroth else np.ones_like(order, dtype=bool)
    if config.min_frequency_hz > 0:
        # xi1 of a second-order channel is its first-order parent's centre frequency.
        low = (order > 0) & (meta["xi1"] * config.sample_rate < config.min_frequency_hz)
        keep &= ~low
    return np.flatnonzero(keep)


def postprocess(raw: np.ndarray, meta: dict, config: FeatureConfig) -> np.ndarray:
    """Renormalise, select and log raw scattering frames.

    Parameters
    ----------
    raw : np.ndarray, shape (n_frames, n_raw_channels)
    meta : dict
        :func:`genreseg.features.backends.raw_channel_meta` of the transform.
    config : FeatureConfig

    Returns
    -------
    np.ndarray, shape (n_frames, n_features), float32
        ``log(S + log_eps)`` of the kept channels; second order divided by its
        first-order parent when ``config.renormalize``.
    """
    # float32 throughout, in place: a 1-hour file's frames are ~30 MB a copy.
    S = np.array(raw, dtype=np.float32)
    order = meta["order"]
    # Orders 1 and 2 are low-passed moduli, non-negative up to rounding; the zeroth
    # order is a low-passed signal and can be negative, so it enters as |S0|.
    S[:, order > 0] = np.maximum(S[:, order > 0], 0.0)
    S[:, order == 0] = np.abs(S[:, order == 0])
    if config.renormalize:
        second = np.flatnonzero(order == 2)
        S[:, second] = S[:, second] / (S[:, meta["parent"][second]] + config.renorm_eps)
    keep = select_channels(meta, config)
    if len(keep) < S.shape[1]:
        S = S[:, keep]
    S += np.float32(config.log_eps)
    return np.log(S, out=S)
