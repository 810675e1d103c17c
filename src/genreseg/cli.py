"""Command-line interface: a thin layer over the Python API.

Exit codes: 0 success; 1 the command ran but some files failed (they are listed);
2 the command could not run (bad arguments, missing store, incompatible model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import GenresegError

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


def _print_failures(failed, stream=None) -> None:
    if not failed:
        return
    stream = stream or sys.stderr
    print(f"\n{len(failed)} file(s) failed:", file=stream)
    for _path, reason in failed:
        print(f"  {reason}", file=stream)


# ---------------------------------------------------------------------- extract / info
def cmd_extract(args) -> int:
    from .datasets import load_dataset
    from .extract import extract
    from .features import FeatureConfig

    tracks = load_dataset(args.data, layout=args.layout)
    config = FeatureConfig(backend=args.backend, device=args.device) if args.backend else None
    store_exists = (Path(args.out) / "store.json").exists()
    if config is None and not store_exists:
        config = FeatureConfig(device=args.device)
    print(f"extracting {len(tracks)} tracks from {args.data} into {args.out}", file=sys.stderr)
    report = extract(tracks, args.out, config, workers=args.workers, scheduler=args.scheduler,
                     progress=not args.quiet)
    print(report.summary_line())
    _print_failures(report.failed)
    return EXIT_OK if report.ok else EXIT_PARTIAL


def cmd_info(args) -> int:
    from .store import FeatureStore

    summary = FeatureStore(args.store).summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return EXIT_OK
    print(f"store          {summary['store']}")
    print(f"feature hash   {summary['feature_hash']}")
    cfg = summary["feature_config"]
    print(f"features       {summary['n_features']} per frame  (J={cfg['J']}, Q=({cfg['Q1']},{cfg['Q2']}), "
          f"hop 2^{cfg['J'] - cfg['oversampling']} samples at {cfg['sample_rate']} Hz)")
    print(f"tracks         {summary['tracks']}  ({summary['total_duration_s'] / 60:.1f} min, "
          f"{summary['total_frames']} frames)")
    if summary["splits"]:
        print(f"splits         {', '.join(summary['splits'])}")
    print("labels")
    for label, count in summary["labels"].items():
        print(f"  {label:<20} {count}")
    return EXIT_OK


# ---------------------------------------------------------------------- parser
def _add_data_args(p) -> None:
    p.add_argument("data", help="dataset: a folder per label, an ISMIR 2004 collection root, or a CSV manifest")
    p.add_argument("--layout", default="auto", choices=["auto", "folders", "ismir2004", "csv"],
                   help="how DATA is organised (default: detect)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genreseg",
        description="Music genre classification with LSTM-RNN segment features on scattering frames "
                    "(Dai et al., ISCSLP 2016).",
        epilog="Typical use: genreseg extract DATA --out STORE; genreseg train STORE --out MODEL; "
               "genreseg evaluate MODEL STORE; genreseg predict MODEL FILES...; "
               "or all at once: genreseg reproduce --data DATA --out RESULTS.")
    parser.add_argument("--version", action="version", version=f"genreseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("extract", help="compute scattering frame features of a dataset into a store",
                       description="Decode every audio file of DATA (any rate/channels; wav au flac ogg mp3), "
                                   "compute second-order scattering frame features and cache them in STORE. "
                                   "Rerunning skips files already stored; failed files are listed at the end "
                                   "and the exit code is 1.")
    _add_data_args(p)
    p.add_argument("--out", required=True, metavar="STORE", help="feature store directory (created if needed)")
    p.add_argument("--workers", type=int, default=2,
                   help="local Dask worker processes (default 2; 0 = in this process, no Dask)")
    p.add_argument("--scheduler", metavar="ADDR", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--backend", choices=["fast", "kymatio"], default=None,
                   help="scattering implementation (default: fast; kymatio is the slow reference)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="where to run the transform")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("info", help="summarise a feature store", description="Print what a feature store holds.")
    p.add_argument("store", help="feature store directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return args.func(args)
    except GenresegError as err:
        print(f"genreseg {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"genreseg {args.command}: interrupted; work already stored is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
