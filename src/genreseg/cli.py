"""Command-line interface: a thin layer over the Python API.

Every command's parser and its handler live side by side in this one module (~530 lines,
over the house's ~500 on purpose): each handler only parses, calls the library and prints,
so splitting them would scatter the one concern, "what the terminal sees".

Exit codes: 0 success; 1 the command ran but some files failed (they are listed);
2 the command could not run (bad arguments, missing store, incompatible model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .errors import GenresegError

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


def _print_failures(failed, stream=None, skipped=()) -> None:
    stream = stream or sys.stderr
    if skipped:
        print(f"\n{len(skipped)} file(s) skipped:", file=stream)
        for path, reason in skipped:
            print(f"  {path}: {reason}", file=stream)
    if failed:
        print(f"\n{len(failed)} file(s) failed:", file=stream)
        for _path, reason in failed:
            print(f"  {reason}", file=stream)


# ---------------------------------------------------------------------- extract / info
def cmd_extract(args) -> int:
    from .datasets import list_dataset
    from .extract import extract, store_feature_config

    listing = list_dataset(args.data, layout=args.layout)
    tracks = listing.tracks
    config = store_feature_config(args.out, family=args.features, musicnn_model=args.musicnn_model,
                                  backend=args.backend, device=args.device)
    print(f"extracting {len(tracks)} tracks from {args.data} into {args.out}"
          + (f" ({config.describe()})" if config else ""), file=sys.stderr)
    report = extract(tracks, args.out, config, workers=args.workers, scheduler=args.scheduler,
                     progress=not args.quiet, skipped=listing.skipped)
    print(report.summary_line())
    _print_failures(report.failed, skipped=report.skipped)
    return EXIT_OK if report.ok else EXIT_PARTIAL


def cmd_info(args) -> int:
    from .store import FeatureStore

    summary = FeatureStore(args.store).summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return EXIT_OK
    print(f"store          {summary['store']}")
    print(f"feature hash   {summary['feature_hash']}")
    from .features import FeatureConfig

    cfg = FeatureConfig.from_dict(summary["feature_config"])
    print(f"features       {summary['n_features']} per frame: {cfg.describe()}, "
          f"one every {cfg.hop_seconds * 1000:.0f} ms")
    print(f"tracks         {summary['tracks']}  ({summary['total_duration_s'] / 60:.1f} min, "
          f"{summary['total_frames']} frames)")
    if summary["splits"]:
        print(f"splits         {', '.join(summary['splits'])}")
    print("labels")
    for label, count in summary["labels"].items():
        print(f"  {label:<20} {count}")
    for kind in ("failed", "skipped"):
        listed = [p for p in summary["problems"] if p["kind"] == kind]
        if listed:
            print(f"{kind} in the last extraction ({len(listed)})")
            for p in listed:
                reason = p["reason"]
                # failure reasons already start with the path
                print(f"  {reason if reason.startswith(p['path']) else p['path'] + ': ' + reason}")
    return EXIT_OK


# ---------------------------------------------------------------------- train / evaluate / predict
def _training_rows(store, args):
    """Rows to train on: a named split, the complement of one stratified fold, or all."""
    from .errors import DatasetError
    from .splits import kfold_splits

    rows = store.rows()
    if args.split:
        rows = [r for r in rows if r.get("split") == args.split]
        if not rows:
            raise DatasetError(f"{store.root}: no tracks with split '{args.split}'")
    if args.fold is not None:
        if not 0 <= args.fold < args.folds:
            raise DatasetError(f"--fold must be in 0..{args.folds - 1}, got {args.fold}")
        # The entry key names the audio's content: copies of one recording stay on one side.
        train_idx, _ = kfold_splits([r["label"] for r in rows], args.folds, args.seed,
                                    replicas=[r["key"] for r in rows])[args.fold]
        rows = [rows[i] for i in train_idx]
    return rows


def cmd_train(args) -> int:
    from .classifier import GenreClassifier, make_frame_config
    from .segments import SegmentConfig
    from .store import FeatureStore

    store = FeatureStore(args.store)
    rows = _training_rows(store, args)
    features = store.load(rows)
    frame_config = make_frame_config(args.model, args.hidden, args.preset, cell=args.cell, epochs=args.epochs,
                                     seed=args.seed, device=args.device)
    seg_config = SegmentConfig(classifier=args.segment_classifier, seed=args.seed)
    if args.k is not None:
        seg_config = seg_config.replace(k=args.k)
    print(f"training {frame_config.kind.upper()}{list(frame_config.hidden)} ({frame_config.preset} preset, "
          f"{frame_config.epochs} epochs) + segment classifiers on {len(rows)} tracks, "
          f"{len(features.label_names)} labels", file=sys.stderr)
    clf = GenreClassifier(frame_config, seg_config, progress=not args.quiet).fit(features)
    clf.save(args.out)
    print(f"saved model to {args.out} ({clf.training_['seconds']:.0f} s)")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    from .classifier import GenreClassifier
    from .errors import DatasetError
    from .store import FeatureStore

    clf = GenreClassifier.load(args.model)
    store = FeatureStore(args.store)
    clf.check_features(store.config, where=str(store.root))
    rows = store.rows()
    if args.split:
        rows = [r for r in rows if r.get("split") == args.split]
    if not args.include_training:
        seen = set(clf.training_.get("track_ids", []))
        rows = [r for r in rows if r["track_id"] not in seen]
    if not rows:
        raise DatasetError(f"{store.root}: no tracks to evaluate — every selected track was used in training "
                           f"(train with --fold/--split to hold tracks out, or pass --include-training)")
    result = clf.evaluate(store.load(rows, label_names=clf.label_names_))
    if args.format == "json":
        print(result.to_json())
    else:
        print(f"{len(rows)} tracks from {store.root}" + (f" (split {args.split})" if args.split else ""))
        print(result.to_table())
    return EXIT_OK


def _expand_inputs(items) -> list:
    """Files named, and the audio files under folders named; what a folder holds besides
    audio is listed on stderr, not passed over in silence."""
    from .datasets import find_audio_files

    paths, skipped = [], []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found, passed_over = find_audio_files(p)
            paths += found
            skipped += passed_over
        else:
            paths.append(p)  # a missing file is reported by the classifier, not here
    _print_failures([], skipped=skipped)
    return paths


def cmd_predict(args) -> int:
    import csv

    from .pretrained import load_model

    clf = load_model(args.model)
    paths = _expand_inputs(args.inputs)
    if not paths:
        print("genreseg predict: no files found", file=sys.stderr)
        return EXIT_ERROR
    preds = clf.predict_files(paths, timeline=args.timeline)
    good = [p for p in preds if p.error is None]
    if args.format == "json":
        print(json.dumps([p.to_dict(timeline=args.timeline) for p in preds], indent=2))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        if args.timeline:
            writer.writerow(["path", "time"] + clf.label_names_)
            for p in good:
                for t, row in zip(p.frame_times, p.frame_posteriors):
                    writer.writerow([p.path, f"{t:.3f}"] + [f"{v:.5f}" for v in row])
        else:
            writer.writerow(["path", "genre"] + clf.label_names_)
            for p in good:
                writer.writerow([p.path, p.genre] + [f"{p.probabilities[n]:.5f}" for n in clf.label_names_])
    else:
        width = max(len(p.path) for p in good) if good else 10
        for p in good:
            top = sorted(p.probabilities.items(), key=lambda kv: -kv[1])[:3]
            print(f"{p.path:<{width}}  {p.genre:<12} " + "  ".join(f"{n} {v:.2f}" for n, v in top))
            if args.timeline:
                for t, row in zip(p.frame_times, p.frame_posteriors):
                    best = int(np.argmax(row))
                    print(f"    {t:8.2f} s  {clf.label_names_[best]:<12} {row[best]:.2f}")
    _print_failures([(p.path, p.error) for p in preds if p.error])
    return EXIT_OK if len(good) == len(preds) else EXIT_PARTIAL


def cmd_serve(args) -> int:
    from .service import ServeConfig, serve

    try:
        config = ServeConfig(max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration,
                             queue=args.queue, timeout_s=args.timeout)
    except ValueError as err:
        raise GenresegError(f"invalid limits: {err}") from None
    serve(args.model, host=args.host, port=args.port, workers=args.workers, config=config)
    return EXIT_OK


def _output_stem(path: Path, used: set) -> str:
    """A file name stem for ``path``'s outputs, unique among ``used`` (same-named inputs get -2, -3...)."""
    stem, n = path.stem, 2
    while stem in used:
        stem, n = f"{path.stem}-{n}", n + 1
    used.add(stem)
    return stem


