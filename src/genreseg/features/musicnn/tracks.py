"""musicnn over whole tracks: the mid end once per track, the back end per window.

The mid end is fully convolutional in time, so a track's ``(T, 753)`` mid-end
features can be computed once (:func:`midend_of_long`, in chunks with context so that
memory stays bounded) and pooled over any windows afterwards
(:func:`windowed_outputs`). One difference from musicnn's own extractor: it zero-pads
every 187-frame patch at its edges, while a whole-track mid end sees the neighbouring
frames; the two agree away from patch edges (73 frames in), and exactly for a patch
that is the whole input.
"""

from __future__ import annotations

import numpy as np
import torch

from .model import MIDEND_DIM, Musicnn, load_musicnn, pool_over_time
from .ops import same_padding

__all__ = ["MIDEND_CONTEXT", "RECEPTIVE_RADIUS", "midend_of_long", "windowed_outputs"]

#: Frames on each side that one mid-end output depends on: the 128-tap temporal
#: convolution's "same" padding (63 before, 64 after) plus 3 per 7-tap mid-end layer.
RECEPTIVE_RADIUS = max(same_padding(128)) + 3 * 3  # 73
#: Context added to each side of a chunk by :func:`midend_of_long`: generous, so that
#: a change of architecture constant cannot silently make chunks inexact.
MIDEND_CONTEXT = 128


def _model(model: Musicnn | str) -> Musicnn:
    return load_musicnn(model) if isinstance(model, str) else model


@torch.no_grad()
def midend_of_long(
    log_mel: np.ndarray | torch.Tensor,
    chunk: int = 4096,
    context: int = MIDEND_CONTEXT,
    model: Musicnn | str = "MSD_musicnn",
) -> torch.Tensor:
    """Mid-end features of a whole track, ``(T, 96)`` -> ``(T, 753)``, in chunks.

    Each chunk of ``chunk`` frames is computed with ``context`` real frames on each
    side (fewer at the track's ends, where the zero padding is the true one), then
    trimmed: the result equals one pass ``model.midend(log_mel[None])[0]`` while the
    working memory depends on ``chunk`` only.

    Parameters
    ----------
    log_mel : array or tensor, shape (T, 96)
        From :func:`genreseg.features.musicnn.log_mel`.
    chunk : int
        Output frames per pass.
    context : int
        Frames of context on each side; at least :data:`RECEPTIVE_RADIUS`.
    model : Musicnn or str
        A model or the name of a pretrained one.
    """
    if context < RECEPTIVE_RADIUS:
        raise ValueError(f"context must be >= {RECEPTIVE_RADIUS} frames, got {context}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    net = _model(model)
    x = torch.as_tensor(log_mel, dtype=torch.float32)
    n_time = x.shape[0]
    out = x.new_empty((n_time, MIDEND_DIM))
    for start in range(0, n_time, chunk):
        stop = min(n_time, start + chunk)
        lo, hi = max(0, start - context), min(n_time, stop + context)
        out[start:stop] = net.midend(x[None, lo:hi])[0, start - lo : stop - lo]
    return out


@torch.no_grad()
def windowed_outputs(
    midend: torch.Tensor,
    window: int,
    hop: int,
    model: Musicnn | str = "MSD_musicnn",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Back end over sliding windows of a track's mid-end features.

    Window ``i`` covers frames ``[i * hop, i * hop + window)``; only whole windows are
    used (as musicnn's extractor does), so ``N = 1 + (T - window) // hop``, and
    ``N = 0`` when ``T < window``.

    Parameters
    ----------
    midend : torch.Tensor, shape (T, 753)
        From :func:`midend_of_long` (or ``Musicnn.midend(...)[0]``).
    window, hop : int
        In frames (187 frames = 3 s).
    model : Musicnn or str
        The model whose mid end produced ``midend``, or its name.

    Returns
    -------
    taggram : torch.Tensor, shape (N, 50)
        Sigmoid tag probabilities per window.
    penultimate : torch.Tensor, shape (N, 200)
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be >= 1, got {window}, {hop}")
    net = _model(model)
    n_time = midend.shape[0]
    if n_time < window:
        n_tags, n_units = net.output.out_features, net.dense.out_features
        return midend.new_empty((0, n_tags)), midend.new_empty((0, n_units))
    max_pool, mean_pool = pool_over_time(midend[None], window, hop)
    logits, penultimate = net.head(max_pool[0], mean_pool[0])
    return torch.sigmoid(logits), penultimate
