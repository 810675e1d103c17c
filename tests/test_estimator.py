"""GenreClassifier as a scikit-learn estimator: parameters, fitting on arrays, clone, search, checks.

Fast tests on small synthetic sequences (a tiny DNN, one SVM setting); the accuracy of
the method on real music is tested in test_classifier.py and test_reproduce.py.
"""

from __future__ import annotations

import json
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from genreseg.classifier import GenreClassifier, VersionMismatchWarning, make_frame_config
from genreseg.errors import ModelError, TrainingDataError
from genreseg.features import FeatureConfig
from genreseg.segments import SegmentConfig

TINY_FRAME = make_frame_config("dnn", hidden=(16,), epochs=3, seed=0, device="cpu")
TINY_SEGMENT = SegmentConfig(inner_folds=2, cv_folds=2, C_grid=(1.0,), gamma_grid=(1.0,))


def _toy_tracks(n_per_class: int = 8, n_features: int = 6, seed: int = 0):
    """Three classes of variable-length tracks whose frames sit around class-specific means."""
    centres = np.random.default_rng(1234).normal(0, 2.0, size=(3, n_features))  # the same classes every call
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c, name in enumerate(("jazz", "metal", "pop")):
        for _ in range(n_per_class):
            X.append((centres[c] + rng.normal(0, 1.0, size=(int(rng.integers(5, 15)), n_features)))
                     .astype(np.float32))
            y.append(name)
    return X, np.array(y)


@pytest.fixture(scope="module")
def toy():
    return _toy_tracks()


@pytest.fixture(scope="module")
def toy_fitted(toy):
    X, y = toy
    return GenreClassifier(TINY_FRAME, TINY_SEGMENT).fit(X, y)


def test_parameters_are_stored_as_given():
    clf = GenreClassifier()
    assert clf.get_params() == {"frame_config": None, "segment_config": None, "kind": "lstm", "n_threads": 1,
                                "progress": False}
    assert clf.resolved_frame_config().kind == "lstm"
    clf.set_params(kind="dnn", segment_config=TINY_SEGMENT)
    assert clf.kind == "dnn" and clf.segment_config is TINY_SEGMENT
    assert clf.resolved_frame_config().kind == "dnn"


