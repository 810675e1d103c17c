"""musicnn frontend speed and memory, from a real MP3 to frames, x real time.

The file: 3 minutes of real music (gtzan_mini clips of six genres end to end),
upsampled to 44.1 kHz stereo and encoded by LAME (PyAV's libmp3lame, 192 kbit/s), as a
music library holds it. Each feature family is timed on the whole path a user runs
(``compute_features_from_file``: decode, downmix, resample, frames) with 2 threads,
``--runs`` runs after one warm-up, as median (min-max) x real time:

* ``scattering`` — the paper's frames;
* ``musicnn`` — the pretrained tagger's frames (the family's default: MSD_musicnn,
  200-d penultimate over 3-s windows, one every 372 ms);
* ``musicnn MTT`` — the same with the MagnaTagATune tagger;
* ``both`` — the two side by side from one decode.

``--memory`` also measures each family's peak resident memory, in a fresh process per
(family, length), on the 3-minute file and on a 15-minute one (the same music five
times): flat in the file's length means the two peaks agree.

Run: ``.venv/bin/python benchmarks/musicnn_speed.py [--runs 5] [--memory]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GTZAN = REPO.parent / "shared" / "data" / "gtzan_mini"
GENRES = ("classical", "metal", "hiphop", "jazz", "pop", "reggae")
FAMILIES = {
    "scattering": {},
    "musicnn": {"family": "musicnn"},
    "musicnn MTT": {"family": "musicnn", "musicnn_model": "MTT_musicnn"},
    "both": {"family": "both"},
}


def make_mp3(path: Path, repeats: int = 1) -> float:
    """Write the benchmark MP3 (``repeats`` x 3 minutes); returns its duration in seconds."""
    import soundfile as sf
    import soxr

    from genreseg.encode import Encoding, write_audio

    parts = []
    for genre in GENRES:
        audio, rate = sf.read(sorted((GTZAN / genre).glob("*.wav"))[0], dtype="float32")
        parts.append(soxr.resample(audio[: 30 * rate], rate, 44100, quality="HQ"))
    mono = np.tile(np.concatenate(parts), repeats)
    write_audio(path, np.stack([mono, mono], axis=1), 44100, Encoding("libmp3lame", "mp3", bit_rate=192_000))
    return len(mono) / 44100


def _config(name: str):
    from genreseg.features import FeatureConfig

    return FeatureConfig(**FAMILIES[name])


def _set_threads(n: int) -> None:
    import torch

    from genreseg.features.engines import set_cpu_threads

    set_cpu_threads(n)
    torch.set_num_threads(n)


def time_family(name: str, path: Path, duration: float, runs: int) -> list[float]:
    from genreseg.features import compute_features_from_file

    config = _config(name)
    compute_features_from_file(path, config)  # warm-up: plans, weights, BLAS threads
    speeds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        compute_features_from_file(path, config)
        speeds.append(duration / (time.perf_counter() - t0))
    return speeds


def peak_memory(name: str, path: Path, threads: int) -> float:
    """Peak RSS (MB) of a fresh process computing one file's frames."""
    # VmHWM, not getrusage's ru_maxrss: a child's ru_maxrss can carry its parent's peak across fork + exec.
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'benchmarks')!r}); import musicnn_speed as b; "
            f"b._set_threads({threads}); from genreseg.features import compute_features_from_file; "
            f"compute_features_from_file({str(path)!r}, b._config({name!r})); "
            "print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    ap.add_argument("--memory", action="store_true", help="also peak RSS on 3- and 15-minute files")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    _set_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        mp3 = Path(tmp) / "three_minutes.mp3"
        duration = make_mp3(mp3)
        print(f"{mp3.name}: {duration:.0f} s, 44.1 kHz stereo MP3 (LAME 192 kbit/s); {args.threads} threads")
        for name in args.families:
            speeds = time_family(name, mp3, duration, args.runs)
            results[name] = {"x_real_time": speeds}
            print(f"{name:>12}: {statistics.median(speeds):7.1f} x real time "
                  f"(min {min(speeds):.1f}, max {max(speeds):.1f}, {args.runs} runs)")
        if args.memory:
            long = Path(tmp) / "fifteen_minutes.mp3"
            make_mp3(long, repeats=5)
            for name in args.families:
                peaks = [peak_memory(name, p, args.threads) for p in (mp3, long)]
                results[name]["peak_rss_mb"] = {"3 min": peaks[0], "15 min": peaks[1]}
                print(f"{name:>12}: peak RSS {peaks[0]:.0f} MB (3 min), {peaks[1]:.0f} MB (15 min)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
