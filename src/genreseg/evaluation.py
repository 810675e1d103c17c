"""Accuracy measures of the paper and a result record.

The paper's four figures, all on held-out tracks:

* ``frame_acc`` — frames whose argmax posterior is the track's label, pooled over all
  frames of all tracks (long tracks weigh more);
* ``seg_acc`` — tracks whose majority vote over frame decisions is right;
* ``lseg_acc`` — tracks right by the segment classifier on LSTM/DNN segment statistics;
* ``fseg_acc`` — the same on the fused feature (statistics + initial segment feature).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "EvaluationResult",
    "aggregate",
    "mean_std",
    "paired_comparison",
    "confusion_matrix",
    "evaluate",
    "frame_accuracy",
    "majority_vote",
    "per_class_recall",
    "seg_accuracy",
    "summarize",
]


def frame_accuracy(posteriors_list, labels) -> float:
    """Fraction of all frames (pooled over tracks) whose argmax is their track's label.

    Parameters
    ----------
    posteriors_list : list of np.ndarray, each (T_i, C)
    labels : array of int, shape (n_tracks,)
    """
    labels = np.asarray(labels)
    if len(posteriors_list) != len(labels):
        raise ValueError(f"{len(posteriors_list)} posterior matrices but {len(labels)} labels")
    correct = sum(int(np.sum(np.asarray(p).argmax(axis=1) == y)) for p, y in zip(posteriors_list, labels))
    total = sum(len(p) for p in posteriors_list)
    if total == 0:
        raise ValueError("no frames")
    return correct / total


def majority_vote(posteriors: np.ndarray) -> int:
    """Track decision: the most frequent frame-level argmax.

    Ties between equally frequent classes go to the one with the larger posterior
    summed over all frames (soft evidence breaks the hard-vote tie); a remaining exact
    tie goes to the lowest class index.

    Parameters
    ----------
    posteriors : np.ndarray, shape (T, C)

    Returns
    -------
    int
    """
    p = np.asarray(posteriors, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"expected a non-empty (T, C) matrix, got shape {p.shape}")
    votes = np.bincount(p.argmax(axis=1), minlength=p.shape[1])
    tied = np.flatnonzero(votes == votes.max())
    return int(tied[np.argmax(p.sum(axis=0)[tied])])


def seg_accuracy(posteriors_list, labels) -> float:
    """Fraction of tracks whose :func:`majority_vote` equals the label."""
    labels = np.asarray(labels)
    if len(posteriors_list) != len(labels) or len(labels) == 0:
        raise ValueError(f"{len(posteriors_list)} posterior matrices but {len(labels)} labels")
    return float(np.mean([majority_vote(p) == y for p, y in zip(posteriors_list, labels)]))


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts ``M[i, j]`` of tracks of true class ``i`` predicted as ``j`` (rows true)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError("y_true and y_pred differ in length")
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def per_class_recall(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Recall of each class (diagonal over row sums); NaN for a class absent from ``y_true``."""
    m = confusion_matrix(y_true, y_pred, n_classes)
    support = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(m) / np.maximum(support, 1), np.nan)


def _nan_to_none(values) -> list:
    return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else float(v) for v in values]