def cmd_segment(args) -> int:
    from .files import atomic_write_bytes
    from .pretrained import load_model
    from .timeline import TimelineConfig
    from .timeline_io import FORMATS, FORMATTERS, plot_timeline

    paths = _expand_inputs(args.inputs)
    if not paths:
        print("genreseg segment: no files found", file=sys.stderr)
        return EXIT_ERROR
    out = Path(args.out) if args.out else None
    if args.plot and out is None:
        print("genreseg segment: --plot writes PNG files: give --out DIR", file=sys.stderr)
        return EXIT_ERROR
    if out is None and args.format in ("jams", "audacity") and len(paths) > 1:
        print(f"genreseg segment: --format {args.format} describes one file: give --out DIR for "
              f"{len(paths)} files", file=sys.stderr)
        return EXIT_ERROR
    given = {"switch_penalty": args.switch_penalty, "min_duration_s": args.min_duration}
    config = TimelineConfig(**{k: v for k, v in given.items() if v is not None})
    clf = load_model(args.model)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    fmt, used, failed, done = FORMATTERS[args.format], set(), [], []
    for i, path in enumerate(paths):
        try:
            tl = clf.segment(path, config, progress=not args.quiet)
        except GenresegError as err:
            failed.append((path, str(err)))
            continue
        done.append(tl)
        if out is not None:  # each file's outputs are written as soon as it is done
            stem = _output_stem(path, used)
            atomic_write_bytes(out / (stem + FORMATS[args.format]), fmt([tl]).encode())
            if args.plot:
                plot_timeline(tl, out / (stem + ".png"))
            print(f"{path}: {len(tl.segments)} segments -> {out / stem}{FORMATS[args.format]}", file=sys.stderr)
        elif args.format == "csv":
            text = fmt([tl])
            sys.stdout.write(text if len(done) == 1 else text.split("\n", 1)[1])  # one header
        elif args.format != "json":
            sys.stdout.write(fmt([tl]))
        sys.stdout.flush()
    if out is None and args.format == "json":
        sys.stdout.write(fmt(done))
    _print_failures(failed)
    return EXIT_OK if not failed else EXIT_PARTIAL


