"""``genreseg reproduce``: the paper's Tables 2 and 3 and two baselines, end to end.

One command goes from audio to a report::

    genreseg reproduce --data ../shared/data/gtzan_mini --out results --grid quick

1. **Extraction** — scattering frames of every track into a feature store
   (``RESULTS/store`` unless ``--store``); a rerun finds them there and says so.
2. **Folds** — the protocol's train/test splits (:func:`genreseg.datasets.make_splits`),
   once per seed.
3. **Table 2** — on every fold, each frame model of the paper (DNN(1024), DNN(1024-1024),
   LSTM(512), LSTM(1024), LSTM(512-512), LSTM(1024-1024)) is trained on the training
   tracks and scored on the test tracks: Frame_acc and Seg_acc (majority vote).
4. **Table 3** — for each LSTM, the segment classifiers on its posterior statistics
   (LSeg) and on those fused with the initial segment feature (FSeg)
   (:func:`genreseg.segments.fit_segment_models`, with the cross-fitted training
   posteriors that module uses by default, reusing the Table 2 model for the test
   tracks).
5. **Baselines** — track-mean scattering + RBF SVM and MFCC statistics + RBF SVM
   (:mod:`genreseg.baselines`), on the same folds.
6. **Report** — ``REPORT.md``, ``results.json`` (rewritten after every row, so a
   crash keeps what finished) and PNG figures (:mod:`genreseg.plots`).

Seeds: each seed fixes the folds (k-fold protocols), the initialisation and shuffling
of every network, the inner folds and the SVM searches; a run with the same data,
options and seeds gives the same numbers on the CPU.

Grids: ``quick`` divides every hidden size by 8 and trains for few epochs with
2 inner folds, so that the whole run on gtzan_mini (100 clips, 5 folds) fits in a few
minutes on two cores; ``paper`` keeps the paper's sizes (and with ``--preset paper``
its SGD recipe). Rows are always named after the paper's model, with the size actually
run beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import GenresegError

__all__ = [
    "GRIDS",
    "PAPER_ROWS",
    "Grid",
    "ModelRow",
    "ReproduceOptions",
    "add_reproduce_parser",
    "cmd_reproduce",
    "frame_config_for",
    "model_rows",
    "paired_comparison",
    "run_reproduce",
    "segment_config_for",
]

#: Exit codes, as in :mod:`genreseg.cli`: every row ran / some rows failed (listed).
EXIT_OK, EXIT_PARTIAL = 0, 1
RESULTS_FORMAT = "genreseg-reproduce/1"

#: The rows of the paper's Table 2, (kind, hidden sizes); the LSTMs are Table 3's rows.
PAPER_ROWS = (
    ("dnn", (1024,)),
    ("dnn", (1024, 1024)),
    ("lstm", (512,)),
    ("lstm", (1024,)),
    ("lstm", (512, 512)),
    ("lstm", (1024, 1024)),
)


# --------------------------------------------------------------------------- grids and rows
@dataclass(frozen=True)
class Grid:
    """How big and how long the models of a run are.

    Parameters
    ----------
    name : str
    size_divisor : int
        Every paper hidden size is divided by this (at least 1 unit).
    dnn_epochs, lstm_epochs : int or None
        Training epochs; None keeps the preset's.
    lr : float or None
        Learning rate of every network under the default (Adam) preset; None keeps the
        preset's. Ignored under the paper preset, whose rates are meant for a summed loss.
    inner_folds : int
        Cross-fitting folds of the segment stage.
    cv_folds : int
        Folds of every hyper-parameter search (segment classifiers, baselines).
    seg_C_grid, seg_gamma_grid : tuple of float
        The segment classifiers' SVM grid (see :class:`genreseg.segments.SegmentConfig`).
    svm_C_grid, svm_gamma_grid : tuple of float
        The baselines' SVM grid (see :class:`genreseg.baselines.SVMGrid`).
    lstm_recipe : tuple of (str, value) pairs
        :class:`~genreseg.models.FrameModelConfig` fields set on every LSTM row under
        the default preset (never under the paper preset, kept as the paper's); empty
        keeps the preset's. See ``benchmarks/recipe.py``.
    segment_recipe : tuple of (str, value) pairs
        :class:`~genreseg.segments.SegmentConfig` fields of the segment stage.
    """

    name: str
    size_divisor: int = 1
    dnn_epochs: int | None = None
    lstm_epochs: int | None = None
    lr: float | None = None
    inner_folds: int = 5
    cv_folds: int = 5
    seg_C_grid: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    seg_gamma_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    svm_C_grid: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
    svm_gamma_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    lstm_recipe: tuple = ()
    segment_recipe: tuple = ()

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


GRIDS = {
    # Sizes /8, 8 DNN epochs (cheap) and 6 LSTM epochs, all at Adam lr 3e-3:
    # the small networks learn slowly at the preset's 1e-3. Measured on one gtzan_mini
    # fold (held-out frame accuracy): LSTM(64) 0.86 after 6 epochs at 3e-3 vs 0.77 after
    # 8 at 1e-3, LSTM(64-64) 0.84 vs 0.85, in 75 % of the time; sigmoid DNN(128-128)
    # 0.87 vs 0.84 after 8 epochs.
    # The LSTM recipe (issue 11, benchmarks/recipe.py; ablation in benchmarks/recipe_results.md):
    # random 12-frame (4.5 s) crops every epoch, in batches of 16, and input noise 0.3 on the
    # LSTM rows; the segment stage takes test posteriors from the mean of its inner-fold
    # models (the kind of model whose posteriors it learnt from), chooses k by inner CV
    # and falls back to the vote when the statistics do not beat it on the training
    # tracks. Same epochs.
    "quick": Grid("quick", size_divisor=8, dnn_epochs=8, lstm_epochs=6, lr=3e-3, inner_folds=2, cv_folds=3,
                  seg_C_grid=(1.0, 10.0, 100.0), seg_gamma_grid=(0.5, 1.0, 2.0),
                  svm_C_grid=(1.0, 10.0, 100.0), svm_gamma_grid=(0.5, 1.0, 2.0),
                  lstm_recipe=(("crop_frames", 12), ("batch_size", 16), ("input_noise", 0.3)),
                  segment_recipe=(("test_posteriors", "inner-mean"), ("vote_fallback", True),
                                  ("k_grid", (0.2, 0.5, 0.8)))),
    "paper": Grid("paper"),
}


def _size_name(kind: str, hidden) -> str:
    return f"{kind.upper()}({'-'.join(str(h) for h in hidden)})"


@dataclass(frozen=True)
class ModelRow:
    """One row of Table 2 (and of Table 3 for an LSTM).

    Attributes
    ----------
    kind : {"dnn", "lstm"}
    paper_hidden : tuple of int
        The sizes in the paper.
    hidden : tuple of int
        The sizes actually trained.
    """

    kind: str
    paper_hidden: tuple[int, ...]
    hidden: tuple[int, ...]

    @property
    def key(self) -> str:
        """Stable identifier, after the paper's model: ``"lstm-512-512"``."""
        return f"{self.kind}-{'-'.join(str(h) for h in self.paper_hidden)}"

    @property
    def paper_name(self) -> str:
        return _size_name(self.kind, self.paper_hidden)

    @property
    def run_name(self) -> str:
        return _size_name(self.kind, self.hidden)

    @property
    def label(self) -> str:
        """``"LSTM(512)"``, or ``"LSTM(512) as LSTM(64)"`` when the size differs."""
        if self.hidden == self.paper_hidden:
            return self.paper_name
        return f"{self.paper_name} as {self.run_name}"

    @property
    def in_table3(self) -> bool:
        return self.kind == "lstm"

    def to_dict(self) -> dict:
        return {"key": self.key, "kind": self.kind, "paper_name": self.paper_name, "run_name": self.run_name,
                "label": self.label, "paper_hidden": list(self.paper_hidden), "hidden": list(self.hidden),
                "tables": [2, 3] if self.in_table3 else [2]}


def model_rows(grid: Grid) -> list[ModelRow]:
    """The six rows of Table 2 with the sizes of ``grid``."""
    return [ModelRow(kind, hidden, tuple(max(1, h // grid.size_divisor) for h in hidden))
            for kind, hidden in PAPER_ROWS]


def frame_config_for(row: ModelRow, grid: Grid, preset: str = "default", seed: int = 0, device: str = "auto",
                     epochs: int | None = None):
    """The :class:`~genreseg.models.FrameModelConfig` of one row.

    Parameters
    ----------
    row : ModelRow
    grid : Grid
    preset : {"default", "paper"}
        :func:`~genreseg.models.default_preset` or :func:`~genreseg.models.paper_preset`.
    seed : int
    device : str
    epochs : int, optional
        Overrides the grid's and the preset's epochs (smoke tests).
    """
    from .models import default_preset, paper_preset

    if preset not in ("default", "paper"):
        raise ValueError(f"preset must be 'default' or 'paper', got {preset!r}")
    base = (paper_preset if preset == "paper" else default_preset)(row.kind, row.hidden)
    grid_epochs = grid.dnn_epochs if row.kind == "dnn" else grid.lstm_epochs
    n_epochs = epochs if epochs is not None else grid_epochs if grid_epochs is not None else base.epochs
    cfg = base.replace(epochs=int(n_epochs), seed=int(seed), device=device)
    if grid.lr is not None and preset == "default":
        cfg = cfg.replace(lr=grid.lr)
    if grid.lstm_recipe and preset == "default" and row.kind == "lstm":
        cfg = cfg.replace(**dict(grid.lstm_recipe), **({} if epochs is None else {"epochs": int(epochs)}))
    return cfg


def segment_config_for(grid: Grid, seed: int = 0):
    """The :class:`~genreseg.segments.SegmentConfig` of a run (defaults but the grid's sizes)."""
    from .segments import SegmentConfig

    return SegmentConfig(C_grid=grid.seg_C_grid, gamma_grid=grid.seg_gamma_grid, inner_folds=grid.inner_folds,
                         cv_folds=grid.cv_folds, seed=int(seed)).replace(**dict(grid.segment_recipe))


def svm_grid_for(grid: Grid, seed: int = 0):
    """The baselines' :class:`~genreseg.baselines.SVMGrid` of a run."""
    from .baselines import SVMGrid

    return SVMGrid(C_grid=grid.svm_C_grid, gamma_grid=grid.svm_gamma_grid, cv_folds=grid.cv_folds, seed=int(seed))


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class ReproduceOptions:
    """Everything a reproduction run depends on (the CLI's options).

    See ``genreseg reproduce --help`` for the meaning of each field.
    """

    data: str
    out: str
    layout: str = "auto"
    protocol: str = "auto"
    folds: int = 5
    seeds: tuple[int, ...] = (0,)
    grid: str = "quick"
    preset: str = "default"
    store: str | None = None
    workers: int = 2
    backend: str | None = None
    epochs: int | None = None
    device: str = "auto"
    threads: int = 1
    baselines: bool = True

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if self.grid not in GRIDS:
            raise GenresegError(f"unknown grid {self.grid!r} (expected {', '.join(GRIDS)})")
        if not self.seeds:
            raise GenresegError("give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise GenresegError(f"repeated seed in {list(self.seeds)}")
        if self.epochs is not None and self.epochs < 1:
            raise GenresegError(f"--epochs must be >= 1, got {self.epochs}")
        if self.threads < 1:
            raise GenresegError(f"--threads must be >= 1, got {self.threads}")

    @property
    def store_root(self) -> Path:
        return Path(self.store) if self.store else Path(self.out) / "store"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        d["store"] = str(self.store_root)
        return d


# --------------------------------------------------------------------------- small helpers
def _jsonable(obj):
    """Plain JSON data: NumPy scalars and arrays unwrapped, NaN and inf as null."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _write_json(path: Path, obj) -> None:
    from .store import atomic_write_bytes

    payload = json.dumps(_jsonable(obj), indent=1, allow_nan=False) + "\n"
    atomic_write_bytes(path, payload.encode())


def _versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    # Distribution metadata, not imports: importing kymatio costs seconds and a version
    # string is all the report needs.
    for name, dist in (("numpy", "numpy"), ("torch", "torch"), ("sklearn", "scikit-learn"),
                       ("kymatio", "kymatio"), ("librosa", "librosa"), ("scipy", "scipy"),
                       ("matplotlib", "matplotlib"), ("genreseg", "genreseg")):
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _fmt(stat, digits: int = 3) -> str:
    """``"0.812 ± 0.041"`` from ``{"mean", "std"}``; ``"–"`` when absent."""
    if not stat or stat.get("mean") is None:
        return "–"
    std = stat.get("std")
    return f"{stat['mean']:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{stat['mean']:.{digits}f}"


def _mean_std(values) -> dict | None:
    from .evaluation import summarize

    vals = [v for v in values if v is not None]
    if not vals:
        return None
    mean, std = summarize(vals)
    return {"mean": mean, "std": std, "n": len(vals)}


class _Log:
    """Progress lines on stderr, each stamped with the time since the run started."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {message}", file=self.stream, flush=True)


# --------------------------------------------------------------------------- comparisons
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


# --------------------------------------------------------------------------- the run
@dataclass
class _Run:
    """Mutable state of one run: the results document and the timers."""

    options: ReproduceOptions
    out: Path
    log: _Log
    doc: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)

    def save(self) -> None:
        self.doc["timings"] = dict(self.timings)
        self.doc["failures"] = list(self.failures)
        _write_json(self.out / "results.json", self.doc)

    @contextmanager
    def stage(self, name: str):
        self.log(f"{name} ...")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.timings[name] = round(self.timings.get(name, 0.0) + dt, 3)
            self.log(f"{name}: {dt:.1f} s")

    def add_time(self, name: str, seconds: float) -> None:
        self.timings[name] = round(self.timings.get(name, 0.0) + seconds, 3)

    def fail(self, where: str, err: BaseException) -> None:
        msg = f"{type(err).__name__}: {err}"
        self.failures.append({"where": where, "error": msg,
                              "traceback": "".join(traceback.format_exception(err)[-3:])})
        self.log(f"FAILED {where}: {msg} (the run goes on)")


def _extract_features(run: _Run, tracks, skipped=()):
    """Extraction stage: returns the store and the manifest rows of the usable tracks.

    ``skipped`` are the files the dataset listing passed over, recorded with the failures.
    """
    from .extract import extract
    from .features import FeatureConfig
    from .store import FeatureStore

    opts = run.options
    root = opts.store_root
    exists = (root / "store.json").exists()
    config = None if exists and opts.backend is None else FeatureConfig(**({"backend": opts.backend}
                                                                            if opts.backend else {}))
    store = FeatureStore(root, config)
    # Hash first: when every entry is stored already, extract in this process, which
    # skips starting a Dask cluster just to re-read what is there.
    missing = sum(not _is_stored(store, t.path) for t in tracks)
    workers = opts.workers if missing else 0
    run.log(f"feature store {root}: {len(tracks) - missing} of {len(tracks)} tracks already stored, "
            f"{missing} to extract" + (f" with {workers} worker(s)" if missing else ""))
    report = extract(tracks, root, store.config, workers=workers, progress=sys.stderr.isatty(), skipped=skipped)
    if missing == 0 and not report.computed:
        run.log(f"features reused from the store: {len(report.cached)} cached, nothing extracted")
    else:
        run.log(f"extraction: {report.summary_line()}")
    for path, reason in report.failed:
        run.failures.append({"where": "extraction", "error": reason, "path": str(path)})
        run.log(f"FAILED extraction: {reason}")
    run.doc["extraction"] = {"store": str(root), "computed": len(report.computed), "cached": len(report.cached),
                             "failed": [reason for _, reason in report.failed], "seconds": report.seconds,
                             "skipped": [f"{path}: {reason}" for path, reason in report.skipped],
                             "reused": not report.computed}
    rows = {r["track_id"]: r for r in report.computed + report.cached}
    return FeatureStore(root), rows


def _is_stored(store, path) -> bool:
    from .audio import content_hash

    try:
        return store.has(store.key_for(content_hash(path)))
    except GenresegError:
        return False  # unreadable: extraction will report it


def _resolve_protocol(protocol: str, tracks) -> str:
    if protocol != "auto":
        return protocol
    splits = {t.split for t in tracks}
    return "official" if {"training", "development"} <= splits else "kfold"


def _data_summary(tracks, rows, layout: str) -> dict:
    per_label = Counter(t.label for t in tracks)
    per_split = Counter(t.split for t in tracks if t.split)
    durations = [rows[t.track_id].get("duration") or 0.0 for t in tracks]
    return {"tracks": len(tracks), "labels": dict(sorted(per_label.items())),
            "splits": dict(sorted(per_split.items())), "layout": layout,
            "total_duration_s": float(np.sum(durations)),
            "total_frames": int(sum(rows[t.track_id].get("n_frames") or 0 for t in tracks)),
            "artists": len({t.artist for t in tracks if t.artist})}


def _run_frame_row(run: _Run, row: ModelRow, train, test, n_classes: int, seed: int, keep: dict | None) -> dict:
    """Train one row's frame model on a fold (and its segment stage for an LSTM)."""
    from .evaluation import evaluate
    from .models import frame_posteriors, train_frame_model
    from .segments import fit_segment_models, predict_segments

    opts, grid = run.options, GRIDS[run.options.grid]
    cfg = frame_config_for(row, grid, opts.preset, seed, opts.device, opts.epochs)
    t0 = time.perf_counter()
    # The test fold's frame accuracy is recorded per epoch for the training-curve
    # figure only: nothing (no early stopping, no model choice) looks at it.
    model = train_frame_model(train.sequences, train.labels, n_classes, cfg, valid=(test.sequences, test.labels),
                              progress=False)
    posteriors = frame_posteriors(model, test.sequences)
    t_frame = time.perf_counter() - t0
    lseg = fseg = seg_params = None
    t_seg = 0.0
    if row.in_table3:
        t1 = time.perf_counter()
        seg_cfg = segment_config_for(grid, seed)
        models = fit_segment_models(train.sequences, train.labels, n_classes, cfg, seg_cfg, frame_model=model)
        pred = predict_segments(models, test.sequences)
        lseg, fseg = pred["lseg"], pred["fseg"]
        t_seg = time.perf_counter() - t1
        seg_params = {"lseg": models.lseg.best_params_, "fseg": models.fseg.best_params_,
                      "lseg_cv_score": models.lseg.cv_score_, "fseg_cv_score": models.fseg.cv_score_,
                      "lseg_vote": models.lseg.use_vote_, "fseg_vote": models.fseg.use_vote_, "k": models.config.k}
    result = evaluate(test.labels, posteriors, test.label_names, lseg, fseg, test.track_ids)
    if keep is not None:
        keep[row.key] = {"posteriors": posteriors, "labels": np.asarray(test.labels), "track_ids": test.track_ids}
    run.add_time(f"{row.label}: frame model", t_frame)
    if row.in_table3:
        run.add_time(f"{row.label}: segment stage", t_seg)
    rec = result.to_dict()
    rec.update(history={k: list(v) for k, v in model.history.items()}, seconds_frame=t_frame, seconds_segment=t_seg,
               segment_params=seg_params)
    return rec


def _run_baseline(run: _Run, name: str, X, train_idx, test_idx, labels, track_ids, n_classes: int,
                  seed: int) -> dict:
    from .baselines import svm_baseline
    from .evaluation import confusion_matrix

    t0 = time.perf_counter()
    pred, info = svm_baseline(X[train_idx], labels[train_idx], X[test_idx], svm_grid_for(GRIDS[run.options.grid], seed))
    y = labels[test_idx]
    dt = time.perf_counter() - t0
    run.add_time(f"baseline {name}", dt)
    return {"track_acc": float(np.mean(pred == y)), "n_tracks": int(len(y)), "y_true": y.tolist(),
            "predictions": {"svm": pred.tolist()}, "params": info, "seconds": dt,
            "track_ids": [track_ids[i] for i in test_idx],
            "confusion": confusion_matrix(y, pred, n_classes).tolist()}


def _baseline_features(run: _Run, features, tracks, stored_rows, store_root: Path) -> dict:
    """Track-level inputs of the baselines, computed once for all folds."""
    from .baselines import MFCCConfig, track_mfcc_statistics

    mfcc_cfg = MFCCConfig()
    run.doc["configs"]["mfcc"] = mfcc_cfg.to_dict()
    X_base = {"scattering-svm": features.segment_features()}
    with run.stage("baselines: MFCC statistics"):
        try:
            # The store already knows every file's content hash: its entry key starts with it.
            X, counts = track_mfcc_statistics([t.path for t in tracks], store_root / "baselines", mfcc_cfg,
                                              hashes=[stored_rows[t.track_id]["key"].split("-")[0] for t in tracks])
            X_base["mfcc-svm"] = X
            run.doc["mfcc_cache"] = counts
            run.log(f"MFCC statistics: {counts['computed']} computed, {counts['cached']} reused from "
                    f"{store_root / 'baselines'}")
        except Exception as err:  # noqa: BLE001 - the paper's rows do not need it
            run.fail("baselines: MFCC statistics", err)
    return X_base


def _run_fold(run: _Run, rows: list[ModelRow], features, X_base: dict, seed: int, f: int, tr, te, where: str,
              keep: dict | None) -> None:
    """Every row and baseline on one (seed, fold); results.json is rewritten after each."""
    label_names = features.label_names
    fold = {"seed": seed, "fold": f, "n_train": int(len(tr)), "n_test": int(len(te)),
            "train_labels": dict(Counter(label_names[i] for i in features.labels[tr])),
            "rows": {}, "baselines": {}, "errors": {}}
    run.doc["folds"].append(fold)
    train, test = features.subset(tr), features.subset(te)
    for row in rows:
        t0 = time.perf_counter()
        try:
            rec = _run_frame_row(run, row, train, test, len(label_names), seed, keep)
            fold["rows"][row.key] = rec
            seg = (f", LSeg {rec['lseg_acc']:.3f}, FSeg {rec['fseg_acc']:.3f}"
                   if rec.get("lseg_acc") is not None else "")
            run.log(f"{where} {row.label}: Frame {rec['frame_acc']:.3f}, Seg {rec['seg_acc']:.3f}{seg} "
                    f"({time.perf_counter() - t0:.1f} s)")
        except Exception as err:  # noqa: BLE001 - one row must not sink the others
            fold["errors"][row.key] = f"{type(err).__name__}: {err}"
            run.fail(f"{where} {row.label}", err)
        run.doc["aggregates"] = _aggregate(run, rows)
        run.save()
    for name, X in X_base.items():
        try:
            rec = _run_baseline(run, name, X, tr, te, features.labels, features.track_ids, len(label_names), seed)
            fold["baselines"][name] = rec
            run.log(f"{where} baseline {name}: {rec['track_acc']:.3f} ({rec['seconds']:.1f} s)")
        except Exception as err:  # noqa: BLE001
            fold["errors"][name] = f"{type(err).__name__}: {err}"
            run.fail(f"{where} baseline {name}", err)


def _aggregate(run: _Run, rows: list[ModelRow]) -> dict:
    """Mean ± std over (seed, fold) of every figure of every row and baseline."""
    folds = run.doc["folds"]
    out: dict = {}
    for row in rows:
        recs = [f["rows"][row.key] for f in folds if row.key in f["rows"]]
        entry = {"label": row.label, "n_results": len(recs),
                 "n_test_tracks": len({t for r in recs for t in (r.get("track_ids") or [])}),
                 "n_test_decisions": int(sum(r["n_tracks"] for r in recs))}
        for m in ("frame_acc", "seg_acc", "lseg_acc", "fseg_acc"):
            entry[m] = _mean_std([r.get(m) for r in recs])
        out[row.key] = entry
    for name in run.doc.get("baselines", []):
        recs = [f["baselines"][name] for f in folds if name in f.get("baselines", {})]
        out[name] = {"label": name, "n_results": len(recs),
                     "n_test_tracks": len({t for r in recs for t in r.get("track_ids", [])}),
                     "n_test_decisions": int(sum(r["n_tracks"] for r in recs)),
                     "track_acc": _mean_std([r["track_acc"] for r in recs])}
    return out


def _series(run: _Run, key: str, measure: str) -> list:
    """A figure of one row or baseline on every (seed, fold), None where it did not run."""
    vals = []
    for f in run.doc["folds"]:
        rec = f["rows"].get(key) or f.get("baselines", {}).get(key)
        vals.append(None if rec is None else rec.get(measure))
    return vals


def _systems(run: _Run, rows: list[ModelRow]) -> list[tuple[str, str, str, float]]:
    """Every track-level system with its mean accuracy: (row key, measure, name, mean)."""
    agg = run.doc["aggregates"]
    out = []
    for row in rows:
        for measure, suffix in (("seg_acc", "Seg"), ("lseg_acc", "LSeg"), ("fseg_acc", "FSeg")):
            stat = agg.get(row.key, {}).get(measure)
            if stat:
                out.append((row.key, measure, f"{row.label} {suffix}", stat["mean"]))
    for name in run.doc.get("baselines", []):
        stat = agg.get(name, {}).get("track_acc")
        if stat:
            out.append((name, "track_acc", f"baseline {name}", stat["mean"]))
    return out


def _reading(run: _Run, rows: list[ModelRow], n_tracks: int) -> list[str]:
    """The honest reading of the tables, as Markdown bullet lines."""
    agg = run.doc["aggregates"]

    def best(kind, measure="seg_acc"):
        cands = [r for r in rows if r.kind == kind and agg.get(r.key, {}).get(measure)]
        return max(cands, key=lambda r: agg[r.key][measure]["mean"]) if cands else None

    lines, comparisons = [], {}
    grid = GRIDS[run.options.grid]
    if grid.size_divisor != 1 or run.options.epochs is not None:
        fm = run.doc["configs"]["frame_models"]
        epochs = {kind: sorted({c["epochs"] for c in fm.values() if c["kind"] == kind}) for kind in ("dnn", "lstm")}
        lrs = sorted({c["lr"] for c in fm.values()})
        lines.append(f"These are **not the paper's models**: hidden sizes are divided by {grid.size_divisor} and "
                     f"training is short ({'/'.join(map(str, epochs['dnn']))} DNN and "
                     f"{'/'.join(map(str, epochs['lstm']))} LSTM epochs, lr {'/'.join(f'{v:g}' for v in lrs)}; grid "
                     f"`{grid.name}`), so the figures test the pipeline and the direction of the paper's claims, "
                     "not its numbers.")
    elif run.options.preset != "paper":
        lines.append("Sizes are the paper's, but training follows the default (Adam) preset, not the paper's SGD "
                     "recipe (`--preset paper`).")
    lstm, dnn = best("lstm"), best("dnn")
    if lstm and dnn:
        c = paired_comparison(_series(run, lstm.key, "seg_acc"), _series(run, dnn.key, "seg_acc"), n_tracks,
                              f"On Seg_acc the best LSTM, {lstm.label},", f"the best DNN, {dnn.label},")
        comparisons["lstm_vs_dnn_seg"] = c
        lines.append(f"**LSTM vs DNN (Table 2):** {c['sentence']}")
        cf = paired_comparison(_series(run, lstm.key, "frame_acc"), _series(run, dnn.key, "frame_acc"), n_tracks,
                               "On Frame_acc the same LSTM", "the same DNN")
        comparisons["lstm_vs_dnn_frame"] = cf
        lines.append(cf["sentence"])
    lstm_rows = [r for r in rows if r.in_table3 and r.key in agg and agg[r.key].get("seg_acc")]
    for measure, name in (("lseg_acc", "LSeg"), ("fseg_acc", "FSeg")):
        cs = [(r, paired_comparison(_series(run, r.key, measure), _series(run, r.key, "seg_acc"), n_tracks,
                                    f"{name}", "Seg")) for r in lstm_rows]
        cs = [(r, c) for r, c in cs if c.get("n")]
        if not cs:
            continue
        up = sum(c["diff_mean"] > 0 for _, c in cs)
        sig_up = sum(c["significant"] and c["diff_mean"] > 0 for _, c in cs)
        sig_down = sum(c["significant"] and c["diff_mean"] < 0 for _, c in cs)
        mean_gain = float(np.mean([c["diff_mean"] for _, c in cs]))
        comparisons[f"{name.lower()}_vs_seg"] = {r.key: c for r, c in cs}
        detail = "; ".join(f"{r.label}: {c['diff_mean']:+.3f} ({'>' if c['significant'] else '≤'} 1 std)"
                           for r, c in cs)
        lines.append(f"**{name} vs Seg (Table 3):** {name} − Seg averages {mean_gain:+.3f} over the {len(cs)} LSTMs; "
                     f"{name} is higher for {up} of them, higher by more than one std of the fold spread for "
                     f"{sig_up}, lower by more than one std for {sig_down} ({detail}).")
    systems = _systems(run, rows)
    paper_sys = [s for s in systems if not s[2].startswith("baseline")]
    base_sys = [s for s in systems if s[2].startswith("baseline")]
    if paper_sys and base_sys:
        p, b = max(paper_sys, key=lambda s: s[3]), max(base_sys, key=lambda s: s[3])
        base_name = b[2][len("baseline "):]
        c = paired_comparison(_series(run, p[0], p[1]), _series(run, b[0], b[1]), n_tracks,
                              f"The best system of the paper, {p[2]},", f"the best baseline, {base_name},")
        comparisons["best_vs_baseline"] = c
        lines.append(f"**Against the baselines:** {c['sentence']}")
    if run.doc["folds"]:
        n_test = run.doc["folds"][0].get("n_test", 0)
        if n_test:
            lines.append(f"One test track is worth {1 / n_test:.3f} of a fold's accuracy ({n_test} test tracks per "
                         "fold); differences of one or two tracks per fold are noise at this size.")
    run.doc["comparisons"] = comparisons
    return lines


# --------------------------------------------------------------------------- plots
def _make_plots(run: _Run, rows: list[ModelRow], kept: dict, label_names: list, hop_seconds: float) -> dict:
    from .evaluation import confusion_matrix
    from .plots import plot_confusion, plot_posterior_summary, plot_training_curves

    figures = {}
    systems = _systems(run, rows)
    if systems:
        # The best track-level system of the run, its decisions pooled over every fold.
        key, measure, name, mean = max(systems, key=lambda s: s[3])
        pred_key = {"seg_acc": "seg", "lseg_acc": "lseg", "fseg_acc": "fseg", "track_acc": "svm"}[measure]
        try:
            total = np.zeros((len(label_names), len(label_names)), dtype=np.int64)
            for f in run.doc["folds"]:
                rec = f["rows"].get(key) or f.get("baselines", {}).get(key)
                if rec is not None:
                    total += confusion_matrix(rec["y_true"], rec["predictions"][pred_key], len(label_names))
            plot_confusion(total, label_names, run.out / "confusion_best.png",
                           f"{name}: {mean:.3f} mean accuracy; counts over {int(total.sum())} test decisions")
            figures["confusion"] = {"file": "confusion_best.png", "system": name, "mean_acc": mean}
        except Exception as err:  # noqa: BLE001 - a figure must not sink the report
            run.fail("plot confusion", err)
    agg = run.doc["aggregates"]
    lstms = [r for r in rows if r.in_table3 and r.key in kept and agg.get(r.key, {}).get("seg_acc")]
    if lstms:
        best = max(lstms, key=lambda r: agg[r.key]["seg_acc"]["mean"])
        k = kept[best.key]
        f0 = run.doc["folds"][0]
        try:
            plot_posterior_summary(k["posteriors"], k["labels"], label_names, run.out / "figure3_posteriors.png",
                                   track_ids=k["track_ids"], hop_seconds=hop_seconds,
                                   title=f"{best.label}, seed {f0['seed']} fold {f0['fold'] + 1}: test-track "
                                         "posteriors")
            figures["figure3"] = {"file": "figure3_posteriors.png", "model": best.label, "seed": f0["seed"],
                                  "fold": f0["fold"]}
        except Exception as err:  # noqa: BLE001
            run.fail("plot figure 3", err)
    histories = {r.label: [f["rows"][r.key]["history"] for f in run.doc["folds"] if r.key in f["rows"]]
                 for r in rows}
    histories = {k: v for k, v in histories.items() if v}
    if histories:
        try:
            plot_training_curves(histories, run.out / "training_curves.png",
                                 "training curves, mean over folds and seeds (dashed: test-fold frames, "
                                 "recorded only)")
            figures["training_curves"] = {"file": "training_curves.png"}
        except Exception as err:  # noqa: BLE001
            run.fail("plot training curves", err)
    return figures


# --------------------------------------------------------------------------- report
def _json_block(d: dict) -> list[str]:
    """A fenced JSON block, one top-level key per line (readable and still valid JSON)."""
    items = [f"  {json.dumps(k)}: {json.dumps(_jsonable(v))}" for k, v in d.items()]
    return ["```json", "{", ",\n".join(items), "}", "```"]


def _md_table(header: list, body: list) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + \
           ["| " + " | ".join(str(c) for c in r) + " |" for r in body]


def _write_report(run: _Run, rows: list[ModelRow], reading: list[str]) -> Path:
    doc, opts = run.doc, run.options
    agg = doc["aggregates"]
    data = doc["data"]
    n_runs = len(doc["folds"])
    seeds = ", ".join(str(s) for s in opts.seeds)
    L = [f"# genreseg reproduce — {Path(opts.data).name}", ""]
    if doc.get("synthetic"):
        L += ["> **SYNTHETIC DATA.** These results were computed on a generated corpus of tones, noise bursts "
              "and click trains, not on music. They exercise the pipeline only.", ""]
    L += [f"Dai et al., *LSTM-RNN based segment features for music genre classification* (ISCSLP 2016), "
          f"Tables 2 and 3, plus two classic baselines. Generated {doc['finished'] or doc['started']} by "
          f"`{doc['command']}`.", "",
          f"Every accuracy is the **mean ± std over {n_runs} test folds** ({doc['protocol']['name']} protocol, "
          f"{n_runs // max(1, len(opts.seeds))} fold(s) × {len(opts.seeds)} seed(s): {seeds}; population std, "
          "ddof=0). *n* is the number of distinct test tracks; each is tested once per seed.", ""]
    if doc["status"] != "complete":
        L += [f"**Run status: {doc['status']}** — figures cover what finished.", ""]

    # Table 2
    L += ["## Table 2 — frame models", ""]
    body = []
    for r in rows:
        a = agg.get(r.key, {})
        body.append([r.paper_name, r.run_name, _fmt(a.get("frame_acc")), _fmt(a.get("seg_acc")),
                     a.get("n_test_tracks", 0), f"{a.get('n_results', 0)}/{n_runs}"])
    L += _md_table(["Model (paper)", "as run", "Frame_acc", "Seg_acc", "n", "folds"], body) + [""]

    # Table 3
    L += ["## Table 3 — segment classifiers on LSTM posteriors", "",
          "LSeg: SVM on the posterior statistics (max, min, mean, share above k per class); FSeg: the same fused "
          "with the initial segment feature (track-mean scattering). Training-track posteriors are cross-fitted "
          f"({GRIDS[opts.grid].inner_folds} inner folds).", ""]
    body = []
    for r in rows:
        if not r.in_table3:
            continue
        a = agg.get(r.key, {})
        body.append([r.paper_name, r.run_name, _fmt(a.get("seg_acc")), _fmt(a.get("lseg_acc")),
                     _fmt(a.get("fseg_acc")), a.get("n_test_tracks", 0)])
    L += _md_table(["Model (paper)", "as run", "Seg_acc", "LSeg_acc", "FSeg_acc", "n"], body) + [""]

    # Baselines
    if doc.get("baselines"):
        L += ["## Baselines (same folds)", ""]
        desc = {"scattering-svm": "track-mean scattering frames, standardised, RBF SVM (C, γ by CV on the "
                                  "training fold)",
                "mfcc-svm": f"mean+std of {doc['configs']['mfcc']['n_mfcc']} MFCCs"
                            f"{' and deltas' if doc['configs']['mfcc']['deltas'] else ''}, standardised, "
                            "RBF SVM (C, γ by CV on the training fold)"}
        body = [[name, desc.get(name, ""), _fmt(agg.get(name, {}).get("track_acc")),
                 agg.get(name, {}).get("n_test_tracks", 0)]
                for name in doc["baselines"]]
        L += _md_table(["Baseline", "features and classifier", "track accuracy", "n"], body) + [""]

    L += ["## Reading", ""] + [f"- {line}" for line in reading] + [""]

    figs = doc.get("figures", {})
    if figs:
        L += ["## Figures", ""]
        if "confusion" in figs:
            L += [f"Confusion matrix of the best system, **{figs['confusion']['system']}** (summed over folds):", "",
                  f"![confusion]({figs['confusion']['file']})", ""]
        if "figure3" in figs:
            f3 = figs["figure3"]
            L += [f"Figure 3 of the paper for **{f3['model']}** on seed {f3['seed']} fold {f3['fold'] + 1}: (a) max, "
                  "(b) min, (c) mean posterior of each class for every test track, tracks grouped by true genre; "
                  "(d) one track's frame posteriors over time.", "", f"![figure 3]({f3['file']})", ""]
        if "training_curves" in figs:
            L += ["Training curves (mean over folds and seeds; the dashed held-out curve is the test fold's frame "
                  "accuracy, recorded for this plot and used for nothing else):", "",
                  f"![training curves]({figs['training_curves']['file']})", ""]

    # Data
    L += ["## Data", "", f"- source: `{opts.data}` (layout `{data['layout']}`)",
          f"- {data['tracks']} tracks, {data['total_duration_s'] / 60:.1f} min of audio, "
          f"{data['total_frames']} scattering frames" + (f", {data['artists']} artists" if data["artists"] else ""),
          "- tracks per label: " + ", ".join(f"{k} {v}" for k, v in data["labels"].items())]
    if data["splits"]:
        L.append("- tracks per split: " + ", ".join(f"{k} {v}" for k, v in data["splits"].items()))
    ex = doc.get("extraction", {})
    L += [f"- feature store `{ex.get('store')}`: {ex.get('computed', 0)} extracted this run, "
          f"{ex.get('cached', 0)} reused, {len(ex.get('failed', []))} failed"
          + (f", {len(ex['skipped'])} files of the data folder skipped (listed in results.json)"
             if ex.get("skipped") else ""), ""]

    # Protocol
    pr = doc["protocol"]
    L += ["## Protocol", "", f"- protocol `{pr['name']}`" + (f", k = {pr['k']}" if pr["name"] != "official" else
                                                             " (train: training, test: development)"),
          f"- seeds: {seeds} (folds, network initialisation and shuffling, inner folds, SVM searches)",
          "- train/test tracks per fold: " + "; ".join(
              f"seed {f['seed']} fold {f['fold'] + 1}: {f['n_train']}/{f['n_test']}" for f in doc["folds"]), ""]

    # Configs
    L += ["## Configurations", "", f"Grid `{opts.grid}`, preset `{opts.preset}`"
          + (f", epochs forced to {opts.epochs}" if opts.epochs else "") + ".", "",
          "Feature config (the store's):", "", *_json_block(doc["configs"]["feature"]), "",
          "Frame models (seed shown for the first seed; each seed uses its own):", ""]
    fm = doc["configs"]["frame_models"]
    keys = sorted({k for c in fm.values() for k in c} - {"hidden", "kind"})
    # Settings a kind ignores are shown as "–", not as values that look meaningful.
    ignored = {"dnn": {"cell", "max_seq_frames", "grad_clip"}, "lstm": {"activation"}}
    body = [[r.label, ", ".join(str(h) for h in fm[r.key]["hidden"])]
            + ["–" if k in ignored[r.kind] else fm[r.key][k] for k in keys] for r in rows]
    L += _md_table(["row", "hidden"] + keys, body) + [""]
    L += ["Segment stage (SegmentConfig):", "", *_json_block(doc["configs"]["segment"]), ""]
    if doc.get("baselines"):
        L += ["Baselines (MFCCConfig, SVMGrid):", "",
              *_json_block({"mfcc": doc["configs"].get("mfcc"), "svm": doc["configs"]["svm"]}), ""]

    # Versions and timings
    v = doc["versions"]
    L += ["## Environment", "", "- " + ", ".join(f"{k} {val}" for k, val in v.items()),
          f"- {doc['machine']['cpus']} CPUs, torch threads {doc['machine']['torch_threads']}, "
          f"device `{opts.device}`", ""]
    L += ["## Wall time per stage", ""]
    L += _md_table(["stage", "seconds"], [[k, f"{s:.1f}"] for k, s in run.timings.items()]) + [""]
    if doc.get("total_seconds") is not None:
        L += [f"Total: {doc['total_seconds']:.1f} s.", ""]
    if run.failures:
        L += ["## Failures", ""] + [f"- {f['where']}: {f['error']}" for f in run.failures] + [""]
    path = run.out / "REPORT.md"
    from .store import atomic_write_bytes

    atomic_write_bytes(path, ("\n".join(L) + "\n").encode())
    return path


# --------------------------------------------------------------------------- main entry
def run_reproduce(options: ReproduceOptions, log_stream=None, command: str | None = None,
                  synthetic: bool = False) -> tuple[dict, int]:
    """Run the whole reproduction and write its report.

    Parameters
    ----------
    options : ReproduceOptions
    log_stream : file, optional
        Where progress lines go (default stderr).
    command : str, optional
        The command line, recorded in the report.
    synthetic : bool
        The data is the synthetic corpus: the report says so at the top.

    Returns
    -------
    results : dict
        The ``results.json`` document.
    exit_code : int
        0 when every stage ran, 1 when some fold, row, file or plot failed (the
        report lists them).

    Raises
    ------
    GenresegError
        The run cannot start or cannot go on: unreadable data, no track extracted,
        an impossible split.
    """
    import torch

    from .datasets import list_dataset, make_splits

    t_start = time.perf_counter()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(options=options, out=out, log=_Log(log_stream))
    grid = GRIDS[options.grid]
    rows = model_rows(grid)
    threads_before = torch.get_num_threads()
    # One intra-op thread by default: these small models gain nothing from a second
    # thread on a shared two-core machine and lose to the synchronisation.
    torch.set_num_threads(options.threads)
    try:
        run.doc.update(format=RESULTS_FORMAT, status="running", command=command or command_line(options),
                       started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), finished=None, synthetic=synthetic,
                       options=options.to_dict(), grid=grid.to_dict(), rows=[r.to_dict() for r in rows],
                       versions=_versions(), machine={"cpus": os.cpu_count(), "torch_threads": options.threads,
                                                      "platform": platform.platform()},
                       folds=[], aggregates={}, baselines=list(_baseline_names(options)))
        run.log(f"genreseg reproduce: data {options.data}, grid {options.grid}, preset {options.preset}, "
                f"seeds {list(options.seeds)}, out {out}")

        with run.stage("data"):
            listing = list_dataset(options.data, layout=options.layout)
            tracks = listing.tracks
            protocol = _resolve_protocol(options.protocol, tracks)
            for path, reason in listing.skipped:
                run.log(f"skipped: {path}: {reason}")
        with run.stage("extraction"):
            store, stored_rows = _extract_features(run, tracks, listing.skipped)
        usable = [t for t in tracks if t.track_id in stored_rows]
        if not usable:
            raise GenresegError(f"{options.data}: no track could be extracted (see the failures above)")
        label_names = sorted({t.label for t in usable})
        features = store.load([stored_rows[t.track_id] for t in usable], label_names=label_names)
        layout = options.layout if options.layout != "auto" else _detected_layout(options.data)
        run.doc["data"] = _data_summary(usable, stored_rows, layout)
        run.doc["label_names"] = label_names
        run.doc["protocol"] = {"name": protocol, "k": options.folds if protocol != "official" else None}
        run.doc["configs"] = {"feature": store.config.to_dict(),
                              "frame_models": {r.key: frame_config_for(r, grid, options.preset, options.seeds[0],
                                                                       options.device, options.epochs).to_dict()
                                               for r in rows},
                              "segment": segment_config_for(grid, options.seeds[0]).to_dict(),
                              "svm": svm_grid_for(grid, options.seeds[0]).to_dict()}
        d = run.doc["data"]
        run.log(f"{d['tracks']} tracks, {len(label_names)} labels, {d['total_duration_s'] / 60:.1f} min; "
                f"protocol {protocol}")
        run.save()

        X_base = _baseline_features(run, features, usable, stored_rows, store.root) if options.baselines else {}
        kept: dict = {}  # the first fold's test posteriors, for Figure 3
        for seed in options.seeds:
            splits = make_splits(usable, protocol, options.folds, seed)
            for f, (tr, te) in enumerate(splits):
                where = f"seed {seed} fold {f + 1}/{len(splits)}"
                try:
                    _run_fold(run, rows, features, X_base, seed, f, tr, te, where,
                              kept if not run.doc["folds"] else None)
                except Exception as err:  # noqa: BLE001 - one fold must not sink the others
                    run.fail(where, err)
                run.doc["aggregates"] = _aggregate(run, rows)
                run.save()

        n_test_tracks = len({t for f in run.doc["folds"] for r in f["rows"].values() for t in r["track_ids"] or []}
                            ) or len(usable)
        reading = _reading(run, rows, n_test_tracks)
        with run.stage("plots"):
            run.doc["figures"] = _make_plots(run, rows, kept, label_names, store.config.hop_seconds)
        run.doc["status"] = "complete"
        run.doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        run.doc["total_seconds"] = time.perf_counter() - t_start
        with run.stage("writing the report"):
            run.save()
            report = _write_report(run, rows, reading)
        run.save()  # with the report's own time
        run.log(f"report written to {report}")
        run.log(f"results written to {out / 'results.json'}")
        return run.doc, EXIT_OK if not run.failures else EXIT_PARTIAL
    except BaseException as err:
        if run.doc:
            run.doc["status"] = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
            run.doc["error"] = f"{type(err).__name__}: {err}"
            try:
                run.save()
            except OSError:
                pass
        raise
    finally:
        torch.set_num_threads(threads_before)


def _baseline_names(options: ReproduceOptions) -> tuple[str, ...]:
    from .baselines import BASELINES

    return BASELINES if options.baselines else ()


def _detected_layout(data) -> str:
    from .datasets import detect_layout

    try:
        return detect_layout(data)
    except GenresegError:
        return "unknown"


# --------------------------------------------------------------------------- CLI
def add_reproduce_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``genreseg reproduce`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "reproduce", help="extract, train and evaluate the paper's Tables 2 and 3 and two baselines; write a report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Reproduce Dai et al. (ISCSLP 2016) end to end on a dataset:\n"
            "  1. extract scattering features into a store (reused when already there);\n"
            "  2. on every fold and seed, train the six frame models of Table 2 (Frame_acc, Seg_acc),\n"
            "     the LSTMs' segment classifiers of Table 3 (LSeg_acc, FSeg_acc) and two SVM baselines;\n"
            "  3. write RESULTS/REPORT.md, RESULTS/results.json (rewritten after every row) and PNG figures.\n"
            "Progress and the time of each stage go to stderr."),
        epilog=(
            "exit status: 0 everything ran; 1 some file, row or figure failed (listed in the report,\n"
            "the rest ran); 2 the run could not start (unreadable data, impossible split).\n\n"
            "example:\n  genreseg reproduce --data ../shared/data/gtzan_mini --out results --grid quick"))
    p.add_argument("--data", required=True, metavar="DIR",
                   help="the dataset: a folder per label (GTZAN), an ISMIR 2004 collection root, or a CSV manifest")
    p.add_argument("--layout", default="auto", choices=["auto", "folders", "ismir2004", "csv"],
                   help="how DIR is organised (default: detect)")
    p.add_argument("--protocol", default="auto", choices=["auto", "official", "kfold", "artist-kfold"],
                   help="evaluation protocol: 'official' trains on the collection's training split and tests on "
                        "development (ISMIR 2004); 'kfold' is stratified k-fold; 'artist-kfold' keeps each artist "
                        "on one side; 'auto' (default) is official when the tracks carry training and development "
                        "splits, else kfold")
    p.add_argument("--folds", type=int, default=5, metavar="K", help="folds of the k-fold protocols (default 5)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED",
                   help="one run per seed; each seed fixes the folds, the network initialisation and shuffling, the "
                        "inner folds and the SVM searches (default: 0)")
    p.add_argument("--grid", default="quick", choices=sorted(GRIDS),
                   help="'quick' (default): hidden sizes /8, 8 DNN and 6 LSTM epochs at Adam lr 3e-3, 2 inner "
                        "folds, 3 CV folds — "
                        "a few minutes on gtzan_mini on 2 cores; 'paper': the paper's sizes with the preset's "
                        "epochs, 5 inner and CV folds")
    p.add_argument("--preset", default="default", choices=["default", "paper"],
                   help="training recipe: 'default' (Adam, converges in little CPU time) or 'paper' (the paper's "
                        "momentum SGD, 100 epochs unless the grid or --epochs says otherwise)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="force N training epochs for every model (smoke tests; overrides grid and preset)")
    p.add_argument("--store", default=None, metavar="STORE",
                   help="feature store directory (default RESULTS/store); share one between runs to extract once")
    p.add_argument("--backend", default=None, choices=["fast", "kymatio"],
                   help="scattering implementation for a new store (default: the feature config's)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="extraction worker processes (default 2; 0 = in this process, no Dask)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the networks train (default: CUDA when present, else CPU)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch intra-op threads (default 1: faster for these small models on a shared machine)")
    p.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the scattering-SVM and MFCC-SVM baselines")
    p.add_argument("--out", required=True, metavar="RESULTS",
                   help="output directory: REPORT.md, results.json, *.png (created if needed)")
    p.set_defaults(func=cmd_reproduce)
    return p


def options_from_args(args) -> ReproduceOptions:
    """:class:`ReproduceOptions` from parsed ``reproduce`` arguments."""
    return ReproduceOptions(data=args.data, out=args.out, layout=args.layout, protocol=args.protocol,
                            folds=args.folds, seeds=tuple(args.seeds), grid=args.grid, preset=args.preset,
                            store=args.store, workers=args.workers, backend=args.backend, epochs=args.epochs,
                            device=args.device, threads=args.threads, baselines=args.baselines)


def cmd_reproduce(args) -> int:
    """Entry point of ``genreseg reproduce``; returns the exit code."""
    options = options_from_args(args)
    _, code = run_reproduce(options, command=command_line(options))
    return code


def command_line(options: ReproduceOptions) -> str:
    """The ``genreseg reproduce`` command that runs ``options`` (every option spelled out)."""
    import shlex

    o = options
    parts = ["genreseg", "reproduce", "--data", o.data, "--layout", o.layout, "--protocol", o.protocol,
             "--folds", o.folds, "--seeds", *o.seeds, "--grid", o.grid, "--preset", o.preset,
             "--store", o.store_root, "--workers", o.workers, "--device", o.device, "--threads", o.threads]
    if o.backend:
        parts += ["--backend", o.backend]
    if o.epochs is not None:
        parts += ["--epochs", o.epochs]
    if not o.baselines:
        parts.append("--no-baselines")
    return " ".join(shlex.quote(str(x)) for x in parts + ["--out", o.out])


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="genreseg")
    add_reproduce_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args()
    sys.exit(ns.func(ns))
