"""Scattering frame features.

>>> from genreseg.audio import load_audio
>>> from genreseg.features import FeatureConfig, compute_features
>>> feats = compute_features(load_audio("blues.00000.wav"), 22050, FeatureConfig())
>>> feats.data.shape          # (n_frames, n_features)
>>> feats.channels["order"]   # 1 or 2 per feature column

A track's *initial segment feature* (the paper's) is ``feats.data.mean(axis=0)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .backends import get_backend, raw_channel_meta
from .config import DEFAULT_CONFIG, FeatureConfig
from .framing import (
    iter_scatter_blocks,
    n_frames,
    postprocess,
    scatter_windows,
    select_channels,
)

__all__ = [
    "DEFAULT_CONFIG",
    "FeatureConfig",
    "FrameFeatures",
    "channel_metadata",
    "compute_features",
    "compute_features_from_file",
    "compute_raw",
    "initial_segment_features",
    "iter_features",
    "n_frames",
]


@dataclass
class FrameFeatures:
    """Frame features of one signal with the metadata that describes them.

    Attributes
    ----------
    data : np.ndarray, shape (n_frames, n_features), float32
    channels : dict of np.ndarray
        Per feature column: ``order`` (1/2, or 0 when kept), ``xi1_hz``/``xi2_hz``
        (wavelet centre frequencies, NaN where absent), ``n1``/``n2`` (filter indices).
    config : FeatureConfig
    info : dict
        Free-form provenance (path, label, duration, content hash, ...).
    """

    data: np.ndarray
    channels: dict
    config: FeatureConfig
    info: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return self.data.shape[0]

    @property
    def times(self) -> np.ndarray:
        """Centre time of each frame in seconds."""
        return np.arange(self.n_frames) * self.config.hop_seconds



def initial_segment_features(sequences) -> np.ndarray:
    """The paper's initial segment feature of each track: the mean of its frames.

    Parameters
    ----------
    sequences : sequence of array, each ``(n_frames_i, D)``

    Returns
    -------
    np.ndarray, shape (n_tracks, D), float64
    """
    return np.stack([np.asarray(s, dtype=np.float64).mean(axis=0) for s in sequences])


def channel_metadata(config: FeatureConfig) -> dict:
    """Metadata of each feature column produced under ``config``."""
    meta = raw_channel_meta(config.J, config.Q1, config.Q2)
    keep = select_channels(meta, config)
    sr = config.sample_rate
    return {
        "order": meta["order"][keep],
        "xi1_hz": meta["xi1"][keep] * sr,
        "xi2_hz": meta["xi2"][keep] * sr,
        "n1": meta["n1"][keep],
        "n2": meta["n2"][keep],
    }


def _check_signal(signal: np.ndarray, sample_rate: int, config: FeatureConfig) -> np.ndarray:
    if sample_rate != config.sample_rate:
        raise ValueError(f"signal is at {sample_rate} Hz but the feature config expects "
                         f"{config.sample_rate} Hz; load it with genreseg.audio.load_audio")
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"expected a mono 1-D signal, got shape {signal.shape}")
    if len(signal) < config.min_samples:
        raise ValueError(f"signal has {len(signal)} samples, fewer than one analysis window "
                         f"({config.min_samples})")
    return signal


def compute_raw(signal: np.ndarray, sample_rate: int, config: FeatureConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Raw scattering frames ``(n_frames, n_raw_channels)``, all orders, before renormalisation and log."""
    signal = _check_signal(signal, sample_rate, config)
    return scatter_windows(signal, config, get_backend(config))


def compute_features(signal: np.ndarray, sample_rate: int, config: FeatureConfig = DEFAULT_CONFIG,
                     info: dict | None = None) -> FrameFeatures:
    """Scattering frame features of a mono signal.

    Parameters
    ----------
    signal : np.ndarray, shape (n_samples,)
        Mono audio; must already be at ``config.sample_rate`` (checked).
    sample_rate : int
        Rate of ``signal``.
    config : FeatureConfig
    info : dict, optional
        Provenance stored with the features.

    Returns
    -------
    FrameFeatures
    """
    return _features(compute_raw(signal, sample_rate, config), config, info)


def _features(raw: np.ndarray, config: FeatureConfig, info: dict | None) -> FrameFeatures:
    meta = raw_channel_meta(config.J, config.Q1, config.Q2)
    data = postprocess(raw, meta, config)
    return FrameFeatures(data=data, channels=channel_metadata(config), config=config, info=dict(info or {}))


def compute_features_from_file(path, config: FeatureConfig = DEFAULT_CONFIG, info: dict | None = None,
                               max_duration: float | None = None) -> FrameFeatures:
    """Scattering frame features of an audio file, decoded and transformed as a stream.

    Equal to ``compute_features(load_audio(path, ...), ...)``, but the file is read,
    resampled and transformed window by window (:class:`genreseg.audio.AudioStream`,
    :func:`iter_features`), so memory does not grow with
    the file's length: a 1-hour file never exists in memory as a whole signal.

    Parameters
    ----------
    path : str or Path
    config : FeatureConfig
    info : dict, optional
        Provenance stored with the features, added to what the file tells
        (``source_path``, ``duration``, ``native_rate``, ``native_samples``, ``channels``,
        ``codec``, ``silent``).
    max_duration : float, optional
        Refuse a file longer than this many seconds. Checked as the audio arrives, so
        a long file is stopped after ``max_duration`` of work, whatever its header says.

    Raises
    ------
    genreseg.errors.AudioError
        The file cannot be used (one line naming it and the reason).
    """
    from ..audio import AudioStream

    stream = AudioStream(path, config.sample_rate, config.min_samples)
    blocks = stream if max_duration is None else _at_most(stream, max_duration, config.sample_rate, path)
    data = np.concatenate(list(iter_features(blocks, config)), axis=0)
    a = stream.info
    described = {"source_path": str(path), "duration": a.duration, "native_rate": a.native_rate,
                 "native_samples": a.native_samples, "channels": a.channels, "codec": a.codec,
                 "silent": a.silent}
    return FrameFeatures(data=data, channels=channel_metadata(config), config=config,
                         info={**described, **(info or {})})


def _at_most(blocks, seconds: float, sample_rate: int, path):
    """Pass ``blocks`` on until they hold more than ``seconds`` of signal, then raise AudioError."""
    from ..errors import AudioError

    limit, seen = int(seconds * sample_rate), 0
    for block in blocks:
        seen += len(block)
        if seen > limit:
            raise AudioError(path, f"too long: more than the limit of {seconds:g} s")
        yield block


def iter_features(blocks, config: FeatureConfig = DEFAULT_CONFIG):
    """Feature frames of a signal arriving in blocks, yielded window by window.

    Memory stays at a window or two whatever the signal's length (the post-processing
    is frame by frame, so each window is finished on its own); concatenated, the
    chunks equal :func:`compute_features`'s ``data``.

    Parameters
    ----------
    blocks : iterable of np.ndarray
        Consecutive float32 mono pieces at ``config.sample_rate``, e.g. a
        :class:`genreseg.audio.AudioStream`.
    config : FeatureConfig

    Yields
    ------
    np.ndarray, shape (n_window_frames, n_features), float32
    """
    meta = raw_channel_meta(config.J, config.Q1, config.Q2)
    for raw in iter_scatter_blocks(blocks, config, get_backend(config)):
        yield postprocess(raw, meta, config)
