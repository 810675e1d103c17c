"""The demo behind ``make demo``: the quick reproduction on real data, or on synthetic data.

``python -m genreseg.demo --data DIR --out OUT`` runs ``genreseg reproduce`` with the
quick grid on DIR (default ``../shared/data/gtzan_mini``, relative to the current
directory, which ``make`` sets to the repository root). When DIR does not exist or
holds no audio, it writes the synthetic corpus of :mod:`genreseg.synthetic` under
``OUT/synthetic-data``, says so in a banner before and after the run, and runs on
that instead: the pipeline works end to end, but the figures mean nothing about music.

Each feature family runs the same folds: scattering (the paper's: all of Tables 2 and 3 and
the baselines) writes ``OUT/REPORT.md``, musicnn (the pretrained tagger's frames: the
DNN(1024) and LSTM(512) rows) ``OUT/musicnn/REPORT.md``, and the first report ends with
the families side by side. The feature stores are ``OUT/store`` and
``OUT/musicnn/store-musicnn``, so running the demo again reuses the features.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import GenresegError

__all__ = ["SYNTHETIC_BANNER", "find_data", "main"]

DEFAULT_DATA = Path("..") / "shared" / "data" / "gtzan_mini"
#: The rows every family after the first runs.
COMPARED_ROWS = ("dnn-1024", "lstm-512")

SYNTHETIC_BANNER = "\n".join([
    "#" * 78,
    "#" + " " * 76 + "#",
    "#   NO REAL DATA FOUND: THE DEMO RUNS ON A SYNTHETIC CORPUS".ljust(77) + "#",
    "#   (tones, noise bursts and click trains written under OUT/synthetic-data).".ljust(77) + "#",
    "#   THE RESULTS SAY NOTHING ABOUT MUSIC GENRE CLASSIFICATION.".ljust(77) + "#",
    "#" + " " * 76 + "#",
    "#" * 78,
])


def find_data(data) -> tuple[Path | None, str]:
    """Whether ``data`` is a usable dataset, and why not.

    Returns
    -------
    path : Path or None
        ``data`` when it lists at least one audio file, else None.
    reason : str
        Empty when usable; otherwise a one-line explanation for the banner.
    """
    from .datasets import load_dataset

    path = Path(data)
    if not path.exists():
        return None, f"{path} does not exist"
    try:
        load_dataset(path)
    except GenresegError as err:
        return None, str(err)
    return path, ""


def main(argv=None) -> int:
    from .experiments import ReproduceOptions, command_line, run_reproduce
    from .synthetic import SyntheticConfig, make_synthetic_corpus

    ap = argparse.ArgumentParser(
        prog="python -m genreseg.demo",
        description="Run the quick reproduction of Dai et al. (ISCSLP 2016) on DATA and write OUT/REPORT.md; "
                    "falls back to a synthetic corpus (announced loudly) when DATA has no audio.")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help=f"dataset folder (default {DEFAULT_DATA})")
    ap.add_argument("--out", default="demo-out", help="output folder (default demo-out); the store is OUT/store")
    ap.add_argument("--seed", type=int, default=0, help="seed of everything, synthetic data included (default 0)")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    ap.add_argument("--workers", type=int, default=2, help="extraction worker processes (default 2)")
    ap.add_argument("--features", nargs="+", default=["scattering", "musicnn"], choices=["scattering", "musicnn", "both"],
                    help="feature families to run, compared side by side at the end of OUT/REPORT.md "
                         "(default: scattering musicnn)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    out = Path(args.out)
    data, reason = find_data(args.data)
    synthetic = data is None
    if synthetic:
        print(SYNTHETIC_BANNER, file=sys.stderr)
        print(f"(reason: {reason})", file=sys.stderr)
        data = out / "synthetic-data"
        paths = make_synthetic_corpus(data, SyntheticConfig(seed=args.seed))
        print(f"wrote {len(paths)} synthetic clips to {data} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)

    docs, code = {}, 0
    args.features = list(dict.fromkeys(args.features))  # each family once, in the order given
    for family in args.features:
        # The first family's report is OUT/REPORT.md; each other family's is OUT/<family>/REPORT.md.
        first = family == args.features[0]
        # The first family runs the whole of Tables 2 and 3 and the baselines (the musicnn
        # peers' among them); the others the rows that carry the comparison, DNN(1024) and
        # LSTM(512), which keeps the cold demo within 10 minutes.
        options = ReproduceOptions(data=str(data), out=str(out if first else out / family), grid="quick",
                                   seeds=(args.seed,), folds=args.folds, workers=args.workers, features=family,
                                   rows=() if first else COMPARED_ROWS, baselines=first)
        print(f"demo: {command_line(options)}", file=sys.stderr)
        try:
            docs[family], family_code = run_reproduce(options, synthetic=synthetic)
        except GenresegError as err:
            print(f"demo: error: {err}", file=sys.stderr)
            return 2
        code = max(code, family_code)
    if len(docs) > 1:
        _append_comparison(out / "REPORT.md", docs)

    print("\n== demo finished ==", file=sys.stderr)
    for family, family_doc in docs.items():
        print(f"time per stage ({family} frames):", file=sys.stderr)
        for stage, seconds in family_doc.get("timings", {}).items():
            print(f"  {stage:<52} {seconds:7.1f} s", file=sys.stderr)
    print(f"  {'total':<52} {time.perf_counter() - t0:7.1f} s", file=sys.stderr)
    if synthetic:
        print(SYNTHETIC_BANNER, file=sys.stderr)
    print(f"report:  {out / 'REPORT.md'}")
    print(f"results: {out / 'results.json'}")
    if code:
        print("some steps failed: see the Failures section of the report", file=sys.stderr)
    return code


def _append_comparison(report, docs: dict) -> None:
    """Add the families' side-by-side table to the first family's report."""
    from .experiments.report import family_comparison
    from .files import atomic_write_bytes

    text = report.read_text() if report.exists() else ""
    atomic_write_bytes(report, (text.rstrip("\n") + "\n\n" + "\n".join(family_comparison(docs))).encode())


if __name__ == "__main__":
    sys.exit(main())
