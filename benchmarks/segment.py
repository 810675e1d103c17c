"""Genre timelines of mixes with a known answer (issue 12).

For each outer fold of a stratified 5-fold split of gtzan_mini (seed 0):

1. train a DNN and an LSTM frame model (default presets) on the four training folds;
2. **tune the decoder on training data only**: train the same models on three of
   the four training folds, decode mixes of the fourth over a grid of switch
   penalties x minimum durations, keep the pair with the best accuracy + boundary F
   (one pair per frame model);
3. build mixes of the held-out fold's tracks: random order, a random genre other
   than the previous one for every track, linear crossfades of 0-5 s, written to
   16-bit WAV files of 10 and 60 minutes (a 60-minute mix reuses the fold's 20 clips
   about six times each: gtzan_mini has no more);
4. extract the mix's features (streamed, as ``genreseg segment`` does) and score,
   per method: raw frame argmax, a sliding 10-s majority vote, the decoder on DNN
   posteriors and on LSTM posteriors:

   * time-weighted genre accuracy (share of the mix, crossfades excluded, whose
     predicted genre is the genre playing);
   * boundary precision/recall/F at +-3 s (``mir_eval.segment.detection``, the mix's
     start and end not counted) and the predicted/true segment-count ratio;

   next to the same model's whole-track Seg_acc (majority vote) on the same tracks;
5. time ``GenreClassifier.segment``'s path (streamed decode + features + LSTM +
   decoder) on each 60-minute mix in a fresh process: x real time and peak RSS.

Prints Markdown tables (mean +- std over folds x seeds) and writes every figure to
``--out`` (JSON). The full protocol is the default (5 folds x 3 seeds x 10 and 60
minutes); ``--folds 0 --seeds 0 --minutes 10`` and friends reduce it.

Usage::

    python benchmarks/segment.py [--data ../shared/data/gtzan_mini] [--store DIR] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GTZAN = REPO.parent / "shared" / "data" / "gtzan_mini"
PENALTIES = (0.0, 2.0, 4.0, 8.0, 16.0, 32.0)
MIN_DURATIONS = (0.0, 5.0, 10.0, 15.0, 20.0)
LSTM_WINDOWS = (0.0, 1.5, 3.0, 6.0)  # seconds; 0 = one pass over the whole mix
VOTE_SECONDS = 10.0
WINDOW_S = 3.0
#: method -> (posteriors, how they are turned into segments); "tuned" = the decoder settings tuned on
#: the training folds, "one pass" = the LSTM over the whole mix as one sequence (predict --timeline's).
METHODS = {
    "argmax (LSTM, one pass)": ("lstm-0", "argmax"),
    "argmax (LSTM, windowed)": ("lstm-w", "argmax"),
    "10-s vote (LSTM, windowed)": ("lstm-w", "vote"),
    "decoder (DNN)": ("dnn", "decoder"),
    "decoder (LSTM, one pass)": ("lstm-0", "decoder"),
    "decoder (LSTM, windowed)": ("lstm-w", "decoder"),
}


# --------------------------------------------------------------------------- mixes
@dataclass
class Mix:
    path: Path
    duration_s: float
    intervals: np.ndarray  # (n, 2) true segments, boundaries at crossfade centres
    genres: list           # genre of each true segment
    fades: np.ndarray      # (m, 2) crossfade intervals, excluded from the accuracy


def build_mix(rows, minutes: float, rng: np.random.Generator, path: Path, rate: int, max_fade: float = 5.0) -> Mix:
    """Write a mix of ``rows`` (dicts with path, label) to ``path`` and return its answer.

    Tracks follow in random order, each of a random genre other than the previous
    one's, joined by linear crossfades of U(0, max_fade) seconds. Writing goes track
    by track: the mix is never whole in memory.
    """
    import soundfile as sf

    from genreseg.audio import load_audio

    by_genre: dict = {}
    for r in rows:
        by_genre.setdefault(r["label"], []).append(r)
    genres = sorted(by_genre)
    target = int(minutes * 60 * rate)
    written, prev_genre, tail = 0, None, np.zeros(0, np.float32)
    starts, labels, fades = [], [], []
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16") as out:
        while written + len(tail) < target:
            genre = rng.choice([g for g in genres if g != prev_genre])
            row = by_genre[genre][rng.integers(len(by_genre[genre]))]
            x = load_audio(row["path"], rate)
            fade = min(int(rng.uniform(0, max_fade) * rate), len(tail), len(x) // 2)
            if fade:
                ramp = np.linspace(0, 1, fade, endpoint=False, dtype=np.float32)
                x = x.copy()
                x[:fade] = x[:fade] * ramp + tail[len(tail) - fade:] * (1 - ramp)
                tail = tail[:len(tail) - fade]
            out.write(tail)
            written += len(tail)
            fades.append((written / rate, (written + fade) / rate))
            starts.append((written + fade / 2) / rate)
            labels.append(genre)
            tail, prev_genre = x, genre
        tail = tail[:max(0, target - written)]
        out.write(tail)
        written += len(tail)
    duration = written / rate
    bounds = np.r_[0.0, starts[1:], duration]
    return Mix(path=path, duration_s=duration, intervals=np.c_[bounds[:-1], bounds[1:]], genres=labels,
               fades=np.asarray(fades[1:]).reshape(-1, 2))


# --------------------------------------------------------------------------- methods
def vote_path(post: np.ndarray, frames: int) -> np.ndarray:
    """Majority genre of the frame argmaxes in a centred window of ``frames`` frames."""
    arg = post.argmax(axis=1)
    onehot = np.eye(post.shape[1])[arg]
    c = np.cumsum(np.r_[np.zeros((1, post.shape[1])), onehot], axis=0)
    half = frames // 2
    idx = np.arange(len(arg))
    lo, hi = np.clip(idx - half, 0, len(arg)), np.clip(idx + half + 1, 0, len(arg))
    return (c[hi] - c[lo]).argmax(axis=1)


def segments_of(how: str, post, times, label_names, duration, config):
    from genreseg.timeline import TimelineConfig, decode_segments, hop_of, runs_to_segments

    if how == "argmax":
        return decode_segments(post, times, label_names, TimelineConfig(0.0, 0.0), duration)
    if how == "vote":
        path = vote_path(post, int(round(VOTE_SECONDS / hop_of(times))))
        return runs_to_segments(path, post, times, label_names, duration)
    return decode_segments(post, times, label_names, config, duration)


def score(segments, mix: Mix) -> dict:
    """Time-weighted accuracy (crossfades excluded), boundary P/R/F at +-3 s, count ratio."""
    import mir_eval

    grid = np.arange(0, mix.duration_s, 0.05) + 0.025
    keep = np.ones(len(grid), bool)
    for a, b in mix.fades:
        keep &= ~((grid >= a) & (grid < b))
    grid = grid[keep]
    est_iv = np.array([[s.start_s, s.end_s] for s in segments])
    est = np.array([s.genre for s in segments])[np.clip(np.searchsorted(est_iv[:, 1], grid, side="right"),
                                                        0, len(segments) - 1)]
    ref = np.array(mix.genres)[np.clip(np.searchsorted(mix.intervals[:, 1], grid, side="right"),
                                       0, len(mix.genres) - 1)]
    est_iv[-1, 1] = mix.intervals[-1, 1]  # same end for mir_eval's interval check
    p, r, f = mir_eval.segment.detection(mix.intervals, est_iv, window=WINDOW_S, trim=True)
    return {"accuracy": float(np.mean(est == ref)), "boundary_p": float(p), "boundary_r": float(r),
            "boundary_f": float(f), "count_ratio": len(segments) / len(mix.genres)}


# --------------------------------------------------------------------------- models
def train_models(features, idx, seed: int) -> dict:
    from genreseg.models import default_preset, train_frame_model

    seqs = [features.sequences[i] for i in idx]
    labels = features.labels[idx]
    return {kind: train_frame_model(seqs, labels, len(features.label_names),
                                    default_preset(kind).replace(seed=seed, device="cpu"), progress=False)
            for kind in ("dnn", "lstm")}


def mix_posteriors(mix: Mix, models: dict, feature_config, lstm_windows) -> tuple[np.ndarray, dict]:
    """Frame times and posteriors of a mix file (features streamed once): ``"dnn"`` and
    ``"lstm-<window_s>"`` for each LSTM window, as ``GenreClassifier.segment`` computes them."""
    from genreseg.audio import AudioStream
    from genreseg.features import iter_features
    from genreseg.models import iter_frame_posteriors
    from genreseg.timeline import TimelineConfig

    stream = AudioStream(mix.path, feature_config.sample_rate, feature_config.min_samples)
    feats = np.concatenate(list(iter_features(stream, feature_config)), axis=0)
    times = np.arange(len(feats)) * feature_config.hop_seconds
    chunks = [feats[a:a + feature_config.window_frames] for a in range(0, len(feats), feature_config.window_frames)]

    def post(model, window_s):
        frames = TimelineConfig(lstm_window_s=window_s).window_frames(feature_config.hop_seconds)
        return np.concatenate(list(iter_frame_posteriors(model, chunks, frames)))

    out = {"dnn": post(models["dnn"], 0.0)}
    out.update({f"lstm-{w:g}": post(models["lstm"], w) for w in lstm_windows})
    return times, out


def seg_acc(model, features, idx) -> float:
    """Whole-track Seg_acc: majority vote of the frame argmaxes of each track."""
    from genreseg.models import frame_posteriors

    post = frame_posteriors(model, [features.sequences[i] for i in idx])
    votes = [np.bincount(p.argmax(1), minlength=p.shape[1]).argmax() for p in post]
    return float(np.mean(np.asarray(votes) == features.labels[idx]))


def tune(features, rows, train_idx, seed: int, work: Path, n_mixes: int, minutes: float, log) -> dict:
    """Best (switch_penalty, min_duration_s) per frame model, on the training folds only."""
    from genreseg.splits import kfold_splits
    from genreseg.timeline import TimelineConfig

    inner = kfold_splits([rows[i]["label"] for i in train_idx], 4, seed)[0]
    fit_idx, val_idx = [train_idx[i] for i in inner[0]], [train_idx[i] for i in inner[1]]
    models = train_models(features, fit_idx, seed)
    grid: dict = {}  # (kind, window, penalty, duration) -> accuracy + F of each tuning mix
    for m in range(n_mixes):
        mix = build_mix([rows[i] for i in val_idx], minutes, np.random.default_rng([seed, m, 99]),
                        work / f"tune-{m}.wav", features.config.sample_rate)
        times, post = mix_posteriors(mix, models, features.config, LSTM_WINDOWS)
        for key, p in post.items():
            kind, window = ("dnn", 0.0) if key == "dnn" else ("lstm", float(key.split("-")[1]))
            for pen in PENALTIES:
                for dur in MIN_DURATIONS:
                    config = TimelineConfig(pen, dur, window)
                    s = score(segments_of("decoder", p, times, features.label_names, mix.duration_s, config), mix)
                    grid.setdefault((kind, window, pen, dur), []).append(s["accuracy"] + s["boundary_f"])
        mix.path.unlink()
    log("  tuning grid (kind/window/penalty/min duration: accuracy + F): " + ", ".join(
        f"{k[0]}/{k[1]:g}/{k[2]:g}/{k[3]:g}:{np.mean(v):.3f}" for k, v in grid.items()))

    def best(select):
        key = max((k for k in grid if select(k)), key=lambda k: np.mean(grid[k]))
        return TimelineConfig(switch_penalty=key[2], min_duration_s=key[3], lstm_window_s=key[1])

    tuned = {"dnn": best(lambda k: k[0] == "dnn"), "lstm-w": best(lambda k: k[0] == "lstm"),
             "lstm-0": best(lambda k: k[0] == "lstm" and k[1] == 0)}
    log("  tuned: " + "; ".join(f"{k}: {c.to_dict()}" for k, c in tuned.items()))
    return tuned


# --------------------------------------------------------------------------- timing
def save_frame_model(model, directory: Path) -> None:
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in model.state_arrays().items()}, str(directory / "w.safetensors"))
    (directory / "meta.json").write_text(json.dumps(model.metadata()))


def time_child(model_dir: str, mix_path: str, config_json: str, feature_json: str) -> None:
    """Run in a fresh process: GenreClassifier.segment's stages on one file; print JSON figures."""
    t0 = time.perf_counter()
    from safetensors.numpy import load_file

    from genreseg.features import FeatureConfig
    from genreseg.models import TrainedFrameModel
    from genreseg.models import iter_frame_posteriors
    from genreseg.pipeline import FrameSource
    from genreseg.timeline import TimelineConfig, decode_segments

    d = Path(model_dir)
    model = TrainedFrameModel.from_state(load_file(str(d / "w.safetensors")), json.loads((d / "meta.json").read_text()),
                                         device="cpu")
    feature_config = FeatureConfig.from_dict(json.loads(feature_json))
    t1 = time.perf_counter()
    config = TimelineConfig.from_dict(json.loads(config_json))
    # The pipeline's stages as GenreClassifier.segment runs them (genreseg.pipeline.analyse_file).
    source = FrameSource(mix_path, feature_config)
    post = np.concatenate(list(iter_frame_posteriors(model, source, config.window_frames(feature_config.hop_seconds))))
    times, duration = np.arange(len(post)) * feature_config.hop_seconds, source.info.duration
    t2 = time.perf_counter()
    segs = decode_segments(post, times, [str(i) for i in range(post.shape[1])], config, duration)
    t3 = time.perf_counter()
    use = resource.getrusage(resource.RUSAGE_SELF)
    # Peak RSS from this process's own memory map (VmHWM): ru_maxrss of a process started by
    # subprocess (vfork + exec) also counts the parent's RSS at the exec, here the benchmark's.
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    print(json.dumps({"duration_s": duration, "setup_s": t1 - t0, "posteriors_s": t2 - t1, "decode_s": t3 - t2,
                      "total_s": t3 - t0, "x_real_time": duration / (t3 - t0), "segments": len(segs),
                      "cpu_s": use.ru_utime + use.ru_stime, "peak_rss_mb": hwm / 1024,
                      "ru_maxrss_mb": use.ru_maxrss / 1024, "load_average": os.getloadavg()[0]}))


