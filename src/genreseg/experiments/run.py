"""The run loop of ``genreseg reproduce``: data, features, folds, rows, baselines, results.

One command goes from audio to a report::

    genreseg reproduce --data ../shared/data/gtzan_mini --out results --grid quick

1. **Extraction** — frames of every track (scattering, or ``--features musicnn|both``) into a feature store
   (``RESULTS/store`` unless ``--store``); a rerun finds them there and says so.
2. **Folds** — the protocol's train/test splits (:mod:`genreseg.splits`), once per seed.
3. **Table 2** — on every fold, each frame model of the paper (DNN(1024), DNN(1024-1024),
   LSTM(512), LSTM(1024), LSTM(512-512), LSTM(1024-1024)) is trained on the training
   tracks and scored on the test tracks: Frame_acc and Seg_acc (majority vote).
4. **Table 3** — for each LSTM, the segment classifiers on its posterior statistics
   (LSeg) and on those fused with the initial segment feature (FSeg)
   (:func:`genreseg.segments.fit_segment_models`, with the cross-fitted training
   posteriors that module uses by default, reusing the Table 2 model for the test
   tracks).
5. **Baselines** — track mean of the store's frames + RBF SVM, MFCC statistics + RBF SVM, and the
   peers' musicnn embedding (mean+std of the penultimate over 3-s patches) + RBF SVM
   (:mod:`genreseg.baselines`), on the same folds.
6. **Report** — ``REPORT.md``, ``results.json`` (rewritten after every row, so a
   crash keeps what finished) and PNG figures (:mod:`genreseg.experiments.report`).

Seeds: each seed fixes the folds (k-fold protocols), the initialisation and shuffling
of every network, the inner folds and the SVM searches; a run with the same data,
options and seeds gives the same numbers on the CPU.
"""

from __future__ import annotations

import platform
import sys
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GenresegError
from ..evaluation import mean_std
from ..files import atomic_write_json
from ..runtime import library_versions, torch_threads, usable_cpus
from .config import GRIDS, ModelRow, ReproduceOptions, command_line, frame_config_for, model_rows, \
    segment_config_for, svm_grid_for
from .report import make_plots, reading, write_report

__all__ = ["EXIT_OK", "EXIT_PARTIAL", "RESULTS_FORMAT", "run_reproduce"]

#: Exit codes, as in :mod:`genreseg.cli`: every row ran / some rows failed (listed).
EXIT_OK, EXIT_PARTIAL = 0, 1
RESULTS_FORMAT = "genreseg-reproduce/1"


class _Log:
    """Progress lines on stderr, each stamped with the time since the run started."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {message}", file=self.stream, flush=True)




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
        atomic_write_json(self.out / "results.json", self.doc, indent=1, sort_keys=False)

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
    from ..extract import extract, store_feature_config
    from ..store import FeatureStore

    opts = run.options
    root = opts.store_root
    store = FeatureStore(root, store_feature_config(root, family=opts.features, backend=opts.backend))
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
    from ..audio import content_hash

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
    from ..evaluation import evaluate
    from ..models import frame_posteriors, train_frame_model
    from ..segments import fit_segment_models, predict_segments

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
        pred = predict_segments(models, test.sequences, posteriors)  # the row's model: not run again
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
    from ..baselines import svm_baseline
    from ..evaluation import confusion_matrix

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
    from ..baselines import MFCCConfig, MusicnnStatsConfig, track_mfcc_statistics, track_musicnn_statistics
    from ..features import initial_segment_features

    configs = {"mfcc": MFCCConfig(), "musicnn": MusicnnStatsConfig()}
    run.doc["configs"].update({name: cfg.to_dict() for name, cfg in configs.items()})
    # The track mean of the store's frames: of the scattering frames in a scattering store.
    X_base = {"scattering-svm": initial_segment_features(features.sequences)}
    # The store already knows every file's content hash: its entry key starts with it.
    hashes = [stored_rows[t.track_id]["key"].split("-")[0] for t in tracks]
    for name, compute in (("mfcc", track_mfcc_statistics), ("musicnn", track_musicnn_statistics)):
        with run.stage(f"baselines: {name} statistics"):
            try:
                X, counts = compute([t.path for t in tracks], store_root / "baselines", configs[name], hashes=hashes)
                X_base[f"{name}-svm"] = X
                run.doc[f"{name}_cache"] = counts
                run.log(f"{name} statistics: {counts['computed']} computed, {counts['cached']} reused from "
                        f"{store_root / 'baselines'}")
            except Exception as err:  # noqa: BLE001 - the paper's rows do not need it
                run.fail(f"baselines: {name} statistics", err)
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
            entry[m] = mean_std([r.get(m) for r in recs])
        out[row.key] = entry
    for name in run.doc.get("baselines", []):
        recs = [f["baselines"][name] for f in folds if name in f.get("baselines", {})]
        out[name] = {"label": name, "n_results": len(recs),
                     "n_test_tracks": len({t for r in recs for t in r.get("track_ids", [])}),
                     "n_test_decisions": int(sum(r["n_tracks"] for r in recs)),
                     "track_acc": mean_std([r["track_acc"] for r in recs])}
    return out


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
    # One intra-op thread by default: these small models gain nothing from a second
    # thread on a shared two-core machine and lose to the synchronisation.
    with torch_threads(options.threads):
        return _run_reproduce(options, log_stream, command, synthetic)


def _run_reproduce(options: ReproduceOptions, log_stream, command, synthetic) -> tuple[dict, int]:
    from ..datasets import list_dataset
    from ..splits import make_splits

    t_start = time.perf_counter()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(options=options, out=out, log=_Log(log_stream))
    grid = GRIDS[options.grid]
    rows = model_rows(grid, options.rows)
    try:
        run.doc.update(format=RESULTS_FORMAT, status="running", command=command or command_line(options),
                       started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), finished=None, synthetic=synthetic,
                       options=options.to_dict(), grid=grid.to_dict(), rows=[r.to_dict() for r in rows],
                       versions=library_versions(), machine={"cpus": usable_cpus(), "torch_threads": options.threads,
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
            # The entry key names the audio's content: copies of one recording stay on one side.
            splits = make_splits([t.label for t in usable], protocol, options.folds, seed,
                                 split_names=[t.split for t in usable], artists=[t.artist for t in usable],
                                 replicas=[stored_rows[t.track_id]["key"] for t in usable])
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
        lines = reading(run, rows, n_test_tracks)
        with run.stage("plots"):
            run.doc["figures"] = make_plots(run, rows, kept, label_names, store.config.hop_seconds)
        run.doc["status"] = "complete"
        run.doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        run.doc["total_seconds"] = time.perf_counter() - t_start
        with run.stage("writing the report"):
            run.save()
            report = write_report(run, rows, lines)
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


def _baseline_names(options: ReproduceOptions) -> tuple[str, ...]:
    from ..baselines import BASELINES

    return BASELINES if options.baselines else ()


def _detected_layout(data) -> str:
    from ..datasets import detect_layout

    try:
        return detect_layout(data)
    except GenresegError:
        return "unknown"
