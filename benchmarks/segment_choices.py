"""Measure the paper's figures and the segment-stage choices on real features.

For each frame model (default preset: DNN(1024), LSTM(512)) and each outer fold of a
stratified K-fold (seed 0), it trains the frame model on the training fold, its
cross-fitted inner models, and then many segment classifiers on the resulting
posteriors, and prints Markdown tables:

1. Frame_acc, Seg_acc, LSeg_acc, FSeg_acc (mean ± std over folds) with the default
   :class:`~genreseg.segments.SegmentConfig`;
2. the threshold k: inner-CV accuracy (validation, training folds only) and test accuracy;
3. segment classifier: SVM vs logistic regression vs MLP;
4. fusion weighting: naive concat vs block weighting (several scattering weights) vs PCA;
5. cross-fit vs in-sample posteriors for the segment classifier;
6. the paper preset: a few epochs of each model, held-out frame accuracy per epoch.

Usage::

    python benchmarks/segment_choices.py --store STORE_DIR          # a FeatureStore
    python benchmarks/segment_choices.py --npy-dir DIR              # DIR/<genre>.<n>.npy

With ``--store`` on an empty directory, gtzan_mini is extracted into it first.
Posteriors are cached under ``--cache`` (as .npz arrays) so a rerun only redoes the
segment stage. A full run took ~70 min on a busy 2-core CPU (30 LSTM trainings of
~1 min; the segment-stage grid searches several minutes a model; ``--mlp`` adds ~8
min a model). Torch runs on one thread by default: on a shared 2-core machine the
intra-op threads of these small models cost more in synchronisation than they gain
(measured 5x slower with 2 threads under load).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from genreseg.evaluation import aggregate, evaluate, summarize
from genreseg.models import default_preset, frame_posteriors, paper_preset, train_frame_model
from genreseg.segments import (
    SegmentClassifier,
    SegmentConfig,
    cross_fitted_posteriors,
    initial_segment_features,
    segment_features,
)

REPO = Path(__file__).resolve().parents[1]
GTZAN = REPO.parent / "shared" / "data" / "gtzan_mini"
KS = (0.1, 0.2, 0.3, 0.5)


# --------------------------------------------------------------------------- data
class _Features:
    def __init__(self, sequences, labels, label_names, track_ids):
        self.sequences, self.labels = sequences, np.asarray(labels, dtype=np.int64)
        self.label_names, self.track_ids = list(label_names), list(track_ids)


def load_npy_dir(path: Path) -> _Features:
    files = sorted(Path(path).glob("*.npy"))
    genres = [f.name.split(".")[0] for f in files]
    names = sorted(set(genres))
    return _Features([np.load(f) for f in files], [names.index(g) for g in genres], names,
                     [f.stem for f in files])


def load_store(path: Path) -> _Features:
    from genreseg.store import FeatureStore

    store_path = Path(path)
    if not (store_path.exists() and any(store_path.iterdir())):
        from genreseg.extract import extract
        from genreseg.features import FeatureConfig

        tracks = [{"path": str(f), "label": d.name, "track_id": f"{d.name}/{f.name}"}
                  for d in sorted(p for p in GTZAN.iterdir() if p.is_dir()) for f in sorted(d.glob("*.wav"))]
        report = extract(tracks, store_path, FeatureConfig(), workers=2, progress=True)
        if not report.ok:
            sys.exit(f"extraction failed: {report.failed}")
    fs = FeatureStore(store_path).load()
    return _Features(fs.sequences, fs.labels, fs.label_names, fs.track_ids)


# --------------------------------------------------------------------------- cached posteriors
def _save_lists(path: Path, seconds: float, **lists) -> None:
    arrays = {"seconds": np.array(seconds)}
    for name, items in lists.items():
        arrays[f"{name}_data"] = np.concatenate(items)
        arrays[f"{name}_len"] = np.array([len(p) for p in items])
    np.savez(path, **arrays)


def _load_list(npz, name) -> list:
    bounds = np.cumsum(np.concatenate([[0], npz[f"{name}_len"]]))
    data = npz[f"{name}_data"]
    return [data[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]


def fold_posteriors(feats, kind, fold, tr, te, args) -> dict:
    """Test, in-sample and cross-fitted posteriors of one outer fold (cached)."""
    cfg = default_preset(kind).replace(seed=args.seed, device=args.device)
    # The cache key covers everything that shapes the posteriors.
    key = json.dumps([cfg.to_dict(), args.folds, args.inner_folds, len(feats.labels)], sort_keys=True)
    path = Path(args.cache) / f"{kind}_fold{fold}_{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as z:
            return {n: _load_list(z, n) for n in ("test", "insample", "crossfit")} | {"seconds": float(z["seconds"])}
    seqs, y = feats.sequences, feats.labels
    train = [seqs[i] for i in tr]
    t0 = time.perf_counter()
    model = train_frame_model(train, y[tr], len(feats.label_names), cfg, progress=args.progress)
    seconds = time.perf_counter() - t0
    out = {"test": frame_posteriors(model, [seqs[i] for i in te]), "insample": frame_posteriors(model, train)}
    out["crossfit"] = cross_fitted_posteriors(train, y[tr], len(feats.label_names), cfg, args.inner_folds,
                                              args.seed, progress=args.progress).posteriors
    _save_lists(path, seconds, **out)
    return out | {"seconds": seconds}


# --------------------------------------------------------------------------- segment stage
def seg_fit(stats_tr, y_tr, stats_te, cfg, init_tr=None, init_te=None):
    clf = SegmentClassifier(cfg).fit(stats_tr, y_tr, initial=init_tr)
    return clf.predict(stats_te, initial=init_te), clf.cv_score_


def fmt(values) -> str:
    mean, std = summarize(values)
    return f"{mean:.3f} ± {std:.3f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--store", help="FeatureStore directory (extracted from gtzan_mini when empty)")
    src.add_argument("--npy-dir", help="directory of <genre>.<n>.npy frame-feature arrays")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--inner-folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default="dnn,lstm")
    ap.add_argument("--paper-epochs", default="dnn:100,lstm:30",
                    help="epochs of the paper-preset runs on fold 0 ('' skips them)")
    ap.add_argument("--cache", default="/tmp/genreseg-bench-cache")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="also write all figures to this JSON file")
    ap.add_argument("--mlp", action="store_true", help="also try the MLP segment classifier (slow: ~8 min a model)")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    feats = load_store(Path(args.store)) if args.store else load_npy_dir(Path(args.npy_dir))
    y, n_classes = feats.labels, len(feats.label_names)
    init = initial_segment_features(feats.sequences)
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=args.seed).split(np.zeros(len(y)), y))
    print(f"{len(y)} tracks, {n_classes} classes, D={feats.sequences[0].shape[1]}, "
          f"{args.folds}-fold stratified CV (seed {args.seed}), inner folds {args.inner_folds}\n")
    report: dict = {}
    default_seg = SegmentConfig(seed=args.seed, inner_folds=args.inner_folds)

    for kind in args.kinds.split(","):
        t_kind = time.perf_counter()
        preset = default_preset(kind)
        posts = [fold_posteriors(feats, kind, f, tr, te, args) for f, (tr, te) in enumerate(folds)]
        rows: dict = {}

        def record(name, cfg, mode="crossfit", fused=True, stats_only=True):
            # One segment config over all folds: test accuracy and inner-CV score.
            res = {"lseg": [], "fseg": [], "lseg_cv": [], "fseg_cv": []}
            for (tr, te), p in zip(folds, posts):
                s_tr, s_te = segment_features(p[mode], cfg.k), segment_features(p["test"], cfg.k)
                if stats_only:
                    pred, cv = seg_fit(s_tr, y[tr], s_te, cfg)
                    res["lseg"].append(np.mean(pred == y[te]))
                    res["lseg_cv"].append(cv)
                if fused:
                    pred, cv = seg_fit(s_tr, y[tr], s_te, cfg, init[tr], init[te])
                    res["fseg"].append(np.mean(pred == y[te]))
                    res["fseg_cv"].append(cv)
            rows[name] = res
            return res

        # 1. main figures with the default segment config
        results = []
        for (tr, te), p in zip(folds, posts):
            s_tr, s_te = segment_features(p["crossfit"], default_seg.k), segment_features(p["test"], default_seg.k)
            lseg = SegmentClassifier(default_seg).fit(s_tr, y[tr]).predict(s_te)
            fseg = SegmentClassifier(default_seg).fit(s_tr, y[tr], initial=init[tr]).predict(s_te, initial=init[te])
            results.append(evaluate(y[te], p["test"], feats.label_names, lseg, fseg,
                                    [feats.track_ids[i] for i in te]))
        agg = aggregate(results)
        train_s = [p["seconds"] for p in posts]
        print(f"## {kind.upper()}{preset.hidden} default preset ({preset.epochs} epochs, "
              f"{np.mean(train_s):.1f} s per full training)\n")
        print("| Frame_acc | Seg_acc | LSeg_acc | FSeg_acc |\n| --- | --- | --- | --- |")
        print("| " + " | ".join(f"{agg[m]['mean']:.3f} ± {agg[m]['std']:.3f}"
                               for m in ("frame_acc", "seg_acc", "lseg_acc", "fseg_acc")) + " |\n")
        print(f"segment config: k={default_seg.k}, {default_seg.classifier}, fusion={default_seg.fusion}, "
              f"posteriors={default_seg.posteriors}\n")

        # Baseline: the initial segment feature alone (the scattering track mean).
        base = []
        for tr, te in folds:
            pred, _ = seg_fit(init[tr], y[tr], init[te], default_seg)
            base.append(np.mean(pred == y[te]))
        print(f"initial segment feature alone (SVM): {fmt(base)}\n")

        # 2. k
        print("### threshold k (SVM, block fusion, cross-fit)\n")
        print("| k | LSeg inner-CV | LSeg test | FSeg inner-CV | FSeg test |\n| --- | --- | --- | --- | --- |")
        for k in KS:
            r = record(f"k={k}", default_seg.replace(k=k))
            print(f"| {k} | {fmt(r['lseg_cv'])} | {fmt(r['lseg'])} | {fmt(r['fseg_cv'])} | {fmt(r['fseg'])} |")

        # 3. classifier
        print("\n### segment classifier (default k, block fusion, cross-fit)\n")
        print("| classifier | LSeg test | FSeg test | LSeg inner-CV | FSeg inner-CV |\n| --- | --- | --- | --- | --- |")
        for clf in ("svm", "logreg") + (("mlp",) if args.mlp else ()):
            r = record(f"clf={clf}", default_seg.replace(classifier=clf))
            print(f"| {clf} | {fmt(r['lseg'])} | {fmt(r['fseg'])} | {fmt(r['lseg_cv'])} | {fmt(r['fseg_cv'])} |")

        # 4. fusion
        print("\n### fusion weighting (SVM, default k, cross-fit)\n")
        print("| fusion | FSeg test | FSeg inner-CV |\n| --- | --- | --- |")
        for name, change in (("concat (joint standardisation)", {"fusion": "concat"}),
                             ("block, init_weight 0.5", {"fusion": "block", "init_weight": 0.5}),
                             ("block, init_weight 1", {"fusion": "block", "init_weight": 1.0}),
                             ("block, init_weight 2", {"fusion": "block", "init_weight": 2.0}),
                             ("pca 20, weight 1", {"fusion": "pca", "pca_components": 20}),
                             ("pca 40, weight 1", {"fusion": "pca", "pca_components": 40})):
            r = record(f"fusion={name}", default_seg.replace(**change), stats_only=False)
            print(f"| {name} | {fmt(r['fseg'])} | {fmt(r['fseg_cv'])} |")

        # 5. cross-fit vs in-sample
        print("\n### posteriors of the training tracks (SVM, default k, block fusion)\n")
        print("| training posteriors | LSeg test | FSeg test | LSeg inner-CV |\n| --- | --- | --- | --- |")
        for mode in ("crossfit", "insample"):
            r = record(f"mode={mode}", default_seg, mode=mode)
            print(f"| {mode} | {fmt(r['lseg'])} | {fmt(r['fseg'])} | {fmt(r['lseg_cv'])} |")
        conf = {m: np.mean([np.mean([q[:, y[i]].mean() for q, i in zip(p[m], tr)])
                            for (tr, _), p in zip(folds, posts)]) for m in ("crossfit", "insample")}
        conf["test"] = np.mean([np.mean([q[:, y[i]].mean() for q, i in zip(p["test"], te)])
                                for (_, te), p in zip(folds, posts)])
        print(f"\nmean posterior of the true class: in-sample {conf['insample']:.3f}, "
              f"cross-fit {conf['crossfit']:.3f}, test {conf['test']:.3f}\n")
        print(f"({kind}: {time.perf_counter() - t_kind:.0f} s)\n")
        report[kind] = {"aggregate": agg, "folds": [r.to_dict() for r in results], "initial_only": base,
                        "train_seconds": train_s,
                        "rows": {k: {m: [None if v is None else float(v) for v in vs] for m, vs in r.items()}
                                 for k, r in rows.items()}}

    # 6. paper preset
    if args.paper_epochs:
        tr, te = folds[0]
        print("## paper preset (momentum SGD 0.8, summed loss, lr decay 0.9/epoch), fold 0\n")
        print("| model | epochs | s/epoch | held-out frame acc at epochs 1, 5, 10, 20, 30, 50, 100 | train loss last |")
        print("| --- | --- | --- | --- | --- |")
        report["paper"] = {}
        for item in args.paper_epochs.split(","):
            kind, epochs = item.split(":")
            cfg = paper_preset(kind).replace(epochs=int(epochs), seed=args.seed, device=args.device)
            model = train_frame_model([feats.sequences[i] for i in tr], y[tr], n_classes, cfg,
                                      valid=([feats.sequences[i] for i in te], y[te]), progress=args.progress)
            h = model.history
            at = ", ".join(f"{h['valid_frame_acc'][e - 1]:.3f}" if e <= len(h["valid_frame_acc"]) else "-"
                           for e in (1, 5, 10, 20, 30, 50, 100))
            print(f"| {kind}{cfg.hidden} {cfg.cell if kind == 'lstm' else cfg.activation} | {epochs} | "
                  f"{np.mean(h['seconds']):.1f} | {at} | {h['loss'][-1]:.3f} |")
            report["paper"][kind] = h
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
