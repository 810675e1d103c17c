"""Ablation of the LSTM recipe (issue 11): one ingredient at a time, 5 folds x 3 seeds.

For every setup (gtzan_mini with stratified folds, homburg3 with stratified folds and
with artist-filtered folds) and every (seed, fold), the script trains the quick grid's
LSTM row (``--row``, default the paper's LSTM(512) at /8 size: LSTM(64)) under each
variant and reports, mean ± std over the 15 (seed, fold) pairs:

* ``Frame`` — frame accuracy of the full frame model on the test tracks;
* ``Seg`` — its majority vote (the paper's Seg_acc, what ``genreseg reproduce`` shows);
* ``LSeg`` / ``FSeg`` — the segment classifiers (statistics only / fused with the
  track-mean scattering feature), through :func:`genreseg.segments.fit_segment_models`
  and :func:`genreseg.segments.predict_segments` exactly as the package runs them.

Two references are measured on the same folds: the quick grid's DNN(1024)/8 row (its
Seg) and the track-mean scattering SVM baseline.

Every variant changes one thing against ``base`` (the quick grid as it was: Adam 3e-3,
6 epochs, dropout 0.3, whole tracks, the full model's posteriors at test time, k = 0.5);
``recipe`` is the chosen combination. Frame models are cached per (setup, seed, fold,
training tracks, config), so variants that differ only in the segment stage share them.

Usage::

    python benchmarks/recipe.py --store gtzan=/work/cache/recipe/gtzan \\
        --store homburg3=/work/cache/recipe/homburg3 --out recipe.json
    python benchmarks/recipe.py --quick ...      # 1 seed x 2 folds, 2 variants: a smoke run

``--data NAME=PATH`` gives the dataset (folder or manifest, for the artist column and
the protocol); by default gtzan -> ../shared/data/gtzan_mini and homburg3 ->
../shared/data/homburg3/manifest.csv next to the repository. The stores come from
``genreseg extract``. Never looks at test folds to choose anything: every choice
inside a variant is made on training tracks (inner folds, a held-out split of them).
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

from genreseg.baselines import SVMGrid, svm_baseline
from genreseg.datasets import list_dataset
from genreseg.evaluation import frame_accuracy, seg_accuracy
from genreseg.features import initial_segment_features
from genreseg.models import (
    FrameModelConfig,
    default_preset,
    frame_posteriors,
    train_frame_model,
)
from genreseg.segments import SegmentConfig, fit_segment_models, predict_segments
from genreseg.splits import make_splits
from genreseg.store import FeatureStore

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEFAULT_DATA = {"gtzan": SHARED / "gtzan_mini", "homburg3": SHARED / "homburg3" / "manifest.csv"}

# The quick grid as it was before this issue: /8 sizes, Adam at 3e-3, 6 LSTM / 8 DNN
# epochs, 2 inner folds, 3 CV folds, the small SVM grids.
BASE_LSTM = default_preset("lstm", (64,)).replace(epochs=6, lr=3e-3, device="cpu")
BASE_DNN = default_preset("dnn", (128,)).replace(epochs=8, lr=3e-3, device="cpu")
BASE_SEG = SegmentConfig(C_grid=(1.0, 10.0, 100.0), gamma_grid=(0.5, 1.0, 2.0), inner_folds=2, cv_folds=3)
SVM = SVMGrid(C_grid=(1.0, 10.0, 100.0), gamma_grid=(0.5, 1.0, 2.0), cv_folds=3)

#: The chosen recipe (see RECIPE below); kept in one place so that the variants
#: "recipe minus one ingredient" can be built from it.
RECIPE_FRAME = dict(crop_frames=12, batch_size=16, input_noise=0.3)
RECIPE_SEG = dict(test_posteriors="inner-mean", vote_fallback=True, k_grid=(0.2, 0.5, 0.8))


def variants(row_hidden: tuple) -> dict:
    """name -> (frame config, segment config)."""
    base = BASE_LSTM.replace(hidden=row_hidden)
    v = {
        "base": (base, BASE_SEG),
        "crops 24": (base.replace(crop_frames=24), BASE_SEG),
        "crops 12": (base.replace(crop_frames=12), BASE_SEG),
        "noise 0.3": (base.replace(input_noise=0.3), BASE_SEG),
        "channel dropout 0.2": (base.replace(input_dropout=0.2), BASE_SEG),
        "weight decay 1e-4": (base.replace(weight_decay=1e-4), BASE_SEG),
        "early stop (20 %, 12 ep, pat. 3)": (base.replace(valid_fraction=0.2, epochs=12, patience=3), BASE_SEG),
        "bidirectional": (base.replace(bidirectional=True), BASE_SEG),
        "10 epochs": (base.replace(epochs=10), BASE_SEG),
        "seg: inner-mean test post.": (base, BASE_SEG.replace(test_posteriors="inner-mean")),
        "seg: all-mean test post.": (base, BASE_SEG.replace(test_posteriors="all-mean")),
        "seg: vote fallback": (base, BASE_SEG.replace(vote_fallback=True)),
        "seg: k by inner CV": (base, BASE_SEG.replace(k_grid=(0.2, 0.5, 0.8))),
        "recipe": (base.replace(**RECIPE_FRAME), BASE_SEG.replace(**RECIPE_SEG)),
        "recipe, full-model test post.": (base.replace(**RECIPE_FRAME),
                                          BASE_SEG.replace(**dict(RECIPE_SEG, test_posteriors="full"))),
        "recipe, no vote fallback": (base.replace(**RECIPE_FRAME),
                                     BASE_SEG.replace(**dict(RECIPE_SEG, vote_fallback=False))),
        "recipe, all-mean test post.": (base.replace(**RECIPE_FRAME),
                                        BASE_SEG.replace(**dict(RECIPE_SEG, test_posteriors="all-mean"))),
        "recipe, k = 0.5": (base.replace(**RECIPE_FRAME), BASE_SEG.replace(**dict(RECIPE_SEG, k_grid=()))),
        "recipe frame, base segment stage": (base.replace(**RECIPE_FRAME), BASE_SEG),
        "recipe + wd 1e-4, 10 epochs": (base.replace(**dict(RECIPE_FRAME, weight_decay=1e-4, epochs=10)),
                                        BASE_SEG.replace(**RECIPE_SEG)),
    }
    return v


class ModelCache:
    """Memoises train_frame_model on (training data fingerprint, config)."""

    def __init__(self):
        self.models: dict = {}
        self.hits = self.misses = 0

    @staticmethod
    def _key(sequences, labels, config: FrameModelConfig) -> str:
        h = hashlib.sha1()
        h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
        h.update(np.asarray(labels, dtype=np.int64).tobytes())
        for s in sequences:
            h.update(np.asarray([len(s)], dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(s[:2], dtype=np.float32).tobytes())
        return h.hexdigest()

    def __call__(self, sequences, labels, n_classes, config, progress=False, **kw):
        key = self._key(sequences, labels, config)
        if key not in self.models:
            self.misses += 1
            self.models[key] = train_frame_model(sequences, labels, n_classes, config, progress=False, **kw)
        else:
            self.hits += 1
        return self.models[key]


def setups(args) -> list[tuple[str, str, str]]:
    """(setup name, dataset, protocol)."""
    out = []
    if "gtzan" in args.stores:
        out.append(("gtzan_mini", "gtzan", "kfold"))
    if "homburg3" in args.stores:
        out.append(("homburg3 random", "homburg3", "kfold"))
        out.append(("homburg3 artist", "homburg3", "artist-kfold"))
    return [s for s in out if not args.setups or s[0] in args.setups]


def load(name: str, args):
    store = FeatureStore(args.stores[name])
    rows = {r["track_id"]: r for r in store.rows()}
    tracks = [t for t in list_dataset(str(args.data.get(name, DEFAULT_DATA[name]))).tracks if t.track_id in rows]
    label_names = sorted({t.label for t in tracks})
    features = store.load([rows[t.track_id] for t in tracks], label_names=label_names)
    return tracks, features, [rows[t.track_id]["key"] for t in tracks]


def run(args) -> dict:
    torch.set_num_threads(1)
    all_variants = variants(tuple(args.row))
    names = args.variants or list(all_variants)
    doc = {"row": list(args.row), "seeds": args.seeds, "folds": args.folds, "variants": names,
           "configs": {n: {"frame": all_variants[n][0].to_dict(), "segment": all_variants[n][1].to_dict()}
                       for n in names},
           "results": {}, "seconds": {}}
    t_all = time.perf_counter()
    for setup, dname, protocol in setups(args):
        tracks, feats, keys = load(dname, args)
        C = len(feats.label_names)
        X_init = initial_segment_features(feats.sequences)
        res = doc["results"].setdefault(setup, {})
        for seed in args.seeds:
            splits = make_splits([t.label for t in tracks], protocol, args.folds, seed,
                                 split_names=[t.split for t in tracks],
                                 artists=[t.artist for t in tracks], replicas=keys)[:args.max_folds or None]
            for f, (tr, te) in enumerate(splits):
                cache = ModelCache()
                train, test = feats.subset(tr), feats.subset(te)
                t0 = time.perf_counter()
                # References: the DNN row's vote and the scattering SVM.
                dnn = train_frame_model(train.sequences, train.labels, C, BASE_DNN.replace(seed=seed), progress=False)
                ref = res.setdefault("_reference", {"dnn_seg": [], "scattering_svm": []})
                ref["dnn_seg"].append(seg_accuracy(frame_posteriors(dnn, test.sequences), test.labels))
                pred, _ = svm_baseline(X_init[tr], feats.labels[tr], X_init[te], SVM.replace(seed=seed))
                ref["scattering_svm"].append(float(np.mean(pred == feats.labels[te])))
                for name in names:
                    fcfg, scfg = all_variants[name]
                    fcfg, scfg = fcfg.replace(seed=seed), scfg.replace(seed=seed)
                    t1 = time.perf_counter()
                    # As genreseg reproduce: the full model gives Frame and Seg, the segment
                    # stage is fitted on top of it (and uses it or the inner models at test time).
                    full = cache(train.sequences, train.labels, C, fcfg)
                    models = fit_segment_models(train.sequences, train.labels, C, fcfg, scfg, frame_model=full,
                                                train_fn=cache)
                    p = predict_segments(models, test.sequences)
                    full_post = frame_posteriors(full, test.sequences)
                    r = res.setdefault(name, {k: [] for k in ("frame", "seg", "seg_test_post", "lseg", "fseg",
                                                               "lseg_vote", "fseg_vote", "k", "seconds")})
                    r["frame"].append(frame_accuracy(full_post, test.labels))
                    r["seg"].append(seg_accuracy(full_post, test.labels))
                    r["seg_test_post"].append(seg_accuracy(p["posteriors"], test.labels))
                    r["lseg"].append(float(np.mean(p["lseg"] == test.labels)))
                    r["fseg"].append(float(np.mean(p["fseg"] == test.labels)))
                    r["lseg_vote"].append(bool(models.lseg.use_vote_))
                    r["fseg_vote"].append(bool(models.fseg.use_vote_))
                    r["k"].append(models.config.k)
                    r["seconds"].append(time.perf_counter() - t1)
                print(f"[{time.perf_counter() - t_all:7.1f} s] {setup} seed {seed} fold {f}: "
                      f"{time.perf_counter() - t0:.1f} s; " + ", ".join(
                          f"{n} S{res[n]['seg'][-1]:.2f}/F{res[n]['fseg'][-1]:.2f}" for n in names),
                      flush=True)
                if args.out:
                    Path(args.out).write_text(json.dumps(doc, indent=1))
    doc["seconds"]["total"] = time.perf_counter() - t_all
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=1))
    return doc


def _ms(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def table(doc: dict) -> str:
    lines = []
    for setup, res in doc["results"].items():
        ref = res.get("_reference", {})
        n = len(ref.get("dnn_seg", []))
        lines += [f"### {setup} ({n} seed×fold runs; LSTM{tuple(doc['row'])})", "",
                  f"References: DNN(128) Seg {_ms(ref['dnn_seg'])}, scattering SVM {_ms(ref['scattering_svm'])}", "",
                  "| variant | Frame | Seg | Seg (test post.) | LSeg | FSeg | FSeg − Seg | vote used (L/F) | s/run |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name in doc["variants"]:
            if name not in res:
                continue
            r = res[name]
            diff = np.asarray(r["fseg"]) - np.asarray(r["seg"])
            lines.append(f"| {name} | {_ms(r['frame'])} | {_ms(r['seg'])} | {_ms(r['seg_test_post'])} | "
                         f"{_ms(r['lseg'])} | {_ms(r['fseg'])} | {diff.mean():+.3f} | "
                         f"{np.mean(r['lseg_vote']):.2f}/{np.mean(r['fseg_vote']):.2f} | "
                         f"{np.mean(r['seconds']):.1f} |")
        lines.append("")
    return "\n".join(lines)


def _pairs(items) -> dict:
    out = {}
    for item in items or []:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"expected NAME=PATH, got {item!r}")
        out[name] = Path(path)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", action="append", metavar="NAME=PATH",
                   help="feature store of a dataset (gtzan, homburg3); repeat")
    p.add_argument("--data", action="append", metavar="NAME=PATH", help="dataset folder or manifest; repeat")
    p.add_argument("--setups", nargs="*", help="subset of: gtzan_mini, 'homburg3 random', 'homburg3 artist'")
    p.add_argument("--variants", nargs="*", help="subset of the variants (default all)")
    p.add_argument("--row", nargs="+", type=int, default=[64], help="LSTM hidden sizes (default 64)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--max-folds", type=int, default=0, help="run only the first N folds of each seed")
    p.add_argument("--quick", action="store_true", help="smoke run: seed 0, 2 folds, base and recipe")
    p.add_argument("--out", help="JSON results")
    p.add_argument("--list", action="store_true", help="list the variants and exit")
    p.add_argument("--table", nargs="+", metavar="JSON", help="print the table of earlier --out files and exit")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(variants(tuple(args.row))))
        return 0
    if args.table:
        for path in args.table:
            print(table(json.loads(Path(path).read_text())))
        return 0
    args.stores = _pairs(args.store)
    args.data = _pairs(args.data)
    if not args.stores:
        p.error("give at least one --store NAME=PATH")
    if args.quick:
        args.seeds, args.max_folds = [0], 2
        args.variants = args.variants or ["base", "recipe"]
    doc = run(args)
    print(table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