def time_segment(model, mix: Mix, config, feature_config, work: Path) -> dict:
    save_frame_model(model, work / "timing-model")
    out = subprocess.run([sys.executable, __file__, "--time-child", str(work / "timing-model"), str(mix.path),
                          json.dumps(config.to_dict()), json.dumps(feature_config.to_dict())],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report
def mean_std(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def report(results: list, timings: list) -> str:
    lines = []
    for minutes in sorted({r["minutes"] for r in results}):
        rs = [r for r in results if r["minutes"] == minutes]
        lines += [f"\n### {minutes:g}-minute mixes ({len(rs)} mixes: folds {sorted({r['fold'] for r in rs})}, "
                  f"seeds {sorted({r['seed'] for r in rs})})\n",
                  "| method | time-weighted accuracy | boundary F@3 s | P | R | segments pred/true |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for method in METHODS:
            s = [r["scores"][method] for r in rs]
            lines.append(f"| {method} | {mean_std([x['accuracy'] for x in s])} | "
                         f"{mean_std([x['boundary_f'] for x in s])} | {mean_std([x['boundary_p'] for x in s])} | "
                         f"{mean_std([x['boundary_r'] for x in s])} | {mean_std([x['count_ratio'] for x in s])} |")
        for kind in ("dnn", "lstm"):
            lines.append(f"| whole-track Seg_acc ({kind.upper()}), same tracks | "
                         f"{mean_std([r['seg_acc'][kind] for r in rs])} | | | | |")
    if timings:
        lines += ["\n### GenreClassifier.segment path on the 60-minute mixes (fresh process, LSTM)\n",
                  "| x real time (wall) | x real time per CPU second | load average | total s | setup s | "
                  "posteriors s | decode s | peak RSS MB |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |",
                  f"| {mean_std([t['x_real_time'] for t in timings])} | "
                  f"{mean_std([t['duration_s'] / t['cpu_s'] for t in timings])} | "
                  f"{mean_std([t['load_average'] for t in timings])} | {mean_std([t['total_s'] for t in timings])} | "
                  f"{mean_std([t['setup_s'] for t in timings])} | {mean_std([t['posteriors_s'] for t in timings])} | "
                  f"{mean_std([t['decode_s'] for t in timings])} | "
                  f"{mean_std([t['peak_rss_mb'] for t in timings if 'ru_maxrss_mb' in t])} |"]
    return "\n".join(lines)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--time-child":
        time_child(*sys.argv[2:6])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(GTZAN), help="folder-per-genre collection (default gtzan_mini)")
    ap.add_argument("--store", default=str(REPO / ".genreseg-cache" / "bench-store"),
                    help="feature store of --data (extracted there if missing)")
    ap.add_argument("--work", default="/tmp/genreseg-segment-bench", help="where mixes are written (deleted after)")
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="outer folds to run (of 5)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="mix seeds per fold")
    ap.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0], help="mix lengths")
    ap.add_argument("--tune-mixes", type=int, default=2, help="tuning mixes per fold")
    ap.add_argument("--tune-minutes", type=float, default=10.0, help="length of the tuning mixes")
    ap.add_argument("--no-timing", action="store_true", help="skip the fresh-process timing of 60-minute mixes")
    ap.add_argument("--out", default=str(REPO / ".genreseg-cache" / "segment-bench.json"),
                    help="JSON with every figure (rewritten after every mix)")
    args = ap.parse_args(argv)

    import torch

    from genreseg.datasets import load_dataset
    from genreseg.extract import extract
    from genreseg.features import FeatureConfig
    from genreseg.splits import kfold_splits
    from genreseg.store import FeatureStore

    torch.set_num_threads(1)  # small models on a shared machine: see benchmarks/segment_choices.py
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.0f} s] {msg}", file=sys.stderr, flush=True)

    tracks = load_dataset(args.data)
    if not (Path(args.store) / "store.json").exists() or len(FeatureStore(args.store).rows()) < len(tracks):
        log(f"extracting {len(tracks)} tracks into {args.store}")
        extract(tracks, args.store, FeatureConfig(), workers=2, progress=False)
    features = FeatureStore(args.store).load()
    rows = features.rows
    folds = kfold_splits([r["label"] for r in rows], 5, 0)
    results, timings = [], []
    for fold in args.folds:
        train_idx, test_idx = (list(map(int, x)) for x in folds[fold])
        log(f"fold {fold}: tuning on training folds")
        tuned = tune(features, rows, train_idx, fold, work, args.tune_mixes, args.tune_minutes, log)
        log(f"fold {fold}: training on {len(train_idx)} tracks")
        models = train_models(features, train_idx, 0)
        accs = {kind: seg_acc(m, features, test_idx) for kind, m in models.items()}
        for seed in args.seeds:
            for minutes in args.minutes:
                mix = build_mix([rows[i] for i in test_idx], minutes, np.random.default_rng([fold, seed, int(minutes)]),
                                work / f"mix-{fold}-{seed}-{minutes:g}.wav", features.config.sample_rate)
                times, post = mix_posteriors(mix, models, features.config, {0.0, tuned["lstm-w"].lstm_window_s})
                post["lstm-w"] = post[f"lstm-{tuned['lstm-w'].lstm_window_s:g}"]
                scores = {}
                for method, (key, how) in METHODS.items():
                    segs = segments_of(how, post[key], times, features.label_names, mix.duration_s, tuned[key])
                    scores[method] = score(segs, mix)
                results.append({"fold": fold, "seed": seed, "minutes": minutes, "seg_acc": accs, "scores": scores,
                                "true_segments": len(mix.genres),
                                "tuned": {k: c.to_dict() for k, c in tuned.items()}})
                log(f"fold {fold} seed {seed} {minutes:g} min: " + "; ".join(
                    f"{m} acc {s['accuracy']:.3f} F {s['boundary_f']:.3f} n {s['count_ratio']:.2f}"
                    for m, s in scores.items()) + f"; Seg_acc {accs}")
                if minutes >= 60 and not args.no_timing:
                    t = time_segment(models["lstm"], mix, tuned["lstm-w"], features.config, work)
                    timings.append(t)
                    log(f"  timing: {t}")
                mix.path.unlink()
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps({"results": results, "timings": timings}, indent=1))
    print(report(results, timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
