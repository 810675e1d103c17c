"""Accuracy measures, the result record and aggregation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genreseg.evaluation import (
    EvaluationResult,
    aggregate,
    confusion_matrix,
    evaluate,
    frame_accuracy,
    majority_vote,
    per_class_recall,
    seg_accuracy,
    summarize,
)


def test_frame_accuracy_pools_frames_over_tracks():
    a = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])  # argmax 0, 1, 0 ; label 0 -> 2 right
    b = np.array([[0.3, 0.7]])                           # label 1 -> 1 right
    assert frame_accuracy([a, b], [0, 1]) == pytest.approx(3 / 4)
    # Pooled, not averaged per track: a 1-frame wrong track weighs one frame.
    assert frame_accuracy([a, b], [0, 0]) == pytest.approx(2 / 4)


def test_majority_vote_counts_frames():
    p = np.array([[0.6, 0.4, 0.0], [0.1, 0.2, 0.7], [0.1, 0.2, 0.7], [0.5, 0.45, 0.05]])
    # votes: class 0 twice, class 2 twice -> tie; summed posteriors 1.3 vs 1.45 -> class 2
    assert majority_vote(p) == 2
    q = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]])
    assert majority_vote(q) == 0


def test_majority_vote_tie_goes_to_higher_summed_posterior_not_lower_index():
    # 1 vote each for class 0 and 1; class 1 has the larger total posterior.
    p = np.array([[0.51, 0.49], [0.05, 0.95]])
    assert majority_vote(p) == 1
    # Exact tie in votes and sums: lowest index.
    assert majority_vote(np.array([[0.6, 0.4], [0.4, 0.6]])) == 0


def test_seg_accuracy():
    posts = [np.array([[0.9, 0.1]] * 3), np.array([[0.2, 0.8]] * 2), np.array([[0.7, 0.3]])]
    assert seg_accuracy(posts, [0, 1, 1]) == pytest.approx(2 / 3)


def test_confusion_matrix_rows_true_cols_predicted():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    m = confusion_matrix(y_true, y_pred, 4)
    expected = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(m, expected)
    rec = per_class_recall(y_true, y_pred, 4)
    np.testing.assert_allclose(rec[:3], [0.5, 1.0, 2 / 3])
    assert np.isnan(rec[3])  # class without test tracks


def test_evaluate_and_serialise():
    posts = [np.array([[0.9, 0.1, 0.0]] * 2), np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05]]),
             np.array([[0.1, 0.1, 0.8]])]
    labels = [0, 1, 2]
    res = evaluate(labels, posts, ["a", "b", "c"], lseg_pred=[0, 1, 1], fseg_pred=[0, 1, 2],
                   track_ids=["x", "y", "z"])
    assert res.frame_acc == pytest.approx(4 / 5)
    # Track "y": one vote each for classes 0 and 1; summed posteriors 1.0 vs 0.85 -> 0 (wrong).
    assert res.seg_acc == pytest.approx(2 / 3)
    assert res.predictions["seg"] == [0, 0, 2]
    assert res.lseg_acc == pytest.approx(2 / 3)
    assert res.fseg_acc == pytest.approx(1.0)
    assert res.system == "fseg"
    assert res.confusion == np.eye(3, dtype=int).tolist()
    d = json.loads(res.to_json())
    assert d["predictions"]["lseg"] == [0, 1, 1]
    assert EvaluationResult.from_dict(d).to_dict() == d
    table = res.to_table()
    assert "| fseg_acc | 1.0000 |" in table and "| a | 1.000 |" in table


def test_evaluate_seg_only_has_no_segment_figures():
    res = evaluate([1], [np.array([[0.2, 0.8]])], ["a", "b"])
    assert res.lseg_acc is None and res.fseg_acc is None and res.system == "seg"
    assert "lseg_acc" not in res.to_table()
    assert res.to_dict()["per_class_recall"] == [None, 1.0]


def test_summarize_and_aggregate():
    assert summarize([0.5, 0.7]) == pytest.approx((0.6, 0.1))
    assert summarize([None, 1.0]) == (1.0, 0.0)
    assert all(np.isnan(summarize([])))
    r1 = EvaluationResult(["a"], 10, 0.5, 0.6, 0.7, None)
    r2 = EvaluationResult(["a"], 12, 0.7, 0.8, 0.9, None)
    agg = aggregate([r1, r2])
    assert agg["n_tracks"] == 22 and agg["n_results"] == 2
    assert agg["frame_acc"]["mean"] == pytest.approx(0.6)
    assert agg["lseg_acc"]["std"] == pytest.approx(0.1)
    assert agg["fseg_acc"] is None