def test_unfitted_raises_not_fitted_error(toy):
    X, _ = toy
    for method in ("predict", "predict_proba", "predict_frames"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(GenreClassifier(), method)(X)
    with pytest.raises(NotFittedError):
        GenreClassifier().save("never-written")


def test_fit_on_arrays_learns_and_predict_is_argmax_of_proba(toy, toy_fitted):
    X, y = toy
    clf = toy_fitted
    assert list(clf.classes_) == ["jazz", "metal", "pop"] and clf.n_features_in_ == 6
    X_test, y_test = _toy_tracks(n_per_class=6, seed=1)
    proba = clf.predict_proba(X_test)
    assert proba.shape == (18, 3) and np.allclose(proba.sum(axis=1), 1.0)
    pred = clf.predict(X_test)
    assert np.array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    # well separated classes: a working pipeline gets nearly all held-out tracks (chance: 1/3)
    assert clf.score(X_test, y_test) >= 0.9
    with pytest.raises(ValueError, match="X has 4 features, but GenreClassifier is expecting 6"):
        clf.predict([x[:, :4] for x in X_test])


def test_prediction_changes_no_state(toy, toy_fitted, tmp_path):
    X, _ = toy
    loaded = GenreClassifier.load(toy_fitted.save(tmp_path / "m"))
    for clf in (toy_fitted, loaded):
        before = joblib.hash(clf)
        first = clf.predict_proba(X)
        assert joblib.hash(clf) == before  # nothing is fitted lazily on first use
        assert np.array_equal(clf.predict_proba(X), first)
    assert np.array_equal(loaded.predict_proba(X), toy_fitted.predict_proba(X))


def test_integer_labels_and_bad_targets(toy):
    X, y = toy
    codes = np.unique(y, return_inverse=True)[1] + 10
    clf = GenreClassifier(TINY_FRAME, TINY_SEGMENT).fit(X, codes)
    assert clf.classes_.tolist() == [10, 11, 12] and set(clf.predict(X)) <= {10, 11, 12}
    with pytest.raises(ValueError, match="Unknown label type"):
        GenreClassifier(TINY_FRAME, TINY_SEGMENT).fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(TrainingDataError, match="at least two classes"):
        GenreClassifier(TINY_FRAME, TINY_SEGMENT).fit(X, ["jazz"] * len(X))
    with pytest.raises(ValueError, match="requires y"):
        GenreClassifier(TINY_FRAME, TINY_SEGMENT).fit(X)
    with pytest.raises(ValueError, match="one label per track"):
        GenreClassifier(TINY_FRAME, TINY_SEGMENT).fit(X, y[:-1])


def test_clone_and_grid_search(toy):
    X, y = toy
    base = GenreClassifier(TINY_FRAME, TINY_SEGMENT)
    twin = clone(base)
    assert twin is not base and twin.get_params() == base.get_params()
    grid = {"frame_config": [TINY_FRAME, TINY_FRAME.replace(hidden=(8,))], "n_threads": [1]}
    search = GridSearchCV(base, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert search.best_estimator_.frame_config in grid["frame_config"]
    assert search.best_score_ >= 0.8


def test_thread_setting_applies_while_fitting_and_is_restored(toy, monkeypatch):
    import genreseg.classifier as module

    X, y = toy
    seen = []
    real = module.fit_segment_models

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "fit_segment_models", spy)
    before = torch.get_num_threads()
    GenreClassifier(TINY_FRAME, TINY_SEGMENT, n_threads=1).fit(X, y)
    assert seen == [1] and torch.get_num_threads() == before
    GenreClassifier(TINY_FRAME, TINY_SEGMENT, n_threads=None).fit(X, y)
    assert seen[-1] == before


def test_arrays_without_feature_config_cannot_read_files(toy_fitted, tmp_path):
    with pytest.raises(ModelError, match="without a feature config"):
        toy_fitted.predict_files([tmp_path / "song.wav"])
    X, y = _toy_tracks(n_features=6)
    with_config = GenreClassifier(TINY_FRAME, TINY_SEGMENT).fit(X, y, feature_config=FeatureConfig())
    assert with_config.feature_config_ == FeatureConfig()


def test_loading_warns_when_library_versions_differ(toy_fitted, tmp_path):
    d = toy_fitted.save(tmp_path / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("error", VersionMismatchWarning)
        GenreClassifier.load(d)  # same versions: silent
    meta = json.loads((d / "model.json").read_text())
    meta["versions"]["torch"] = "1.0.0"
    meta["versions"]["scikit-learn"] = "0.24.2"
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.warns(VersionMismatchWarning, match=r"torch 1\.0\.0 \(installed .*scikit-learn 0\.24\.2"):
        GenreClassifier.load(d)


def test_scikit_learn_estimator_checks():
    """Every applicable check of scikit-learn's suite passes (tables are read as one-frame tracks).

    The one check that does not run, ``check_array_api_input``, is skipped by scikit-learn
    itself unless SciPy's array-API mode is on; the estimator converts every input to
    NumPy float32 for torch.
    """
    from sklearn.utils.estimator_checks import check_estimator

    results = []

    def record(estimator, check_name, exception, status, expected_to_fail, expected_to_fail_reason):
        results.append((check_name, status, exception))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(GenreClassifier(TINY_FRAME.replace(epochs=2), TINY_SEGMENT), on_fail=None, on_skip=None,
                        callback=record)
    failed = [(name, repr(exc)[:300]) for name, status, exc in results if status == "failed"]
    assert not failed
    skipped = {name for name, status, _ in results if status == "skipped"}
    assert skipped <= {"check_array_api_input"}
    assert sum(status == "passed" for _, status, _ in results) >= 50


def test_recipe_segment_stage_round_trips_through_a_model_file(toy, tmp_path):
    """Inner-fold test posteriors, k by inner CV and the vote fallback: saved, loaded, same answers."""
    from genreseg.segments import predict_segments

    X, y = toy
    recipe = TINY_SEGMENT.replace(test_posteriors="inner-mean", vote_fallback=True, k_grid=(0.2, 0.5))
    clf = GenreClassifier(TINY_FRAME, recipe).fit(X, y)
    assert len(clf.models_.inner_models) == recipe.inner_folds and clf.models_.config.k in (0.2, 0.5)
    X_test, _ = _toy_tracks(n_per_class=4, seed=3)
    # the estimator's decision is the segment stage's own
    expected = predict_segments(clf.models_, X_test)["fseg"]
    assert clf.predict(X_test).tolist() == clf.classes_[expected].tolist()
    loaded = GenreClassifier.load(clf.save(tmp_path / "m"))
    assert len(loaded.models_.inner_models) == recipe.inner_folds and loaded.models_.config == clf.models_.config
    assert (loaded.models_.fseg.use_vote_, loaded.models_.lseg.use_vote_) == (clf.models_.fseg.use_vote_,
                                                                             clf.models_.lseg.use_vote_)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
