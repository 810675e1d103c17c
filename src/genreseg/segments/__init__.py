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

Modules: :mod:`~genreseg.segments.statistics` (the features),
:mod:`~genreseg.segments.classifier` (``SegmentConfig``, fusion, ``SegmentClassifier``) and
:mod:`~genreseg.segments.stage` (cross-fitting, ``fit_segment_models``, prediction).
"""

from .classifier import (CLASSIFIERS, FUSIONS, POSTERIOR_MODES, TEST_POSTERIORS, CalibratedSVC, SegmentClassifier,
                         SegmentConfig, TotalVarianceScaler)
from .stage import (CrossFitResult, SegmentModels, cross_fitted_posteriors, fit_segment_models, predict_segments,
                    segment_inputs, segment_posteriors, training_posteriors)
from .statistics import initial_segment_features, segment_features, segment_statistics

__all__ = [
    "CLASSIFIERS",
    "FUSIONS",
    "POSTERIOR_MODES",
    "TEST_POSTERIORS",
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
