"""Frame features: second-order scattering (the paper's) and the pretrained musicnn tagger's.

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
    "iter_scattering_features",
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
    """Metadata of each feature column produced under ``config``.

    A musicnn column has ``order`` -1, NaN frequencies, ``n1`` its index in the
    tagger's output and ``n2`` -1; ``--features both`` lists the scattering columns first.
    """
    parts = []
    if config.uses_scattering:
        parts.append(_scattering_channels(config))
    if config.uses_musicnn:
        from .musicnn.frames import output_width

        width = output_width(config.musicnn_output)
        parts.append({"order": np.full(width, -1), "xi1_hz": np.full(width, np.nan),
                      "xi2_hz": np.full(width, np.nan), "n1": np.arange(width), "n2": np.full(width, -1)})
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _scattering_channels(config: FeatureConfig) -> dict:
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
    """Frame features of a mono signal, of the config's family.

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
    if config.family == "scattering":
        return _features(compute_raw(signal, sample_rate, config), config, info)
    data = np.concatenate(list(iter_features([_check_signal(signal, sample_rate, config)], config)), axis=0)
    return FrameFeatures(data=data, channels=channel_metadata(config), config=config, info=dict(info or {}))


def _features(raw: np.ndarray, config: FeatureConfig, info: dict | None) -> FrameFeatures:
    meta = raw_channel_meta(config.J, config.Q1, config.Q2)
    data = postprocess(raw, meta, config)
    return FrameFeatures(data=data, channels=channel_metadata(config), config=config, info=dict(info or {}))


def compute_features_from_file(path, config: FeatureConfig = DEFAULT_CONFIG, info: dict | None = None,
                               max_duration: float | None = None) -> FrameFeatures:
    """Frame features of an audio file, decoded and transformed as a stream.

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
    from ..pipeline import FrameSource

    source = FrameSource(path, config, max_duration=max_duration)
    data = np.concatenate(list(source), axis=0)
    a = source.info
    described = {"source_path": str(path), "duration": a.duration, "native_rate": a.native_rate,
                 "native_samples": a.native_samples, "channels": a.channels, "codec": a.codec,
                 "silent": a.silent}
    return FrameFeatures(data=data, channels=channel_metadata(config), config=config,
                         info={**described, **(info or {})})


def iter_features(blocks, config: FeatureConfig = DEFAULT_CONFIG):
    """Frames of ``config``'s family of a signal arriving in blocks, yielded as they complete.

    Memory stays flat in the signal's length for every family; concatenated, the chunks
    equal :func:`compute_features`'s ``data``. See :func:`iter_scattering_features` and
    :func:`genreseg.features.musicnn.frames.iter_musicnn_features`; ``"both"`` pairs the
    two streams frame by frame from one pass over the blocks.
    """
    if config.family == "scattering":
        return iter_scattering_features(blocks, config)
    from .musicnn.frames import iter_musicnn_features

    if config.family == "musicnn":
        return iter_musicnn_features(blocks, config)
    return _iter_both(blocks, config)


def _iter_both(blocks, config: FeatureConfig):
    """Scattering and musicnn frames side by side, each block decoded once and fed to both."""
    from .musicnn.frames import MusicnnFrameStream

    musicnn = MusicnnFrameStream(config)
    learnt: list = []  # musicnn frames not yet paired

    def shared_blocks():
        for block in blocks:
            learnt.append(musicnn.push(block))
            yield block
        learnt.append(musicnn.finish())  # runs when the scattering stream asks past the last block

    scattered: list = []
    for chunk in iter_scattering_features(shared_blocks(), config):
        scattered.append(chunk)
        paired = _pair(scattered, learnt)
        if len(paired):
            yield paired
    paired = _pair(scattered, learnt)
    left = sum(len(x) for x in scattered), sum(len(x) for x in learnt)
    if left != (0, 0):  # both families count ceil(n / hop) frames: a difference is a bug
        raise RuntimeError(f"scattering and musicnn frame counts differ by {left[0] - left[1]}")
    if len(paired):
        yield paired


def _pair(a: list, b: list) -> np.ndarray:
    """Take as many frames from the fronts of ``a`` and ``b`` as both have; concatenate side by side."""
    n = min(sum(len(x) for x in a), sum(len(x) for x in b))
    out = []
    for buf in (a, b):
        joined = np.concatenate(buf, axis=0) if buf else np.zeros((0, 0), np.float32)
        out.append(joined[:n])
        buf[:] = [joined[n:]] if len(joined) > n else []
    return np.concatenate(out, axis=1) if n else np.zeros((0, 0), np.float32)


def iter_scattering_features(blocks, config: FeatureConfig = DEFAULT_CONFIG):
    """Scattering frames of a signal arriving in blocks, yielded window by window.

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
