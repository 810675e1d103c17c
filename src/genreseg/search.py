"""Hyper-parameter search on track-level features, shared by the segment classifiers and the baselines.

One copy of the rules both follow: stratified, shuffled, seeded folds (no more than the
smallest class allows); accuracy as the score; RBF widths given relative to the total
variance of the (already transformed) features, so that ``1.0`` is scikit-learn's
``gamma="scale"`` whatever the feature dimension; and, when a class is too small to
search at all, the middle of the grid, said in the result (``cv_score`` None).
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold

__all__ = ["cv_splits", "grid_search", "relative_gammas"]


def cv_splits(y, cv_folds: int) -> int:
    """Stratified folds a search on labels ``y`` can have: ``cv_folds``, at most the smallest class size."""
    return min(int(cv_folds), int(np.unique(np.asarray(y), return_counts=True)[1].min()))


def relative_gammas(Z, gamma_grid) -> list[float]:
    """Absolute RBF ``gamma`` values: ``gamma_grid`` divided by the total variance of ``Z``'s columns."""
    total_var = float(np.asarray(Z, dtype=np.float64).var(axis=0).sum())
    return [float(g) / max(total_var, 1e-12) for g in gamma_grid]


def grid_search(estimator, grid: dict, Z, y, cv_folds: int, seed: int) -> tuple[dict, float | None, int]:
    """Choose ``grid``'s best parameters for ``estimator`` by stratified CV on ``(Z, y)``.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Not fitted here (``refit=False``): the caller fits its own final model.
    grid : dict of str to list
    Z : array, shape (n_tracks, n_features)
        Features as the estimator sees them (any unsupervised transform already applied).
    y : array of int, shape (n_tracks,)
    cv_folds : int
        Wanted folds; fewer when the smallest class has fewer tracks.
    seed : int

    Returns
    -------
    params : dict
        The chosen parameters (the middle of each list when no search was possible).
    cv_score : float or None
        Mean CV accuracy of the choice; None without a search.
    n_splits : int
        Folds used (0 without a search).
    """
    n_splits = cv_splits(y, cv_folds)
    if n_splits < 2:
        return {name: values[len(values) // 2] for name, values in grid.items()}, None, 0
    search = GridSearchCV(estimator, grid, cv=StratifiedKFold(n_splits, shuffle=True, random_state=seed),
                          scoring="accuracy", refit=False, n_jobs=1)
    search.fit(Z, y)
    return dict(search.best_params_), float(search.best_score_), n_splits