@dataclass
class EvaluationResult:
    """The figures of one evaluation (one fold or one test set).

    Attributes
    ----------
    label_names : list of str
    n_tracks : int
    frame_acc, seg_acc : float
    lseg_acc, fseg_acc : float or None
        Segment-classifier accuracies, when those stages ran.
    per_class_recall : list of float or None
        Of the ``system`` below (None for a class with no test track).
    confusion : list of list of int
        Of the ``system`` below; rows true, columns predicted.
    system : str
        Which predictions the recall and confusion describe: the last stage that ran
        ("fseg", else "lseg", else "seg").
    y_true : list of int
    predictions : dict of str to list of int
        Per-track predictions of each stage ("seg", "lseg", "fseg").
    track_ids : list of str, optional
    """

    label_names: list
    n_tracks: int
    frame_acc: float
    seg_acc: float
    lseg_acc: float | None = None
    fseg_acc: float | None = None
    per_class_recall: list = field(default_factory=list)
    confusion: list = field(default_factory=list)
    system: str = "seg"
    y_true: list = field(default_factory=list)
    predictions: dict = field(default_factory=dict)
    track_ids: list | None = None

    def to_dict(self) -> dict:
        return {
            "label_names": list(self.label_names), "n_tracks": int(self.n_tracks),
            "frame_acc": float(self.frame_acc), "seg_acc": float(self.seg_acc),
            "lseg_acc": None if self.lseg_acc is None else float(self.lseg_acc),
            "fseg_acc": None if self.fseg_acc is None else float(self.fseg_acc),
            "per_class_recall": _nan_to_none(self.per_class_recall),
            "confusion": [[int(v) for v in row] for row in self.confusion],
            "system": self.system, "y_true": [int(v) for v in self.y_true],
            "predictions": {k: [int(v) for v in vs] for k, vs in self.predictions.items()},
            "track_ids": None if self.track_ids is None else [str(t) for t in self.track_ids],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EvaluationResult":
        return cls(**d)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_table(self) -> str:
        """Markdown: the accuracies, then per-class recall and the confusion matrix."""
        lines = ["| measure | accuracy |", "| --- | --- |"]
        for name in ("frame_acc", "seg_acc", "lseg_acc", "fseg_acc"):
            value = getattr(self, name)
            if value is not None:
                lines.append(f"| {name} | {value:.4f} |")
        lines += ["", f"{self.n_tracks} tracks; recall and confusion of `{self.system}` (rows true).", "",
                  "| class | recall | " + " | ".join(self.label_names) + " |",
                  "| --- | --- |" + " --- |" * len(self.label_names)]
        for name, rec, row in zip(self.label_names, self.per_class_recall, self.confusion):
            rec_s = "n/a" if rec is None or np.isnan(rec) else f"{rec:.3f}"
            lines.append(f"| {name} | {rec_s} | " + " | ".join(str(int(v)) for v in row) + " |")
        return "\n".join(lines)


def evaluate(labels, posteriors_list, label_names, lseg_pred=None, fseg_pred=None,
             track_ids=None) -> EvaluationResult:
    """Collect the paper's figures for one test set.

    Parameters
    ----------
    labels : array of int, shape (n_tracks,)
    posteriors_list : list of np.ndarray, each (T_i, C)
        Frame posteriors of the frame model on the test tracks.
    label_names : list of str
        One per class; fixes C.
    lseg_pred, fseg_pred : array of int, optional
        Track predictions of the segment classifiers.
    track_ids : list of str, optional
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = len(label_names)
    preds = {"seg": np.array([majority_vote(p) for p in posteriors_list], dtype=np.int64)}
    accs = {}
    for name, pred in (("lseg", lseg_pred), ("fseg", fseg_pred)):
        if pred is not None:
            preds[name] = np.asarray(pred, dtype=np.int64)
            if preds[name].shape != labels.shape:
                raise ValueError(f"{name} predictions do not match the labels")
            accs[name] = float(np.mean(preds[name] == labels))
    system = "fseg" if "fseg" in preds else "lseg" if "lseg" in preds else "seg"
    return EvaluationResult(
        label_names=list(label_names), n_tracks=len(labels),
        frame_acc=frame_accuracy(posteriors_list, labels),
        seg_acc=float(np.mean(preds["seg"] == labels)),
        lseg_acc=accs.get("lseg"), fseg_acc=accs.get("fseg"),
        per_class_recall=[float(v) for v in per_class_recall(labels, preds[system], n_classes)],
        confusion=confusion_matrix(labels, preds[system], n_classes).tolist(), system=system,
        y_true=labels.tolist(), predictions={k: v.tolist() for k, v in preds.items()},
        track_ids=None if track_ids is None else [str(t) for t in track_ids],
    )


def summarize(values) -> tuple[float, float]:
    """Mean and (population, ``ddof=0``) standard deviation, ignoring None/NaN entries.

    Returns ``(nan, nan)`` when nothing is left.
    """
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())


def mean_std(values) -> dict | None:
    """``{"mean", "std", "n"}`` of the values that are not None/NaN (population std); None when none are."""
    n = sum(v is not None and not np.isnan(float(v)) for v in values)
    if n == 0:
        return None
    mean, std = summarize(values)
    return {"mean": mean, "std": std, "n": int(n)}


#: The accuracies of one evaluation, in the paper's order.
MEASURES = ("frame_acc", "seg_acc", "lseg_acc", "fseg_acc")


def aggregate(results: list, measures=MEASURES) -> dict:
    """Mean ± std of each accuracy over several results (folds or seeds).

    Parameters
    ----------
    results : list of EvaluationResult or dict
        Results, or records with the same keys (``n_tracks`` and the measures).
    measures : tuple of str

    Returns
    -------
    dict
        ``{"n_results", "n_tracks" (total over results), measure: {"mean", "std", "n"} or
        None, ...}``; a measure missing from every result is None.
    """
    if not results:
        raise ValueError("nothing to aggregate")

    def get(r, name):
        return r.get(name) if isinstance(r, dict) else getattr(r, name, None)

    out: dict = {"n_results": len(results), "n_tracks": int(sum(get(r, "n_tracks") or 0 for r in results))}
    for name in measures:
        out[name] = mean_std([get(r, name) for r in results])
    return out


def paired_comparison(a: list, b: list, n_test_tracks: int, name_a: str, name_b: str) -> dict:
    """Compare two systems scored on the same folds.

    Parameters
    ----------
    a, b : list of float or None
        Accuracy of each system on each (seed, fold), aligned; folds where either is
        missing are left out.
    n_test_tracks : int
        Distinct test tracks behind the figures (for the wording).
    name_a, name_b : str

    Returns
    -------
    dict
        ``diff_mean`` (a − b), ``diff_std`` (over folds), ``wins``/``losses``/``ties``
        of a, ``spread`` (the larger of the two systems' fold std), ``significant``
        (the mean difference exceeds that spread), ``consistent`` (the same sign on
        every one of at least 3 folds), and ``sentence``.
    """
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return {"sentence": f"{name_a} vs {name_b}: no fold where both ran.", "n": 0}
    x, y = np.array(pairs, dtype=np.float64).T
    d = x - y
    spread = float(max(x.std(), y.std()))
    out = {"n": len(d), "a_mean": float(x.mean()), "b_mean": float(y.mean()), "diff_mean": float(d.mean()),
           "diff_std": float(d.std()), "wins": int((d > 0).sum()), "losses": int((d < 0).sum()),
           "ties": int((d == 0).sum()), "spread": spread}
    # "Significant" here is deliberately modest: larger than one std of the fold spread
    # (the scale of fold-to-fold noise), not a statistical test; with a handful of folds
    # of a few dozen tracks nothing stronger is honest.
    out["significant"] = bool(abs(out["diff_mean"]) > spread and out["diff_mean"] != 0)
    diff = out["diff_mean"]
    verb = f"beats {name_b} by {diff:.3f}" if diff > 0 else f"trails {name_b} by {-diff:.3f}" if diff < 0 \
        else f"ties with {name_b}"
    folds = f"ahead on {out['wins']}, behind on {out['losses']}, level on {out['ties']} of {len(d)} folds"
    # Paired view: the same folds, so a difference of one sign on every fold says more
    # than the (unpaired) spread does.
    out["consistent"] = bool(len(d) >= 3 and (out["wins"] == len(d) or out["losses"] == len(d)))
    if out["significant"]:
        verdict = (f"more than one std of the fold spread (±{spread:.3f}): a real-looking difference, though "
                   f"{n_test_tracks} tracks cannot make it conclusive")
    elif out["consistent"]:
        verdict = (f"within one std of the fold spread (±{spread:.3f}) but of the same sign on every fold: "
                   f"suggestive, not significant on {n_test_tracks} tracks")
    else:
        verdict = (f"within one std of the fold spread (±{spread:.3f}): not a significant difference "
                   f"on {n_test_tracks} tracks")
    out["sentence"] = f"{name_a} {verb} ({x.mean():.3f} vs {y.mean():.3f}; {folds}) — {verdict}."
    return out
