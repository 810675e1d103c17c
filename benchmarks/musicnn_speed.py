"""musicnn speed: log-mel, mid end and the whole front of the pipeline, x real time.

On a 3-minute signal of real music (gtzan_mini clips concatenated, resampled to
16 kHz with soxr), with ``torch.set_num_threads(2)``; each stage timed over ``--runs``
runs after one warm-up, reported as median (min-max) x real time:

* ``log_mel``: :func:`genreseg.features.musicnn.log_mel`;
* ``mid end``: :func:`genreseg.features.musicnn.midend_of_long` on that log-mel;
* ``whole``: log-mel + mid end + :func:`windowed_outputs` (3-s windows, 1-s hop).

Run: ``.venv/bin/python benchmarks/musicnn_speed.py [--seconds 180] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import GTZAN  # noqa: E402

from genreseg.features.musicnn import (  # noqa: E402
    MUSICNN_SAMPLE_RATE,
    PATCH_FRAMES,
    load_musicnn,
    log_mel,
    midend_of_long,
    windowed_outputs,
)

HOP_FRAMES = 62  # ~1 s


def real_signal(seconds: float) -> np.ndarray:
    """``seconds`` of gtzan_mini clips, end to end, mono float32 at 16 kHz."""
    parts, total = [], 0
    for path in sorted(GTZAN.glob("*/*.wav")):
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        part = soxr.resample(audio.mean(axis=1), rate, MUSICNN_SAMPLE_RATE, quality="HQ")
        parts.append(part)
        total += len(part)
        if total >= seconds * MUSICNN_SAMPLE_RATE:
            break
    signal = np.concatenate(parts)[: int(seconds * MUSICNN_SAMPLE_RATE)]
    if len(signal) < seconds * MUSICNN_SAMPLE_RATE:
        raise SystemExit(f"only {len(signal) / MUSICNN_SAMPLE_RATE:.0f} s of audio in {GTZAN}")
    return np.ascontiguousarray(signal, dtype=np.float32)


def timed(function, runs: int) -> list[float]:
    function()  # warm-up: first-call allocations, the mel basis, BLAS threads
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="MSD_musicnn")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    signal = real_signal(args.seconds)
    model = load_musicnn(args.model)
    mel = log_mel(signal)

    def whole():
        mid = midend_of_long(log_mel(signal), model=model)
        return windowed_outputs(mid, PATCH_FRAMES, HOP_FRAMES, model=model)

    stages = {
        "log_mel": lambda: log_mel(signal),
        "mid end": lambda: midend_of_long(mel, model=model),
        "whole": whole,
    }
    print(f"{args.model}, {args.seconds:.0f} s of audio ({len(mel)} frames), "
          f"{args.threads} threads, torch {torch.__version__}")  # fmt: skip
    with torch.inference_mode():
        for name, function in stages.items():
            speeds = [args.seconds / t for t in timed(function, args.runs)]
            print(f"{name:>8}: {statistics.median(speeds):7.1f} x real time "
                  f"(min {min(speeds):.1f}, max {max(speeds):.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
