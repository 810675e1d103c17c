"""Two classic track-level baselines, run on the same folds as the paper's systems.

``scattering-svm``
    The track mean of the (log, renormalised) scattering frames —
    :meth:`genreseg.store.FeatureSet.segment_features`, the paper's *initial segment
    feature* — standardised and classified by an RBF SVM whose ``C`` and ``gamma`` are
    chosen by a grid search on the training folds only (the recipe of Andén & Mallat,
    "Deep scattering spectrum", with the track mean in place of their per-frame vote).
``mfcc-svm``
    Mean and standard deviation over the track of 20 MFCCs (``librosa.feature.mfcc``)
    and, by default, of their deltas, then the same standardised RBF SVM and search.
``musicnn-svm``
    The peers' recipe with a pretrained tagger: mean and standard deviation over the
    track of musicnn's 200-d penultimate layer on consecutive 3-s patches (as the
    ``musicnn`` package batches a file), then the same standardised RBF SVM and search.

MFCC and musicnn statistics need the audio, not the frame store, so they are computed
here and cached per audio content hash under ``STORE/baselines/`` as ``.npz`` files
(written atomically, read with ``allow_pickle=False``): a rerun reads them instead of
decoding the audio again.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import numpy as np

from .audio import content_hash, load_audio
from .configs import ConfigMixin
from .files import atomic_write_bytes

__all__ = [
    "BASELINES",
    "MFCCConfig",
    "SVMGrid",
    "fit_svm",
    "statistics_cache_path",
    "mfcc_statistics",
    "svm_baseline",
    "track_mfcc_statistics",
    "MusicnnStatsConfig",
    "musicnn_statistics",
    "track_musicnn_statistics",
]

#: Baseline names, in report order.
BASELINES = ("scattering-svm", "mfcc-svm", "musicnn-svm")


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class MFCCConfig(ConfigMixin):
    """Settings of the MFCC statistics.

    Parameters
    ----------
    sample_rate : int
        Audio is resampled to this rate first.
    n_mfcc : int
        Coefficients per frame (20, as in most GTZAN MFCC baselines).
    n_fft, hop_length : int
        STFT size and hop in samples (librosa's defaults: ~93 ms and ~23 ms at 22050 Hz).
    n_mels : int
        Mel bands the cepstrum is taken from.
    deltas : bool
        Also summarise the first-order deltas (``librosa.feature.delta``).
    """

    #: Names this config's cache files (:func:`statistics_cache_path`).
    cache_kind: ClassVar[str] = "mfcc"

    sample_rate: int = 22050
    n_mfcc: int = 20
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    deltas: bool = True

    def __post_init__(self):
        if self.n_mfcc < 1 or self.n_fft < 16 or self.hop_length < 1 or self.n_mels < self.n_mfcc:
            raise ValueError("n_mfcc >= 1, n_fft >= 16, hop_length >= 1 and n_mels >= n_mfcc required")

    @property
    def n_features(self) -> int:
        return 2 * self.n_mfcc * (2 if self.deltas else 1)



@dataclass(frozen=True)
class MusicnnStatsConfig(ConfigMixin):
    """Settings of the musicnn statistics (the peer baseline).

    Parameters
    ----------
    model : {"MSD_musicnn", "MTT_musicnn"}
        The pretrained tagger.
    patch_frames : int
        Mel frames per patch (187: the 3 s the tagger was trained on); patches follow
        one another without overlap, the last partial one dropped, as the ``musicnn``
        package batches a file (a track shorter than a patch is one shorter patch).
    """

    #: Names this config's cache files (:func:`statistics_cache_path`).
    cache_kind: ClassVar[str] = "musicnn"

    model: str = "MSD_musicnn"
    patch_frames: int = 187

    @property
    def n_features(self) -> int:
        return 400


@dataclass(frozen=True)
class SVMGrid(ConfigMixin):
    """The RBF-SVM hyper-parameter search of both baselines.

    Parameters
    ----------
    C_grid : tuple of float
    gamma_grid : tuple of float
        Multiples of ``1 / n_features``, which after standardisation is sklearn's
        ``gamma="scale"``: the grid then means the same whatever the feature size.
    cv_folds : int
        Stratified folds of the search, inside the training fold (lowered to the
        smallest class count; no search when a class has a single track).
    seed : int
        Shuffles the search folds.
    """

    C_grid: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
    gamma_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    cv_folds: int = 5
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "C_grid", tuple(float(c) for c in self.C_grid))
        object.__setattr__(self, "gamma_grid", tuple(float(g) for g in self.gamma_grid))
        if not self.C_grid or not self.gamma_grid or min(self.C_grid + self.gamma_grid) <= 0:
            raise ValueError("C_grid and gamma_grid must be non-empty and positive")
        if self.cv_folds < 2:
            raise ValueError("cv_folds must be >= 2")



# --------------------------------------------------------------------------- MFCC statistics
def mfcc_statistics(signal: np.ndarray, config: MFCCConfig = MFCCConfig()) -> np.ndarray:
    """Track-level MFCC statistics of a mono signal at ``config.sample_rate``.

    Parameters
    ----------
    signal : np.ndarray, shape (n_samples,)
    config : MFCCConfig

    Returns
    -------
    np.ndarray, shape (config.n_features,), float64
        ``[mean(mfcc), std(mfcc)]`` and, with deltas, ``[mean(delta), std(delta)]``,
        each a block of ``n_mfcc`` values.
    """
    import librosa

    y = np.asarray(signal, dtype=np.float32)
    mfcc = librosa.feature.mfcc(y=y, sr=config.sample_rate, n_mfcc=config.n_mfcc, n_fft=config.n_fft,
                                hop_length=config.hop_length, n_mels=config.n_mels)
    blocks = [mfcc.mean(axis=1), mfcc.std(axis=1)]
    if config.deltas:
        # delta's window (odd, default 9) must not exceed the frame count: a very short
        # clip gets a narrower one, and below 3 frames no delta exists at all.
        n = mfcc.shape[1]
        if n >= 3:
            delta = librosa.feature.delta(mfcc, width=min(9, n if n % 2 else n - 1))
        else:
            delta = np.zeros_like(mfcc)
        blocks += [delta.mean(axis=1), delta.std(axis=1)]
    return np.concatenate(blocks).astype(np.float64)


def musicnn_statistics(signal_16k: np.ndarray, config: MusicnnStatsConfig = MusicnnStatsConfig()) -> np.ndarray:
    """Mean and std over a track of musicnn's penultimate layer on consecutive 3-s patches.

    Parameters
    ----------
    signal_16k : np.ndarray, shape (n_samples,)
        Mono audio at 16 kHz (the tagger's rate).
    config : MusicnnStatsConfig

    Returns
    -------
    np.ndarray, shape (400,), float64
    """
    import torch

    from .features.musicnn.mel import log_mel
    from .features.musicnn.model import load_musicnn

    mel = log_mel(np.asarray(signal_16k, dtype=np.float32))
    n = max(1, len(mel) // config.patch_frames)
    patches = mel[: n * config.patch_frames].reshape(n, -1, mel.shape[1]) if len(mel) >= config.patch_frames \
        else mel[None]
    with torch.inference_mode():
        penultimate = load_musicnn(config.model)(torch.from_numpy(np.ascontiguousarray(patches)))["penultimate"]
    p = penultimate.numpy().astype(np.float64)
    return np.concatenate([p.mean(axis=0), p.std(axis=0)])


def statistics_cache_path(cache_dir, audio_hash: str, config) -> Path:
    """Cache file of one track's statistics: ``<audio hash>-<kind>-<config hash>.npz``."""
    return Path(cache_dir) / f"{audio_hash}-{config.cache_kind}-{config.hash}.npz"


def _read_cached(path: Path, config) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            stats = np.asarray(z["stats"], dtype=np.float64)
    except (OSError, ValueError, KeyError):
        return None  # missing or torn: recompute
    return stats if stats.shape == (config.n_features,) else None


def _write_cached(path: Path, stats: np.ndarray, info: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, stats=np.asarray(stats, dtype=np.float64), info_json=np.array(json.dumps(info, sort_keys=True)))
    atomic_write_bytes(path, buf.getvalue())


def track_musicnn_statistics(paths, cache_dir, config: MusicnnStatsConfig = MusicnnStatsConfig(), hashes=None
                             ) -> tuple[np.ndarray, dict]:
    """:func:`musicnn_statistics` of many files, cached by audio content (see :func:`track_mfcc_statistics`)."""
    from .features.musicnn.mel import MUSICNN_SAMPLE_RATE

    return _track_statistics(paths, cache_dir, config, hashes,
                             lambda path: musicnn_statistics(load_audio(path, MUSICNN_SAMPLE_RATE), config))


def track_mfcc_statistics(paths, cache_dir, config: MFCCConfig = MFCCConfig(), hashes=None
                          ) -> tuple[np.ndarray, dict]:
    """MFCC statistics of many files, cached by audio content.

    Parameters
    ----------
    paths : sequence of path-like
    cache_dir : path-like
        Created if needed (``STORE/baselines`` in :mod:`genreseg.reproduce`).
    config : MFCCConfig
    hashes : sequence of str, optional
        Content hashes of the files (:func:`genreseg.audio.content_hash`), when the
        caller knows them already (the feature store does); computed otherwise.

    Returns
    -------
    X : np.ndarray, shape (n_files, config.n_features)
    counts : dict
        ``{"computed": n, "cached": m}``.
    """
    return _track_statistics(paths, cache_dir, config, hashes,
                             lambda path: mfcc_statistics(load_audio(path, config.sample_rate), config))


def _track_statistics(paths, cache_dir, config, hashes, compute) -> tuple[np.ndarray, dict]:
    """Statistics ``compute(path)`` of many files, cached per content hash and config."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in paths]
    hashes = list(hashes) if hashes is not None else [content_hash(p) for p in paths]
    if len(hashes) != len(paths):
        raise ValueError(f"{len(paths)} paths but {len(hashes)} hashes")
    rows, counts = [], {"computed": 0, "cached": 0}
    for path, h in zip(paths, hashes):
        cache = statistics_cache_path(cache_dir, h, config)
        stats = _read_cached(cache, config)
        if stats is None:
            stats = compute(path)
            _write_cached(cache, stats, {"source_path": str(path), "content_hash": h, "config": config.to_dict()})
            counts["computed"] += 1
        else:
            counts["cached"] += 1
        rows.append(stats)
    return np.stack(rows), counts


# --------------------------------------------------------------------------- SVM
def fit_svm(X, y, grid: SVMGrid = SVMGrid()):
    """Standardise + RBF SVM, ``C`` and ``gamma`` chosen by stratified CV on (X, y) only.

    Parameters
    ----------
    X : array, shape (n_tracks, n_features)
    y : array of int, shape (n_tracks,)
    grid : SVMGrid

    Returns
    -------
    model : sklearn Pipeline
        Refitted on all of (X, y) with the chosen parameters.
    info : dict
        ``C``, ``gamma`` (absolute), ``cv_score`` (mean CV accuracy of the choice, None
        without a search) and ``cv_folds`` used.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from .search import grid_search, relative_gammas

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
        raise ValueError(f"expected (n_tracks, n_features) and one label per track, got {X.shape} and {y.shape}")
    # Standardising is unsupervised: fitted once on the training tracks, then searched on.
    scaler = StandardScaler().fit(X)
    Z = scaler.transform(X)
    grid_values = {"C": list(grid.C_grid), "gamma": relative_gammas(Z, grid.gamma_grid)}
    params, cv_score, n_splits = grid_search(SVC(kernel="rbf"), grid_values, Z, y, grid.cv_folds, grid.seed)
    model = Pipeline([("scale", scaler), ("svm", SVC(kernel="rbf", C=params["C"], gamma=params["gamma"]))])
    model.fit(X, y)
    return model, {"C": float(params["C"]), "gamma": float(params["gamma"]), "cv_score": cv_score,
                   "cv_folds": n_splits}


def svm_baseline(X_train, y_train, X_test, grid: SVMGrid = SVMGrid()) -> tuple[np.ndarray, dict]:
    """Fit :func:`fit_svm` on the training tracks and predict the test tracks.

    Returns
    -------
    pred : np.ndarray of int, shape (n_test,)
    info : dict
        As returned by :func:`fit_svm`.
    """
    model, info = fit_svm(X_train, y_train, grid)
    return np.asarray(model.predict(np.asarray(X_test, dtype=np.float64)), dtype=np.int64), info
