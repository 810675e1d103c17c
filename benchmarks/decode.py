"""Decoding figures: throughput per format, and ``genreseg extract`` on MP3 against WAV.

1. **Decode throughput per format**, one core: each file of the test corpus
   (``tests/audio_corpus.py``: 185-s files from real gtzan_mini clips, made with real
   encoders) decoded, downmixed and resampled to 22050 Hz by :class:`genreseg.audio.AudioStream`,
   best of three, as x real time.
2. **End to end**: ``genreseg extract --workers 2`` on a folder of ``--files`` generated
   3-minute 44.1-kHz stereo MP3s (192 kb/s CBR, LAME), and on the same audio as 16-bit WAV:
   wall time, x real time, and peak RSS (the sum over the driver and its Dask workers,
   sampled every 0.2 s, and the largest single process).

Run: ``.venv/bin/python benchmarks/decode.py [--files 100] [--work /tmp/genreseg-decode-bench]``.
The generated audio is kept in ``--work`` between runs (about 3.3 GB of WAV for 100 files).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from audio_corpus import CORPUS, SECONDS, source_signal, write_corpus_file  # noqa: E402
from conftest import GTZAN  # noqa: E402

from genreseg.audio import AudioStream  # noqa: E402
from genreseg.encode import Encoding, write_audio  # noqa: E402

MP3 = Encoding("libmp3lame", "mp3", bit_rate=192_000)


def _clips() -> list[Path]:
    return sorted(GTZAN.glob("*/*.wav"))


def decode_throughput(work: Path) -> list[tuple[str, float, float]]:
    """``(name, seconds of audio, x real time)`` per corpus file, on one core."""
    folder = work / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    clips = _clips()[:2]
    rows = []
    for entry in CORPUS:
        path = folder / entry.name
        if not path.exists():
            write_corpus_file(entry, source_signal(clips, entry.rate, entry.channels), folder)
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            n = sum(len(block) for block in AudioStream(path))
            best = min(best, time.perf_counter() - t0)
        rows.append((entry.name, n / 22050, n / 22050 / best))
    return rows


def _make_track(args) -> None:
    i, clips, folder_mp3, folder_wav = args
    signal = source_signal([clips[i % len(clips)], clips[(i * 37 + 11) % len(clips)]], 44100, 2, SECONDS)
    label = clips[i % len(clips)].parent.name
    for folder, write in ((folder_mp3, lambda p: write_audio(p, signal, 44100, MP3)),
                          (folder_wav, lambda p: sf.write(p, signal, 44100, subtype="PCM_16"))):
        path = folder / label / f"track{i:03d}{'.mp3' if folder is folder_mp3 else '.wav'}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(path.stem + ".part" + path.suffix)  # a killed run leaves no half file
            write(part)
            part.rename(path)


def make_collection(work: Path, n_files: int) -> tuple[Path, Path]:
    """``n_files`` distinct 3-minute stereo tracks as MP3 and as WAV, one folder per genre."""
    folder_mp3, folder_wav = work / f"mp3_{n_files}", work / f"wav_{n_files}"
    clips = _clips()
    jobs = [(i, clips, folder_mp3, folder_wav) for i in range(n_files)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_make_track, jobs))
    return folder_mp3, folder_wav


def extract_run(data: Path, store: Path) -> dict:
    """``genreseg extract`` in a subprocess: wall time and sampled peak RSS of its process tree."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "genreseg", "extract", str(data), "--out", str(store),
                             "--workers", "2", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak_total = peak_single = 0
    while proc.poll() is None:
        try:
            procs = [root] + root.children(recursive=True)
            rss = [p.memory_info().rss for p in procs]
        except psutil.Error:
            continue
        peak_total, peak_single = max(peak_total, sum(rss)), max(peak_single, max(rss))
        time.sleep(0.2)
    out, err = proc.communicate()
    return {"seconds": time.perf_counter() - t0, "summary": out.strip().splitlines()[-1] if out.strip() else err,
            "returncode": proc.returncode, "peak_total_mb": peak_total / 2**20, "peak_single_mb": peak_single / 2**20}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100, help="tracks in the end-to-end collection (default 100)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/genreseg-decode-bench"),
                        help="where generated audio and stores go (kept between runs)")
    parser.add_argument("--skip-throughput", action="store_true", help="only the end-to-end part")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)

    if not args.skip_throughput:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
        print(f"{'decode + downmix + resample to 22050 Hz, one core':<44} {'seconds':>8} {'x real time':>12}")
        for name, seconds, speed in decode_throughput(args.work):
            print(f"{name:<44} {seconds:8.1f} {speed:12.0f}", flush=True)
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))

    print(f"\nmaking {args.files} 3-minute tracks (MP3 192 kb/s and WAV, 44.1 kHz stereo) in {args.work}", flush=True)
    folders = make_collection(args.work, args.files)
    audio_seconds = args.files * SECONDS
    print(f"\n{'genreseg extract --workers 2':<28} {'wall s':>8} {'x real time':>12} {'peak RSS MB (sum / largest)':>28}")
    for kind, folder in zip(("MP3", "WAV"), folders):
        store = args.work / f"store_{folder.name}"
        subprocess.run(["rm", "-rf", str(store)], check=True)
        r = extract_run(folder, store)
        print(f"{kind + f' ({args.files} files)':<28} {r['seconds']:8.1f} {audio_seconds / r['seconds']:12.1f} "
              f"{r['peak_total_mb']:18.0f} / {r['peak_single_mb']:.0f}", flush=True)
        print(f"    {r['summary']}  (exit {r['returncode']})", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other work on the machine slows every figure)")


if __name__ == "__main__":
    main()
