"""The report of a reproduction run: its reading in words, its figures, REPORT.md.

Everything here reads the run's results document (``run.doc``, what ``results.json``
holds) and writes files; nothing trains or scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..evaluation import paired_comparison
from ..features import FeatureConfig
from ..files import atomic_write_bytes, to_jsonable
from .config import GRIDS, ModelRow

__all__ = ["make_plots", "reading", "write_report"]


def _fmt(stat, digits: int = 3) -> str:
    """``"0.812 ± 0.041"`` from ``{"mean", "std"}``; ``"–"`` when absent."""
    if not stat or stat.get("mean") is None:
        return "–"
    std = stat.get("std")
    return f"{stat['mean']:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{stat['mean']:.{digits}f}"


def _series(run, key: str, measure: str) -> list:
    """A figure of one row or baseline on every (seed, fold), None where it did not run."""
    vals = []
    for f in run.doc["folds"]:
        rec = f["rows"].get(key) or f.get("baselines", {}).get(key)
        vals.append(None if rec is None else rec.get(measure))
    return vals


def _systems(run, rows: list[ModelRow]) -> list[tuple[str, str, str, float]]:
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



#: Means within this are equal: 0.86 computed two ways differs in the last bits.
TIE = 1e-9


def _mean(agg: dict, key: str, measure: str):
    stat = agg.get(key, {}).get(measure)
    return stat["mean"] if stat else None


def _orderings(agg: dict, rows: list, baselines: list) -> list[str]:
    """The paper's claims as plain checks on the mean figures: which hold on this data, which do not.

    (1) every LSTM's FSeg is at least its Seg; (2) the best LSTM's Seg is at least the best
    DNN's; (3) the best LSTM FSeg beats the best baseline by 0.02 or more.
    """
    lstm = [r for r in rows if r.in_table3 and _mean(agg, r.key, "seg_acc") is not None]
    dnn = [r for r in rows if not r.in_table3 and _mean(agg, r.key, "seg_acc") is not None]
    if not lstm:
        return []

    def verdict(ok: bool) -> str:
        return "**holds**" if ok else "**does not hold**"

    out = []
    pairs = [(r, _mean(agg, r.key, "fseg_acc"), _mean(agg, r.key, "seg_acc")) for r in lstm]
    pairs = [(r, f, s) for r, f, s in pairs if f is not None]
    if pairs:
        failing = [f"{r.label} ({f:.3f} < {s:.3f})" for r, f, s in pairs if f < s - TIE]
        out.append(f"Ordering *every LSTM row has FSeg ≥ Seg* {verdict(not failing)}"
                   + (f": not for {', '.join(failing)}." if failing else f" for all {len(pairs)} rows."))
    best_lstm = max(lstm, key=lambda r: _mean(agg, r.key, "seg_acc"))
    if dnn:
        best_dnn = max(dnn, key=lambda r: _mean(agg, r.key, "seg_acc"))
        a, b = _mean(agg, best_lstm.key, "seg_acc"), _mean(agg, best_dnn.key, "seg_acc")
        out.append(f"Ordering *best LSTM Seg ≥ best DNN Seg* {verdict(a >= b - TIE)} ({best_lstm.label} {a:.3f} vs "
                   f"{best_dnn.label} {b:.3f}).")
    fsegs = [(r, _mean(agg, r.key, "fseg_acc")) for r in lstm if _mean(agg, r.key, "fseg_acc") is not None]
    bases = [(n, _mean(agg, n, "track_acc")) for n in baselines if _mean(agg, n, "track_acc") is not None]
    if fsegs and bases:
        (r, f), (n, b) = max(fsegs, key=lambda x: x[1]), max(bases, key=lambda x: x[1])
        out.append(f"Ordering *best LSTM FSeg ≥ best baseline + 0.02* {verdict(f >= b + 0.02 - TIE)} ({r.label} FSeg "
                   f"{f:.3f} vs {n} {b:.3f}).")
    return out


def reading(run, rows: list[ModelRow], n_tracks: int) -> list[str]:
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
    lines += _orderings(agg, rows, run.doc.get("baselines", []))
    if run.doc["folds"]:
        n_test = run.doc["folds"][0].get("n_test", 0)
        if n_test:
            lines.append(f"One test track is worth {1 / n_test:.3f} of a fold's accuracy ({n_test} test tracks per "
                         "fold); differences of one or two tracks per fold are noise at this size.")
    run.doc["comparisons"] = comparisons
    return lines



def make_plots(run, rows: list[ModelRow], kept: dict, label_names: list, hop_seconds: float) -> dict:
    from ..evaluation import confusion_matrix
    from ..plots import plot_confusion, plot_posterior_summary, plot_training_curves

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
    items = [f"  {json.dumps(k)}: {json.dumps(to_jsonable(v))}" for k, v in d.items()]
    return ["```json", "{", ",\n".join(items), "}", "```"]


def _md_table(header: list, body: list) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + \
           ["| " + " | ".join(str(c) for c in r) + " |" for r in body]


def write_report(run, rows: list[ModelRow], reading: list[str]) -> Path:
    doc, opts = run.doc, run.options
    agg = doc["aggregates"]
    family = FeatureConfig.from_dict(doc["configs"]["feature"]).family
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
          f"with the initial segment feature (the track mean of the {family} frames). Training-track posteriors are "
          "cross-fitted "
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
        family = FeatureConfig.from_dict(doc["configs"]["feature"]).describe()
        desc = {"scattering-svm": f"track mean of the store's frames ({family}), standardised, RBF SVM (C, γ by "
                                  "CV on the training fold)",
                "musicnn-svm": "the peers' recipe: mean+std of musicnn's 200-d penultimate layer (MSD_musicnn) "
                               "on consecutive 3-s patches, standardised, RBF SVM (C, γ by CV on the training fold)",
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
          f"{data['total_frames']} {family} frames" + (f", {data['artists']} artists" if data["artists"] else ""),
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
    atomic_write_bytes(path, ("\n".join(L) + "\n").encode())
    return path


def family_comparison(docs: dict) -> list[str]:
    """Markdown lines comparing reproductions of one dataset on several feature families.

    Parameters
    ----------
    docs : dict
        Family name → that run's ``results.json`` document (same data, folds and seeds).

    Returns
    -------
    list of str
        A table with one row per model (Seg, LSeg, FSeg of each family; "–" where a
        family did not run that row), the baselines of the runs that had them, and a
        line naming each family's best model row. Mean ± std over the folds.
    """
    families = list(docs)
    head = ["System"] + [f"{f}: {m}" for f in families for m in ("Seg", "LSeg", "FSeg")]
    rows = {r["key"]: r["label"] for doc in docs.values() for r in doc.get("rows", [])}
    body = []
    for key, label in rows.items():
        cells = [label]
        for f in families:
            a = docs[f].get("aggregates", {}).get(key, {})
            cells += [_fmt(a.get("seg_acc")), _fmt(a.get("lseg_acc")), _fmt(a.get("fseg_acc"))]
        body.append(cells)
    L = ["## Feature families side by side", "",
         "The same folds and seeds on each family of frame features (mean ± std over folds; LSeg and FSeg "
         "exist for the LSTM rows).", ""]
    L += _md_table(head, body) + [""]
    baselines = [[f"{name} ({f} run)" if name == "scattering-svm" else name,
                  _fmt(doc["aggregates"].get(name, {}).get("track_acc"))]
                 for f, doc in docs.items() for name in doc.get("baselines", [])]
    if baselines:
        L += _md_table(["Baseline (same folds)", "track accuracy"], baselines) + [""]
    for f in families:
        best = _best_system(docs[f])
        if best:
            L.append(f"- best of the paper's systems on {f} frames: {best[0]} {best[1]:.3f}")
    return L + [""]


def _best_system(doc: dict):
    """(name, mean accuracy) of a run's best model row (Seg, LSeg or FSeg), or None."""
    names = {"seg_acc": " Seg", "lseg_acc": " LSeg", "fseg_acc": " FSeg"}
    rows = {r["key"] for r in doc.get("rows", [])}
    found = []
    for key, a in doc.get("aggregates", {}).items():
        if key not in rows:  # the paper's systems on this family's frames, not the baselines
            continue
        for measure, suffix in names.items():
            stat = a.get(measure)
            if isinstance(stat, dict) and stat.get("mean") is not None:
                found.append((f"{a.get('label', key)}{suffix}", stat["mean"]))
    return max(found, key=lambda kv: kv[1]) if found else None
