"""The segment classifier on posterior statistics, alone or fused with the initial segment feature, and its config.

Fusion weighting, calibration and serialisation are described in :mod:`genreseg.segments`.
"""

from __future__ import annotations

from dataclasses import dataclass

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

from ..configs import ConfigMixin
from ..search import cv_splits, grid_search, relative_gammas

__all__ = ["CLASSIFIERS", "FUSIONS", "POSTERIOR_MODES", "TEST_POSTERIORS", "CalibratedSVC", "SegmentClassifier",
           "SegmentConfig", "TotalVarianceScaler"]

CLASSIFIERS = ("svm", "logreg", "mlp")
FUSIONS = ("concat", "block", "pca")
POSTERIOR_MODES = ("cross-fit", "in-sample")
TEST_POSTERIORS = ("full", "inner-mean", "all-mean")


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
        n_splits = cv_splits(y, cfg.cv_folds)
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
        proba = self.predict_proba(stats, initial)  # checks fitted and inputs first
        return self.classes_[np.argmax(proba, axis=1)]

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
