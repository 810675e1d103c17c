"""The whole segment stage on one training set: cross-fitted posteriors, both classifiers, and prediction."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models import (
    FrameModelConfig,
    TrainedFrameModel,
    frame_posteriors,
    train_frame_model,
)
from ..splits import inner_splitter
from .classifier import POSTERIOR_MODES, SegmentClassifier, SegmentConfig
from .statistics import initial_segment_features, segment_features

__all__ = ["CrossFitResult", "SegmentModels", "combine_posteriors", "cross_fitted_posteriors", "fit_segment_models",
           "inputs_from_posteriors", "predict_segments", "segment_inputs", "segment_posteriors", "training_posteriors",
           "uses_inner_models"]


# --------------------------------------------------------------------------- cross-fitting
@dataclass
class CrossFitResult:
    """Out-of-fold frame posteriors of training tracks.

    Attributes
    ----------
    posteriors : list of np.ndarray, each (T_i, C)
        Track i's posteriors, from the inner model of fold ``fold[i]``.
    fold : np.ndarray of int, shape (n_tracks,)
        The inner fold in which each track was held out.
    train_indices : list of np.ndarray
        The track indices each inner model was trained on.
    models : list of TrainedFrameModel
        The inner models (only with ``keep_models=True``).
    """

    posteriors: list
    fold: np.ndarray
    train_indices: list = field(default_factory=list)
    models: list = field(default_factory=list)


def cross_fitted_posteriors(sequences, labels, n_classes: int, frame_config: FrameModelConfig,
                            inner_folds: int = 5, seed: int = 0, progress: bool = False,
                            train_fn=train_frame_model, posterior_fn=frame_posteriors,
                            keep_models: bool = False) -> CrossFitResult:
    """Posteriors of every training track from a frame model that did not see it.

    Parameters
    ----------
    sequences : list of np.ndarray, each (T_i, D)
    labels : array of int, shape (n_tracks,)
    n_classes : int
    frame_config : FrameModelConfig
        Used for every inner model.
    inner_folds : int
        Stratified folds (fewer when a class has fewer tracks).
    seed : int
        Seeds the fold assignment.
    progress : bool
    train_fn, posterior_fn : callable
        :func:`~genreseg.models.train_frame_model` and
        :func:`~genreseg.models.frame_posteriors` (replaceable, e.g. to audit which
        tracks each inner model saw).
    keep_models : bool
        Return the inner models too (for ``test_posteriors="inner-mean"``).

    Returns
    -------
    CrossFitResult
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(sequences)
    if n != len(labels):
        raise ValueError(f"{n} sequences but {len(labels)} labels")
    splitter = inner_splitter(labels, inner_folds, seed)
    posteriors: list = [None] * n
    fold = np.full(n, -1, dtype=np.int64)
    train_indices, models = [], []
    for f, (tr, held) in enumerate(splitter.split(np.zeros(n), labels)):
        model = train_fn([sequences[i] for i in tr], labels[tr], n_classes, frame_config, progress=progress)
        for i, p in zip(held, posterior_fn(model, [sequences[i] for i in held])):
            posteriors[i] = p
        fold[held] = f
        train_indices.append(np.asarray(tr, dtype=np.int64))
        if keep_models:
            models.append(model)
    return CrossFitResult(posteriors=posteriors, fold=fold, train_indices=train_indices, models=models)


def training_posteriors(sequences, labels, n_classes: int, frame_config: FrameModelConfig,
                        mode: str = "cross-fit", frame_model: TrainedFrameModel | None = None,
                        inner_folds: int = 5, seed: int = 0, progress: bool = False) -> list:
    """Posteriors of the training tracks for the segment classifier.

    ``"cross-fit"`` — :func:`cross_fitted_posteriors`; ``"in-sample"`` — the full model's
    own posteriors on its training tracks (``frame_model`` is trained when not given).
    """
    if mode == "cross-fit":
        return cross_fitted_posteriors(sequences, labels, n_classes, frame_config, inner_folds, seed,
                                       progress).posteriors
    if mode == "in-sample":
        if frame_model is None:
            frame_model = train_frame_model(sequences, labels, n_classes, frame_config, progress=progress)
        return frame_posteriors(frame_model, sequences)
    raise ValueError(f"mode must be one of {POSTERIOR_MODES}, got {mode!r}")


# --------------------------------------------------------------------------- whole stage
@dataclass
class SegmentModels:
    """A frame model with its two segment classifiers (statistics only, and fused).

    ``config.k`` is the k in use (chosen from ``k_grid`` when one was given);
    ``inner_models`` are the cross-fitting's frame models, kept when
    ``config.test_posteriors`` needs them.
    """

    frame_model: TrainedFrameModel
    lseg: SegmentClassifier
    fseg: SegmentClassifier
    config: SegmentConfig
    inner_models: list = field(default_factory=list)
    k_scores: dict = field(default_factory=dict)


