"""The LSTM segment features: statistics of a track's frame posteriors (and the track mean of its frames)."""

from __future__ import annotations

import numpy as np

from ..features import initial_segment_features

__all__ = ["initial_segment_features", "segment_features", "segment_statistics"]


# --------------------------------------------------------------------------- features
def segment_statistics(posteriors: np.ndarray, k: float) -> np.ndarray:
    """The paper's segment statistics of one track's frame posteriors.

    Parameters
    ----------
    posteriors : np.ndarray, shape (T, C)
    k : float
        Threshold of the last statistic.

    Returns
    -------
    np.ndarray, shape (4C,), float64
        ``[max_t p_t, min_t p_t, mean_t p_t, mean_t 1(p_t > k)]``, each a block of C
        values in class order.
    """
    p = np.asarray(posteriors, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"expected a non-empty (T, C) matrix, got shape {p.shape}")
    return np.concatenate([p.max(axis=0), p.min(axis=0), p.mean(axis=0), (p > k).mean(axis=0)])


def segment_features(posteriors_list, k: float) -> np.ndarray:
    """:func:`segment_statistics` of every track, stacked: ``(n_tracks, 4C)``."""
    return np.stack([segment_statistics(p, k) for p in posteriors_list])