# ---------------------------------------------------------------------- parser
def _add_data_args(p) -> None:
    p.add_argument("data", help="dataset: a folder per label, an ISMIR 2004 collection root, or a CSV manifest")
    p.add_argument("--layout", default="auto", choices=["auto", "folders", "ismir2004", "csv"],
                   help="how DATA is organised (default: detect)")


def _add_feature_args(p) -> None:
    from .features.config import FAMILIES, MUSICNN_MODELS

    p.add_argument("--features", choices=FAMILIES, default=None,
                   help="frame features of a new store: 'scattering' (the paper's, default), 'musicnn' (frames of "
                        "the pretrained musicnn tagger: its 200-d penultimate layer over 3-s windows, one every "
                        "372 ms) or 'both' (side by side); an existing store keeps its own")
    p.add_argument("--musicnn-model", choices=MUSICNN_MODELS, default=None,
                   help="the pretrained tagger behind musicnn frames (default MSD_musicnn)")


#: What MODEL may be, in every command that runs one.
MODEL_HELP = ("model directory (from 'genreseg train'), or 'msd' / 'mtt' for a pretrained musicnn tagger that "
              "needs no training: its genres are those of its training tags (Million Song Dataset or "
              "MagnaTagATune), not labels of yours")


def _serve_defaults():
    from .service.config import ServeConfig  # light: FastAPI loads only when `serve` runs

    return ServeConfig()