def fit_segment_models(sequences, labels, n_classes: int, frame_config: FrameModelConfig,
                       seg_config: SegmentConfig | None = None, frame_model: TrainedFrameModel | None = None,
                       progress: bool = False, train_fn=None) -> SegmentModels:
    """Train the frame model (unless given) and both segment classifiers on one training set.

    The full frame model (trained on all tracks unless given) is the one whose vote is
    Seg_acc and whose posteriors make timelines; the inner models of the cross-fitting
    are kept when ``test_posteriors`` reads them. ``train_fn`` replaces
    :func:`~genreseg.models.train_frame_model` (e.g. a benchmark's cache).
    """
    seg_config = seg_config or SegmentConfig()
    train_fn = train_fn or train_frame_model
    labels = np.asarray(labels, dtype=np.int64)
    inner_models: list = []
    if seg_config.posteriors == "cross-fit":
        res = cross_fitted_posteriors(sequences, labels, n_classes, frame_config, seg_config.inner_folds,
                                      seg_config.seed, progress, train_fn=train_fn,
                                      keep_models=seg_config.test_posteriors != "full")
        post, inner_models = res.posteriors, res.models
        if frame_model is None:
            frame_model = train_fn(sequences, labels, n_classes, frame_config, progress=progress)
    else:
        if frame_model is None:
            frame_model = train_fn(sequences, labels, n_classes, frame_config, progress=progress)
        post = training_posteriors(sequences, labels, n_classes, frame_config, seg_config.posteriors, frame_model,
                                   seg_config.inner_folds, seg_config.seed, progress)
    init = initial_segment_features(sequences)
    k_scores: dict = {}
    best = None
    for k in (seg_config.k_grid or (seg_config.k,)):
        cfg = seg_config.replace(k=float(k))
        stats = segment_features(post, cfg.k)
        lseg = SegmentClassifier(cfg).fit(stats, labels)
        fseg = SegmentClassifier(cfg).fit(stats, labels, initial=init)
        score = np.mean([c.cv_score_ if c.cv_score_ is not None else 0.0 for c in (lseg, fseg)])
        k_scores[float(k)] = float(score)
        if best is None or score > best[0]:
            best = (score, cfg, lseg, fseg)
    _, cfg, lseg, fseg = best
    return SegmentModels(frame_model=frame_model, lseg=lseg, fseg=fseg, config=cfg,
                         inner_models=inner_models, k_scores=k_scores)


def uses_inner_models(models: SegmentModels) -> bool:
    """True when new tracks' posteriors read the inner models too (``test_posteriors``)."""
    return models.config.test_posteriors != "full" and bool(models.inner_models)


def combine_posteriors(models: SegmentModels, full: list, inner_runs: list) -> list:
    """New tracks' posteriors as ``models.config.test_posteriors`` says, from those computed.

    Parameters
    ----------
    full : list of np.ndarray
        The full frame model's posteriors of each track.
    inner_runs : list of list of np.ndarray
        Per inner model (:func:`uses_inner_models`; else empty), its posteriors of each track.
    """
    if not inner_runs:  # "full", or no inner models kept: the full model's posteriors are read
        return full
    runs = inner_runs if models.config.test_posteriors == "inner-mean" else [*inner_runs, full]
    return [np.mean([r[i] for r in runs], axis=0).astype(np.float32) for i in range(len(full))]


def segment_posteriors(models: SegmentModels, sequences, full_posteriors: list | None = None) -> list:
    """Frame posteriors of new tracks as ``models.config.test_posteriors`` says.

    ``full_posteriors`` are the full frame model's posteriors of ``sequences`` when the
    caller has them already.
    """
    full = full_posteriors if full_posteriors is not None else frame_posteriors(models.frame_model, sequences)
    inner = [frame_posteriors(m, sequences) for m in models.inner_models] if uses_inner_models(models) else []
    return combine_posteriors(models, full, inner)


def segment_inputs(models: SegmentModels, sequences, full_posteriors: list | None = None) -> dict:
    """Everything the segment stage reads about new tracks, computed once.

    ``full_posteriors``: the full frame model's posteriors of ``sequences`` when the
    caller has them already (they are not computed again). See :func:`inputs_from_posteriors`.
    """
    full = full_posteriors if full_posteriors is not None else frame_posteriors(models.frame_model, sequences)
    inner = [frame_posteriors(m, sequences) for m in models.inner_models] if uses_inner_models(models) else []
    return inputs_from_posteriors(models, full, inner, initial_segment_features(sequences))


def inputs_from_posteriors(models: SegmentModels, full: list, inner_runs: list, init: np.ndarray) -> dict:
    """The segment stage's inputs from posteriors and initial features already computed.

    Parameters
    ----------
    full : list of np.ndarray, each (T_i, C)
        The full frame model's posteriors.
    inner_runs : list of list of np.ndarray
        The inner models' (see :func:`combine_posteriors`).
    init : np.ndarray, shape (n_tracks, D)
        The initial segment features (track means of the frames).

    Returns
    -------
    dict
        ``frame_posteriors``: the full frame model's (Frame_acc, Seg_acc, timelines);
        ``posteriors``: those ``test_posteriors`` names, whose statistics the classifiers
        read; ``init``; ``lseg_stats`` / ``fseg_stats``: the statistics each classifier
        reads (the full model's for a classifier that fell back to the vote: Seg_acc's
        model votes).
    """
    post = combine_posteriors(models, full, inner_runs)
    stats = segment_features(post, models.config.k)
    vote_stats = stats if post is full else segment_features(full, models.config.k)
    return {"frame_posteriors": full, "posteriors": post, "init": init,
            "lseg_stats": vote_stats if models.lseg.use_vote_ else stats,
            "fseg_stats": vote_stats if models.fseg.use_vote_ else stats}


def predict_segments(models: SegmentModels, sequences, full_posteriors: list | None = None) -> dict:
    """Frame posteriors and the ``lseg`` / ``fseg`` track predictions of new tracks.

    ``posteriors`` are those the statistics came from; ``full_posteriors`` as in
    :func:`segment_inputs`.
    """
    s = segment_inputs(models, sequences, full_posteriors)
    return {"posteriors": s["posteriors"], "lseg": models.lseg.predict(s["lseg_stats"]),
            "fseg": models.fseg.predict(s["fseg_stats"], initial=s["init"])}
