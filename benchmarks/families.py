"""Ablation of the frame-feature families (issue 19): scattering vs musicnn vs both.

For every setup (gtzan_mini with stratified folds; homburg3 with stratified folds and
with artist-filtered folds) and every family, the script runs ``genreseg reproduce``
with the quick grid on the same folds and seeds (5 folds x 3 seeds by default) and the
rows that carry the comparison (``--rows``, default DNN(1024) and LSTM(512) of the
paper at /8 size), with the baselines: the peers' recipe (``musicnn-svm``: mean+std of
musicnn's penultimate over 3-s patches + RBF SVM, grid-searched in the training fold),
the track-mean SVM of the run's own frames and the MFCC SVM. Nothing is chosen on test
folds: every search runs inside the training fold.

``--study frames`` measures instead how musicnn frames are made
(:mod:`genreseg.features.musicnn.frames`): the frame's content (``penultimate``,
``taggram``, ``midend``) and its window (3 s, 1.5 s), on 5 folds x 1 seed of the two
stratified setups, which chose the family's default.

Usage::

    python benchmarks/families.py --out /work/cache/families            # the ablation
    python benchmarks/families.py --study frames --out /work/cache/frames
    python benchmarks/families.py --seeds 0 --folds 2 --out /tmp/smoke  # a smoke run

Each run's ``results.json`` and ``REPORT.md`` stay under ``--out``; the script prints a
Markdown table (mean ± std over (seed, fold)) and writes it to ``OUT/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SETUPS = {
    "gtzan_mini": (SHARED / "gtzan_mini", "kfold"),
    "homburg3": (SHARED / "homburg3" / "manifest.csv", "kfold"),
    "homburg3-artist": (SHARED / "homburg3" / "manifest.csv", "artist-kfold"),
}
FAMILIES = ("scattering", "musicnn", "both")
FRAME_CHOICES = (("penultimate", 3.0), ("taggram", 3.0), ("midend", 3.0), ("penultimate", 1.5))


def _fmt(stat) -> str:
    return "–" if not stat else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def run_one(data: Path, protocol: str, out: Path, store: Path, family: str, args, config=None,
            baselines: bool = True) -> dict:
    """One reproduce run; reuses ``out/results.json`` when it finished before."""
    from genreseg.experiments import ReproduceOptions, run_reproduce
    from genreseg.store import FeatureStore

    done = out / "results.json"
    if done.exists() and json.loads(done.read_text()).get("status") == "complete":
        print(f"reusing {done}", file=sys.stderr)
        return json.loads(done.read_text())
    if config is not None:
        FeatureStore(store, config)  # a store of exactly these features; reproduce then keeps its config
    options = ReproduceOptions(data=str(data), out=str(out), protocol=protocol, folds=args.folds,
                               seeds=tuple(args.seeds), grid="quick", store=str(store), workers=args.workers,
                               features=family, rows=tuple(args.rows), baselines=baselines)
    t0 = time.perf_counter()
    doc, _ = run_reproduce(options)
    print(f"{out}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return doc


def _row_cells(doc: dict, rows) -> list:
    agg = doc["aggregates"]
    cells = []
    for key in rows:
        a = agg.get(key, {})
        cells.append(_fmt(a.get("seg_acc")))
        if key.startswith("lstm"):
            cells += [_fmt(a.get("lseg_acc")), _fmt(a.get("fseg_acc"))]
    return cells


def ablation(args) -> list[str]:
    lines = []
    for setup in args.setups:
        data, protocol = SETUPS[setup]
        head = ["features"] + [c for key in args.rows for c in
                               ([f"{key} Seg", f"{key} LSeg", f"{key} FSeg"] if key.startswith("lstm")
                                else [f"{key} Seg"])]
        body, baselines = [], {}
        for family in args.families:
            name = setup.split("-")[0]
            doc = run_one(data, protocol, args.out / setup / family, args.out / "stores" / f"{name}-{family}",
                          family, args)
            body.append([family] + _row_cells(doc, args.rows))
            for b in doc.get("baselines", []):
                label = b if b != "scattering-svm" else f"track mean of {family} frames + SVM"
                baselines.setdefault(label, doc["aggregates"].get(b, {}).get("track_acc"))
        lines += [f"### {setup} ({protocol}, {args.folds} folds x {len(args.seeds)} seeds)", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        lines += ["", "| baseline | track accuracy |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in baselines.items()] + [""]
    return lines


def frame_study(args) -> list[str]:
    from genreseg.features import FeatureConfig

    lines = []
    for setup in ("gtzan_mini", "homburg3"):
        data, protocol = SETUPS[setup]
        head = ["musicnn frame", "window"] + [c for key in args.rows for c in
                                              ([f"{key} Seg", f"{key} LSeg", f"{key} FSeg"]
                                               if key.startswith("lstm") else [f"{key} Seg"])]
        body = []
        for output, window in FRAME_CHOICES:
            tag = f"{output}-{window:g}s"
            config = FeatureConfig(family="musicnn", musicnn_output=output, musicnn_window_s=window)
            doc = run_one(data, protocol, args.out / setup / tag, args.out / "stores" / f"{setup}-{tag}",
                          "musicnn", args, config=config, baselines=False)
            body.append([output, f"{window:g} s"] + _row_cells(doc, args.rows))
        lines += [f"### {setup} ({protocol}, {args.folds} folds x {len(args.seeds)} seeds)", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body] + [""]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder of the runs (reused when rerun)")
    ap.add_argument("--study", choices=["families", "frames"], default="families")
    ap.add_argument("--setups", nargs="+", choices=sorted(SETUPS), default=list(SETUPS))
    ap.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (frames study: 0)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--rows", nargs="+", default=["dnn-1024", "lstm-512"])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.study == "frames" else [0, 1, 2]
    lines = ablation(args) if args.study == "families" else frame_study(args)
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