# ---------------------------------------------------------------------- reproduce
def add_reproduce_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``genreseg reproduce`` on an ``argparse`` subparsers object."""
    from .experiments import GRIDS
    from .experiments.config import ROW_KEYS
    from .features.config import FAMILIES

    p = subparsers.add_parser(
        "reproduce", help="extract, train and evaluate the paper's Tables 2 and 3 and two baselines; write a report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Reproduce Dai et al. (ISCSLP 2016) end to end on a dataset:\n"
            "  1. extract frame features into a store (scattering, or --features musicnn|both; reused when\n"
            "     already there);\n"
            "  2. on every fold and seed, train the six frame models of Table 2 (Frame_acc, Seg_acc),\n"
            "     the LSTMs' segment classifiers of Table 3 (LSeg_acc, FSeg_acc) and three SVM baselines\n"
            "     (track mean of the frames, MFCCs, and the peers' musicnn embedding);\n"
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
                        "folds, 3 CV folds, and the LSTM recipe (12-frame crops, input noise; inner-fold test "
                        "posteriors, k by inner CV, vote fallback; README 'The LSTM recipe') — a few minutes on "
                        "gtzan_mini on 2 cores; 'paper': the paper's sizes (no recipe) with the preset's epochs, "
                        "5 inner and CV folds")
    p.add_argument("--preset", default="default", choices=["default", "paper"],
                   help="training recipe: 'default' (Adam, converges in little CPU time) or 'paper' (the paper's "
                        "momentum SGD, 100 epochs unless the grid or --epochs says otherwise)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="force N training epochs for every model (smoke tests; overrides grid and preset)")
    p.add_argument("--store", default=None, metavar="STORE",
                   help="feature store directory (default RESULTS/store); share one between runs to extract once")
    p.add_argument("--features", default="scattering", choices=FAMILIES,
                   help="frame features: 'scattering' (the paper's, default), 'musicnn' (the pretrained MSD "
                        "tagger's penultimate layer over 3-s windows, one frame every 372 ms) or 'both' "
                        "(concatenated); the store defaults to RESULTS/store or RESULTS/store-<family>")
    p.add_argument("--backend", default=None, choices=["fast", "kymatio"],
                   help="scattering implementation for a new store (default: the feature config's)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="extraction worker processes (default 2; 0 = in this process, no Dask)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the networks train (default: CUDA when present, else CPU)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch intra-op threads (default 1: faster for these small models on a shared machine)")
    p.add_argument("--rows", nargs="+", default=(), choices=ROW_KEYS, metavar="ROW",
                   help=f"run only these rows of Table 2 (default: all six: {', '.join(ROW_KEYS)})")
    p.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the baselines (track-mean SVM, MFCC SVM, musicnn SVM)")
    p.add_argument("--out", required=True, metavar="RESULTS",
                   help="output directory: REPORT.md, results.json, *.png (created if needed)")
    p.set_defaults(func=cmd_reproduce)
    return p


def options_from_args(args):
    """:class:`~genreseg.experiments.ReproduceOptions` from parsed ``reproduce`` arguments."""
    from .experiments import ReproduceOptions

    return ReproduceOptions(data=args.data, out=args.out, layout=args.layout, protocol=args.protocol,
                            folds=args.folds, seeds=tuple(args.seeds), grid=args.grid, preset=args.preset,
                            store=args.store, workers=args.workers, backend=args.backend, epochs=args.epochs,
                            device=args.device, threads=args.threads, baselines=args.baselines,
                            features=args.features, rows=tuple(args.rows))


def cmd_reproduce(args) -> int:
    """Entry point of ``genreseg reproduce``; returns the exit code."""
    from .experiments import command_line, run_reproduce

    options = options_from_args(args)
    _, code = run_reproduce(options, command=command_line(options))
    return code


# ---------------------------------------------------------------------- the parser
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

    p = sub.add_parser("extract", help="compute frame features (scattering, musicnn or both) of a dataset into a store",
                       description="Decode every audio file of DATA (any rate/channels; wav au flac ogg mp3), "
                                   "compute frame features (second-order scattering by default; the pretrained "
                                   "musicnn tagger's frames with --features musicnn) and cache them in STORE. "
                                   "Rerunning skips files already stored; failed files are listed at the end "
                                   "and the exit code is 1.")
    _add_data_args(p)
    p.add_argument("--out", required=True, metavar="STORE", help="feature store directory (created if needed)")
    p.add_argument("--workers", type=int, default=2,
                   help="local Dask worker processes (default 2; 0 = in this process, no Dask)")
    p.add_argument("--scheduler", metavar="ADDR", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    _add_feature_args(p)
    p.add_argument("--backend", choices=["fast", "kymatio"], default=None,
                   help="scattering implementation (default: fast; kymatio is the slow reference)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="where to run the transform")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("info", help="summarise a feature store", description="Print what a feature store holds.")
    p.add_argument("store", help="feature store directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("train", help="train a frame model and the segment classifiers on a store",
                       description="Train a DNN or LSTM frame classifier on the tracks of STORE, then the LSTM "
                                   "segment-feature classifier (LSeg) and the fused one (FSeg), and save all of it "
                                   "to MODEL. Hold tracks out with --split or --folds/--fold; 'genreseg evaluate' "
                                   "then scores the tracks the model did not see.")
    p.add_argument("store", help="feature store (from 'genreseg extract')")
    p.add_argument("--out", required=True, metavar="MODEL", help="model directory to write")
    p.add_argument("--model", choices=["lstm", "dnn"], default="lstm", help="frame classifier (default lstm)")
    p.add_argument("--hidden", type=int, nargs="+", metavar="N",
                   help="hidden layer sizes, e.g. 512 or 1024 1024 (default: lstm 512, dnn 1024)")
    p.add_argument("--cell", choices=["torch", "peephole"], default=None,
                   help="LSTM cell: torch's nn.LSTM (fast) or the paper's peephole cell (default: preset's)")
    p.add_argument("--preset", choices=["default", "paper"], default="default",
                   help="training recipe: 'default' (Adam, converges in minutes) or 'paper' (momentum SGD, "
                        "lr 2e-5/8e-6 on summed gradients, 100 epochs, decay 0.9)")
    p.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    p.add_argument("--k", type=float, default=None,
                   help="posterior threshold of the fraction statistic (default 0.5, chosen by validation)")
    p.add_argument("--segment-classifier", choices=["svm", "logreg", "mlp"], default="svm",
                   help="classifier on segment features (default svm: RBF, grid-searched)")
    p.add_argument("--split", help="train only on tracks of this split (e.g. 'training' for ISMIR 2004)")
    p.add_argument("--folds", type=int, default=5, help="stratified folds for --fold (default 5)")
    p.add_argument("--fold", type=int, help="hold out this stratified fold (0-based) of the tracks")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and folds (default 0)")
    p.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"], help="training device (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="Frame/Seg/LSeg/FSeg accuracy of a model on a store",
                       description="Score MODEL on the tracks of STORE it was not trained on (or on a split): "
                                   "frame accuracy, majority-vote Seg_acc, LSeg_acc, FSeg_acc, per-class recall "
                                   "and the confusion matrix.")
    p.add_argument("model", help="model directory (from 'genreseg train')")
    p.add_argument("store", help="feature store with the same feature config")
    p.add_argument("--split", help="evaluate only tracks of this split (e.g. 'development')")
    p.add_argument("--include-training", action="store_true",
                   help="also score tracks the model was trained on (optimistic figures)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="genre of audio files or folders (features extracted on the fly)",
                       description="Predict the genre of each audio file (folders are searched recursively). "
                                   "Files that cannot be read are listed at the end; the exit code is then 1.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--timeline", action="store_true", help="also print per-frame posteriors with time stamps")
    p.set_defaults(func=cmd_predict)

    defaults = _serve_defaults()
    p = sub.add_parser("serve", help="HTTP service and web page: drop a song, see its genre and timeline",
                       description="Serve MODEL over HTTP with uvicorn: the page at / (drop audio files, see "
                                   "genre, probabilities and timeline), POST /predict (multipart upload of one "
                                   "file; JSON answer), GET /model, GET /health. Binds 127.0.0.1 (this machine "
                                   "only) unless --host says otherwise. Each limit answers with its own status: "
                                   "413 too large, 422 a file that cannot be analysed (or too long), 503 with "
                                   "Retry-After when the queue is full, 504 past the timeout.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1; 0.0.0.0 serves every network: mind who can reach it)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes, each with its own model copy and queue (default 1: one analysis "
                        "already uses every core)")
    p.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_mb,
                   help=f"largest upload in MiB (default {defaults.max_upload_mb:g})")
    p.add_argument("--max-duration", type=float, default=defaults.max_duration_s, metavar="SECONDS",
                   help=f"longest audio analysed (default {defaults.max_duration_s:g} s)")
    p.add_argument("--queue", type=int, default=defaults.queue,
                   help=f"analyses admitted at once per process, the running one included (default {defaults.queue})")
    p.add_argument("--timeout", type=float, default=defaults.timeout_s, metavar="SECONDS",
                   help=f"per request, for the upload and for the analysis (default {defaults.timeout_s:g} s)")
    p.set_defaults(func=cmd_serve)

    from .timeline import TimelineConfig

    p = sub.add_parser("segment", help="genre timeline of long recordings: where each genre starts and ends",
                       description="Split each recording (a DJ mix, a radio day, a concert, a playlist in one "
                                   "file) into genre segments: the frame model's genre posteriors (one every "
                                   "372 ms, computed as a stream, so any length runs in bounded memory) are "
                                   "decoded by Viterbi with a switch penalty and a minimum segment duration. "
                                   "Folders are searched recursively. Files that cannot be read are listed at "
                                   "the end; the exit code is then 1.",
                       epilog="Formats: table (readable), csv (path,start_s,end_s,genre,confidence), json, "
                              "jams (MIR annotation standard, namespace segment_open), audacity (label track: "
                              "File > Import > Labels). With --out DIR every file gets DIR/<name>.<ext> "
                              "(.txt .csv .json .jams .labels.txt), plus <name>.png with --plot.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("--format", choices=["table", "csv", "json", "jams", "audacity"], default="table",
                   help="output format (default table)")
    p.add_argument("--out", metavar="DIR", help="write one output file per recording into DIR instead of stdout")
    p.add_argument("--plot", action="store_true",
                   help="also draw DIR/<name>.png: genre bands above the stacked posteriors (needs --out)")
    p.add_argument("--switch-penalty", type=float, metavar="NATS",
                   help=f"cost of a genre change in nats of log-posterior; higher gives fewer segments "
                        f"(default {TimelineConfig.switch_penalty:g}, chosen on training mixes)")
    p.add_argument("--min-duration", type=float, metavar="SECONDS",
                   help=f"shortest segment; shorter blips are absorbed "
                        f"(default {TimelineConfig.min_duration_s:g}, chosen on training mixes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_segment)

    add_reproduce_parser(sub)
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
