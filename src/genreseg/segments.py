"""Segment features from frame posteriors, their fusion, and the segment classifier.

A track (the paper's *segment*) is summarised by statistics of its frame posteriors
``P (T, C)`` (:func:`segment_statistics`, 4C numbers: max, min, mean and the fraction
of frames above ``k``, per class). The *fused* feature joins them with the track mean
of the scattering frames (the paper's *initial segment feature*, D ≈ 749 numbers).

Fusion weighting
----------------
Standardising every column of the fused vector and handing it to an RBF SVM lets
the ~749 scattering columns dominate the ~40 statistics in every distance (they
hold ~95 % of the total variance), so the fused classifier behaves like the
scattering-only one. :class:`SegmentConfig` ``fusion`` picks how the blocks meet:

* ``"concat"`` — one StandardScaler over all columns (the naive join, kept to measure);
* ``"block"`` — standardise each block, then scale it to unit *total* variance (divide
  by sqrt(block dim)), times ``init_weight`` for the scattering block: each block
  contributes equally to squared distances;
* ``"pca"`` — as ``"block"`` but the standardised scattering block is first reduced to
  ``pca_components`` principal components.

Measured on gtzan_mini (5-fold CV, SVM, k = 0.2): the naive join had the lowest
inner-CV accuracy for both frame models (DNN 0.848, LSTM 0.830) and the lowest
DNN test accuracy (0.86 vs 0.90-0.92); block weighting with ``init_weight`` 0.5, 1,
2 and PCA (20/40) all scored 0.835-0.865, within the fold spread of each other.
"block" with ``init_weight=1`` is the default: principled, and as good as any.

Cross-fitting
-------------
A frame model's posteriors on its own training tracks are over-confident (near 1
on the right class), so a segment classifier trained on them learns statistics
test tracks never show. :func:`cross_fitted_posteriors` instead trains one frame model
per inner fold and takes each training track's posteriors from the model that did
not see it; test tracks use the model trained on the whole training set.
``SegmentConfig(posteriors="in-sample")`` keeps the naive path for comparison.

Serialisation
-------------
:meth:`SegmentClassifier.state` stores the (small) training matrix, labels, config and
the chosen hyper-parameters; :meth:`SegmentClassifier.from_state` re-fits the pipeline
with those hyper-parameters (no grid search). Every step is deterministic (libsvm,
seeded calibration folds, full-SVD PCA, lbfgs, a seeded MLP), so a loaded classifier
gives the same ``predict_proba`` as the saved one (tested) — no pickle needed. The
alternative, rebuilding libsvm's decision function from stored support vectors, dual
coefficients and Platt parameters, would tie the format to libsvm internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from .configs import ConfigMixin
from .search import grid_search, relative_gammas
from .splits import inner_splitter
from .features import initial_segment_features
from .models import (
    FrameModelConfig,
    TrainedFrameModel,
    frame_posteriors,
    train_frame_model,
)

__all__ = [
    "CalibratedSVC",
    "CrossFitResult",
    "SegmentClassifier",
    "SegmentConfig",
    "SegmentModels",
    "TotalVarianceScaler",
    "cross_fitted_posteriors",
    "fit_segment_models",
    "initial_segment_features",
    "predict_segments",
    "segment_features",
    "segment_inputs",
    "segment_posteriors",
    "segment_statistics",
    "training_posteriors",
]

CLASSIFIERS = ("svm", "logreg", "mlp")
FUSIONS = ("concat", "block", "pca")
POSTERIOR_MODES = ("cross-fit", "in-sample")
TEST_POSTERIORS = ("full", "inner-mean", "all-mean")


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


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SegmentConfig(ConfigMixin):
    """Settings of the segment stage.

    Parameters
    ----------
    k : float
        Posterior threshold of the fourth statistic. 0.5 was chosen by validation:
        on gtzan_mini (5-fold CV, inner-CV accuracy of the segment SVM on training
        folds only, averaged over DNN/LSTM and statistics/fused) k = 0.1, 0.2, 0.3, 0.5
        scored 0.846, 0.849, 0.849, 0.852 — a preference well inside the fold spread
        (±0.015), so k matters little there.
    classifier : {"svm", "logreg", "mlp"}
        RBF SVM, multinomial logistic regression, or a one-hidden-layer MLP. The SVM
        had the best or tied inner-CV accuracy for both frame models.
    C_grid : tuple of float
        Regularisation grid (SVM C, logistic-regression C, MLP ``alpha = 1/C``).
    gamma_grid : tuple of float
        RBF widths as multiples of ``1 / total variance`` of the transformed training
        features (so 1.0 is sklearn's ``gamma="scale"`` whatever the fusion).
    fusion : {"concat", "block", "pca"}
        How the statistics and the initial feature are joined (module docstring).
    init_weight : float
        Relative weight of the initial-feature block under "block" and "pca"
        (1 = equal total variance).
    pca_components : int
        Principal components kept of the initial feature under "pca".
    posteriors : {"cross-fit", "in-sample"}
        Where the training tracks' posteriors come from (module docstring).
    inner_folds : int
        Folds of the cross-fitting.
    cv_folds : int
        Stratified folds of the hyper-parameter grid search (reduced to the smallest
        class count; no search when a class has a single track).
    mlp_hidden : int
        MLP hidden width.
    seed : int
    test_posteriors : {"full", "inner-mean", "all-mean"}
        Where new tracks' posteriors come from (:func:`predict_segments`): the frame
        model trained on all training tracks (the paper's path), the mean of the
        inner-fold models that cross-fitting trains anyway, or the mean of both. The
        segment classifier learns from one inner model's posteriors of tracks it did
        not see; "inner-mean" gives it test posteriors from models of the same kind
        (trained on the same share of data), not from a stronger full model whose
        statistics it never saw. Needs ``posteriors="cross-fit"``.
    vote_fallback : bool
        Fall back to the (soft) vote when the statistics do not help: after the grid
        search, the vote of the training tracks' cross-fitted posteriors (argmax of
        the mean-posterior block of the statistics; no parameters, so its accuracy on
        the training tracks is an honest estimate) is compared with the classifier's
        inner-CV accuracy, and at a tie or better the classifier predicts the vote
        (in :func:`predict_segments`, of the full frame model's posteriors).
    k_grid : tuple of float
        When not empty, ``k`` is chosen from these by inner validation: the k whose
        statistics give the best mean inner-CV accuracy of the two segment classifiers
        (statistics only and fused); one k for both, stored in the fitted models'
        config. Empty: ``k`` as given.
    """

    k: float = 0.5
    classifier: str = "svm"
    C_grid: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    gamma_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    fusion: str = "block"
    init_weight: float = 1.0
    pca_components: int = 20
    posteriors: str = "cross-fit"
    inner_folds: int = 5
    cv_folds: int = 5
    mlp_hidden: int = 64
    seed: int = 0
    test_posteriors: str = "full"
    vote_fallback: bool = False
    k_grid: tuple[float, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "C_grid", tuple(float(c) for c in self.C_grid))
        object.__setattr__(self, "gamma_grid", tuple(float(g) for g in self.gamma_grid))
        object.__setattr__(self, "k_grid", tuple(float(k) for k in self.k_grid))
        if any(not 0 <= k < 1 for k in self.k_grid):
            raise ValueError(f"every k of k_grid must be in [0, 1), got {self.k_grid}")
        if self.test_posteriors not in TEST_POSTERIORS:
            raise ValueError(f"test_posteriors must be one of {TEST_POSTERIORS}, got {self.test_posteriors!r}")
        if self.test_posteriors != "full" and self.posteriors != "cross-fit":
            raise ValueError("test_posteriors other than 'full' need posteriors='cross-fit' (its inner models)")
        if not 0 <= self.k < 1:
            raise ValueError(f"k must be in [0, 1), got {self.k}")
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.posteriors not in POSTERIOR_MODES:
            raise ValueError(f"posteriors must be one of {POSTERIOR_MODES}, got {self.posteriors!r}")
        if not self.C_grid or not self.gamma_grid or min(self.C_grid + self.gamma_grid) <= 0:
            raise ValueError("C_grid and gamma_grid must be non-empty and positive")
        if self.init_weight <= 0 or self.pca_components < 1 or self.inner_folds < 2 or self.cv_folds < 2:
            raise ValueError("init_weight > 0, pca_components >= 1, inner_folds >= 2, cv_folds >= 2 required")



# --------------------------------------------------------------------------- classifier
class TotalVarianceScaler(TransformerMixin, BaseEstimator):
    """Scale a block so that its column variances sum to ``weight**2``.

    After a StandardScaler over ``d`` columns this is a division by ``sqrt(d)``, so a
    749-column block and a 40-column block weigh the same in Euclidean distances.
    """

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def fit(self, X, y=None):
        total = float(np.asarray(X, dtype=np.float64).var(axis=0).sum())
        self.scale_ = self.weight / np.sqrt(total) if total > 0 else float(self.weight)
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float64) * self.scale_


def _fusion_transform(config: SegmentConfig, dims: tuple[int, ...], pca_components: int | None = None):
    """The unsupervised front of the pipeline for blocks of widths ``dims``."""
    if config.fusion == "concat":
        return StandardScaler()
    blocks, start = [], 0
    for b, d in enumerate(dims):
        steps: list = [("scale", StandardScaler())]
        if b > 0:  # the initial-feature block
            if config.fusion == "pca":
                n_pc = min(pca_components or config.pca_components, d)
                steps.append(("pca", PCA(n_components=n_pc, svd_solver="full")))
            steps.append(("weight", TotalVarianceScaler(config.init_weight)))
        else:
            steps.append(("weight", TotalVarianceScaler(1.0)))
        blocks.append((f"block{b}", Pipeline(steps), list(range(start, start + d))))
        start += d
    return ColumnTransformer(blocks)


class CalibratedSVC(ClassifierMixin, BaseEstimator):
    """RBF SVC with Platt-calibrated probabilities; ``predict`` is their argmax.

    The probabilities come from :class:`~sklearn.calibration.CalibratedClassifierCV`
    (sigmoid, ``ensemble=False``: calibrated on out-of-fold decision values, one SVC
    fitted on all rows), the route scikit-learn recommends since ``SVC(probability=True)``
    was deprecated (1.9). Everything is fitted in :meth:`fit`: prediction changes no
    state. ``predict`` is the argmax of :meth:`predict_proba`, so the label and the
    probabilities never disagree (libsvm's one-vs-one vote can, on near-ties). With a
    class of a single row no calibration fold exists and the probabilities are a
    softmax of the one-vs-rest decision values.

    Parameters
    ----------
    C, gamma : float
    cal_folds : int
        Stratified calibration folds (fewer when a class is smaller).
    random_state : int
    """

    def __init__(self, C: float = 1.0, gamma: float | str = "scale", cal_folds: int = 5, random_state: int = 0):
        self.C = C
        self.gamma = gamma
        self.cal_folds = cal_folds
        self.random_state = random_state

    def _svc(self) -> SVC:
        return SVC(kernel="rbf", C=self.C, gamma=self.gamma, decision_function_shape="ovr")

    def fit(self, X, y):
        X, y = np.asarray(X), np.asarray(y)
        n_cal = min(self.cal_folds, int(np.min(np.unique(y, return_counts=True)[1])))
        if n_cal >= 2:
            cv = StratifiedKFold(n_cal, shuffle=True, random_state=self.random_state)
            self.calibrator_ = CalibratedClassifierCV(self._svc(), method="sigmoid", ensemble=False,
                                                      cv=cv).fit(X, y)
            self.svc_ = self.calibrator_.calibrated_classifiers_[0].estimator
        else:
            self.calibrator_ = None
            self.svc_ = self._svc().fit(X, y)
        self.classes_ = self.svc_.classes_
        return self

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_proba(self, X):
        if self.calibrator_ is not None:
            return self.calibrator_.predict_proba(X)
        d = np.atleast_2d(self.svc_.decision_function(X).T).T
        if d.shape[1] == 1:  # binary: one decision value
            d = np.hstack([-d, d])
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def _estimator(config: SegmentConfig, params: dict, probability: bool = True):
    if config.classifier == "svm":
        if not probability:  # the grid search scores accuracy: no calibration needed there
            return SVC(kernel="rbf", C=params.get("C", 1.0), gamma=params.get("gamma", "scale"))
        return CalibratedSVC(C=params.get("C", 1.0), gamma=params.get("gamma", "scale"),
                             cal_folds=config.cv_folds, random_state=config.seed)
    if config.classifier == "logreg":
        return LogisticRegression(C=params.get("C", 1.0), max_iter=5000)
    return MLPClassifier(hidden_layer_sizes=(config.mlp_hidden,), alpha=params.get("alpha", 1.0),
                         max_iter=2000, random_state=config.seed)


class SegmentClassifier:
    """Track classifier on segment statistics, optionally fused with the initial feature.

    Parameters
    ----------
    config : SegmentConfig, optional

    Attributes (after fit)
    ----------------------
    classes_ : np.ndarray
        Class labels seen in training; the columns of :meth:`predict_proba`.
    best_params_ : dict
        Chosen hyper-parameters (``C``, plus the absolute ``gamma`` for the SVM; ``alpha``
        for the MLP).
    cv_score_ : float or None
        Mean inner-CV accuracy of the chosen hyper-parameters (None without search).
    vote_score_ : float or None
        Accuracy of the soft vote (argmax of the mean-posterior block) on the training
        rows; computed under ``vote_fallback``.
    use_vote_ : bool
        The classifier predicts the vote (``vote_fallback`` and ``vote_score_ >= cv_score_``).

    Examples
    --------
    >>> clf = SegmentClassifier(SegmentConfig()).fit(stats, y, initial=init)   # fused
    >>> clf.predict(test_stats, initial=test_init)
    >>> arrays, meta = clf.state(); SegmentClassifier.from_state(arrays, meta)
    """

    def __init__(self, config: SegmentConfig | None = None):
        self.config = config or SegmentConfig()

    # The blocks enter as one matrix [stats | initial]; dims remembers the split.
    def _stack(self, stats, initial) -> np.ndarray:
        stats = np.asarray(stats, dtype=np.float64)
        if stats.ndim != 2:
            raise ValueError(f"expected (n_tracks, n_stats) statistics, got shape {stats.shape}")
        if initial is None:
            return stats
        initial = np.asarray(initial, dtype=np.float64)
        if initial.ndim != 2 or len(initial) != len(stats):
            raise ValueError("initial features must be (n_tracks, D) with one row per track")
        return np.hstack([stats, initial])

    def _check(self, stats, initial) -> np.ndarray:
        if not hasattr(self, "pipeline_"):
            raise RuntimeError("SegmentClassifier is not fitted")
        if (initial is None) != (len(self.dims_) == 1):
            raise ValueError("pass `initial` exactly when the classifier was fitted with it")
        X = self._stack(stats, initial)
        if X.shape[1] != sum(self.dims_):
            raise ValueError(f"expected {sum(self.dims_)} feature columns, got {X.shape[1]}")
        return X

    def _pipeline(self, params: dict, probability: bool = True) -> Pipeline:
        return Pipeline([("fusion", _fusion_transform(self.config, self.dims_, self.pca_components_)),
                         ("clf", _estimator(self.config, params, probability))])

    def _fit_final(self, X, y, params: dict) -> "SegmentClassifier":
        self.vote_score_, self.use_vote_ = None, False
        self.best_params_ = dict(params)
        self.pipeline_ = self._pipeline(params).fit(X, y)
        self.classes_ = self.pipeline_.classes_
        self.X_, self.y_ = X, y
        return self

    def fit(self, stats, y, initial=None) -> "SegmentClassifier":
        """Grid-search the hyper-parameters on stratified inner folds, then fit on all.

        Parameters
        ----------
        stats : array, shape (n_tracks, 4C)
            :func:`segment_features` of the training tracks.
        y : array of int, shape (n_tracks,)
        initial : array, shape (n_tracks, D), optional
            :func:`initial_segment_features`; given, the classifier is the fused one.
        """
        cfg = self.config
        X = self._stack(stats, initial)
        y = np.asarray(y, dtype=np.int64)
        if len(y) != len(X):
            raise ValueError("one label per track required")
        self.dims_ = (X.shape[1],) if initial is None else (np.shape(stats)[1], np.shape(initial)[1])
        n_splits = min(cfg.cv_folds, int(np.min(np.unique(y, return_counts=True)[1])))  # as grid_search's
        # PCA cannot keep more components than the smallest training fold has rows.
        n_fit = len(y) - int(np.ceil(len(y) / n_splits)) if n_splits >= 2 else len(y)
        self.pca_components_ = max(1, min(cfg.pca_components, n_fit))
        # The fusion transform (scalers, PCA) is unsupervised, so it is fitted once on all
        # training rows and the search runs on its output: no label leaks, and it spares
        # re-fitting the transform in every fold (sklearn's per-fit overhead dominated).
        # gamma_grid is relative to the total variance of that output.
        Z = _fusion_transform(cfg, self.dims_, self.pca_components_).fit_transform(X)
        if cfg.classifier == "mlp":
            grid: dict = {"alpha": [1.0 / c for c in cfg.C_grid]}
        else:
            grid = {"C": list(cfg.C_grid)}
        if cfg.classifier == "svm":
            grid["gamma"] = relative_gammas(Z, cfg.gamma_grid)
        params, self.cv_score_, _ = grid_search(_estimator(cfg, {}, probability=False), grid, Z, y, cfg.cv_folds,
                                                cfg.seed)
        self._fit_final(X, y, params)
        if cfg.vote_fallback and self.cv_score_ is not None and self.dims_[0] % 4 == 0:
            self.vote_score_ = float(np.mean(self._mean_block(X).argmax(axis=1) == y))
            self.use_vote_ = self.vote_score_ >= self.cv_score_
        return self

    def _mean_block(self, X) -> np.ndarray:
        """The mean-posterior block ``(n, C)`` of the statistics (columns 2C:3C of 4C)."""
        C = self.dims_[0] // 4
        return np.asarray(X, dtype=np.float64)[:, 2 * C:3 * C]

    def predict(self, stats, initial=None) -> np.ndarray:
        """Predicted class label of each track."""
        X = self._check(stats, initial)
        if getattr(self, "use_vote_", False):
            return self._mean_block(X).argmax(axis=1).astype(np.int64)
        return self.pipeline_.predict(X)

    def predict_proba(self, stats, initial=None) -> np.ndarray:
        """Class probabilities ``(n_tracks, len(classes_))`` (sigmoid-calibrated for the SVM);
        :meth:`predict` is their argmax."""
        X = self._check(stats, initial)
        if getattr(self, "use_vote_", False):
            p = self._mean_block(X)[:, np.asarray(self.classes_, dtype=int)] + 1e-12
            return p / p.sum(axis=1, keepdims=True)
        return self.pipeline_.predict_proba(X)

    @property
    def classes(self) -> np.ndarray:
        return self.classes_

    def state(self) -> tuple[dict, dict]:
        """``(arrays, meta)``: training matrix and labels, and a JSON-able dict."""
        if not hasattr(self, "pipeline_"):
            raise RuntimeError("SegmentClassifier is not fitted")
        arrays = {"X": np.ascontiguousarray(self.X_), "y": np.ascontiguousarray(self.y_)}
        meta = {"config": self.config.to_dict(), "dims": [int(d) for d in self.dims_],
                "params": {k: float(v) for k, v in self.best_params_.items()},
                "pca_components": int(self.pca_components_),
                "cv_score": self.cv_score_, "classes": [int(c) for c in self.classes_],
                "vote_score": self.vote_score_, "use_vote": bool(self.use_vote_)}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict, meta: dict) -> "SegmentClassifier":
        """Re-fit deterministically from :meth:`state` (no grid search)."""
        clf = cls(SegmentConfig.from_dict(meta["config"]))
        clf.dims_ = tuple(int(d) for d in meta["dims"])
        clf.cv_score_ = meta.get("cv_score")
        clf.pca_components_ = int(meta["pca_components"])
        X = np.asarray(arrays["X"], dtype=np.float64)
        y = np.asarray(arrays["y"], dtype=np.int64)
        clf._fit_final(X, y, dict(meta["params"]))
        clf.vote_score_, clf.use_vote_ = meta.get("vote_score"), bool(meta.get("use_vote", False))
        if [int(c) for c in clf.classes_] != list(meta["classes"]):
            raise ValueError("stored classes do not match the stored labels")
        return clf


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


def segment_posteriors(models: SegmentModels, sequences, full_posteriors: list | None = None) -> list:
    """Frame posteriors of new tracks as ``models.config.test_posteriors`` says.

    ``full_posteriors`` are the full frame model's posteriors of ``sequences`` when the
    caller has them already.
    """
    mode = models.config.test_posteriors
    full = full_posteriors if full_posteriors is not None else None
    if mode == "full" or not models.inner_models:
        return full if full is not None else frame_posteriors(models.frame_model, sequences)
    runs = [frame_posteriors(m, sequences) for m in models.inner_models]
    if mode == "all-mean":
        runs.append(full if full is not None else frame_posteriors(models.frame_model, sequences))
    return [np.mean([r[i] for r in runs], axis=0).astype(np.float32) for i in range(len(sequences))]


def segment_inputs(models: SegmentModels, sequences) -> dict:
    """Everything the segment stage reads about new tracks, computed once.

    Returns
    -------
    dict
        ``frame_posteriors``: the full frame model's (Frame_acc, Seg_acc, timelines);
        ``posteriors``: those ``test_posteriors`` names, whose statistics the classifiers
        read; ``init``: the initial segment features; ``lseg_stats`` / ``fseg_stats``: the
        statistics each classifier reads (the full model's for a classifier that fell
        back to the vote: Seg_acc's model votes).
    """
    full = frame_posteriors(models.frame_model, sequences)
    post = segment_posteriors(models, sequences, full)
    stats = segment_features(post, models.config.k)
    vote_stats = stats if post is full else segment_features(full, models.config.k)
    return {"frame_posteriors": full, "posteriors": post, "init": initial_segment_features(sequences),
            "lseg_stats": vote_stats if models.lseg.use_vote_ else stats,
            "fseg_stats": vote_stats if models.fseg.use_vote_ else stats}


def predict_segments(models: SegmentModels, sequences) -> dict:
    """Frame posteriors and the ``lseg`` / ``fseg`` track predictions of new tracks.

    ``posteriors`` are those the statistics came from (:func:`segment_inputs`).
    """
    s = segment_inputs(models, sequences)
    return {"posteriors": s["posteriors"], "lseg": models.lseg.predict(s["lseg_stats"]),
            "fseg": models.fseg.predict(s["fseg_stats"], initial=s["init"])}
