"""Speed of the original TensorFlow ``musicnn`` tagger: the baseline for its PyTorch port.

Times ``musicnn.extractor.extractor(mp3, model='MSD_musicnn', extract_features=True)``
end to end (MP3 decode and 16-kHz resampling by ``librosa.load``, mel, log, and the
network one 187-frame patch per ``sess.run``, as the package does with BATCH_SIZE = 1;
the graph is rebuilt and the checkpoint restored on every call, as the package does) on
a 3-minute 44.1-kHz stereo MP3 of real music:

* cold: one whole fresh process (Python start, ``import tensorflow``, one call);
* warm: in this process, one untimed warm-up call, then ``--repeats`` timed calls;
  median, min and max as x real time (audio seconds / wall seconds);
* a one-off split of a warm call's work: ``librosa.load``, mel + log, network.

The MP3 (``--work``/three_minutes.mp3, kept between runs) is six 30-s gtzan_mini clips of
different genres, concatenated (180 s), resampled 22050 -> 44100 Hz with soxr HQ,
duplicated to stereo and encoded with PyAV's libmp3lame at 192 kbit/s CBR.

Runs only in the throwaway TensorFlow venv of ``scripts/musicnn_reference.py``, plus PyAV::

    /tmp/tfvenv/bin/pip install av
    /tmp/tfvenv/bin/python benchmarks/musicnn_tf_baseline.py [--work /tmp/musicnn_bench] [--repeats 3]
"""

from __future__ import annotations

import argparse
import fractions
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GTZAN = REPO.parent / "shared" / "data" / "gtzan_mini"
GENRES = ("classical", "metal", "hiphop", "jazz", "pop", "reggae")
SECONDS = 180.0
MODEL = "MSD_musicnn"


def make_mp3(path: Path) -> Path:
    """Write the 3-minute 44.1-kHz stereo 192-kbit/s MP3 of six real clips (skipped if it exists)."""
    if path.exists():
        return path
    import av
    import soundfile as sf
    import soxr

    parts = []
    for genre in GENRES:
        x, sr = sf.read(GTZAN / genre / f"{genre}.00000.wav", dtype="float32", always_2d=True)
        parts.append(x.mean(axis=1)[:30 * sr])
    y = soxr.resample(np.concatenate(parts), sr, 44100, quality="HQ").astype(np.float32)
    stereo = np.clip(np.stack([y, y]), -1.0, 1.0)  # (channels, samples), planar float
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=44100, layout="stereo")
        stream.bit_rate = 192_000
        ctx = stream.codec_context
        resampler = av.AudioResampler(format=ctx.format.name, layout="stereo", rate=44100,
                                      frame_size=ctx.frame_size or None)
        pts = 0

        def mux(frames) -> None:
            nonlocal pts
            for frame in frames:
                frame.pts, frame.time_base = pts, fractions.Fraction(1, 44100)
                pts += frame.samples
                for packet in stream.encode(frame):
                    out.mux(packet)

        for start in range(0, stereo.shape[1], 1 << 14):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, start:start + (1 << 14)]),
                                               format="fltp", layout="stereo")
            frame.sample_rate = 44100
            mux(resampler.resample(frame))
        mux(resampler.resample(None))
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tag(mp3: Path):
    from musicnn.extractor import extractor

    return extractor(str(mp3), model=MODEL, extract_features=True)


def split(mp3: Path) -> dict[str, float]:
    """Seconds spent in each stage of one call, measured apart (the net timed with the patches ready)."""
    import librosa

    t0 = time.perf_counter()
    y, sr = librosa.load(str(mp3), sr=16000)
    t1 = time.perf_counter()
    mel = librosa.feature.melspectrogram(y=y, sr=sr, hop_length=256, n_fft=512, n_mels=96).T
    np.log10(10000 * mel.astype(np.float16) + 1)
    t2 = time.perf_counter()
    total = time.perf_counter()
    tag(mp3)
    total = time.perf_counter() - total
    return {"librosa.load (decode + resample)": t1 - t0, "mel + log": t2 - t1,
            "graph build + restore + net (rest of a call)": total - (t2 - t0),
            "whole call": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/musicnn_bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--once", type=Path, help=argparse.SUPPRESS)  # the cold child process
    args = parser.parse_args()
    if args.once:
        tag(args.once)
        return

    mp3 = make_mp3(args.work / "three_minutes.mp3")
    print(f"{mp3}: {mp3.stat().st_size / 1e6:.2f} MB, {os.cpu_count()} CPUs")

    t = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--once", str(mp3)], check=True, capture_output=True)
    cold = time.perf_counter() - t
    print(f"cold (fresh process, import + one call): {cold:.2f} s = {SECONDS / cold:.1f}x real time")

    import tensorflow as tf

    t = time.perf_counter()
    taggram, labels, _ = tag(mp3)
    print(f"warm-up call: {time.perf_counter() - t:.2f} s; taggram {taggram.shape}; "
          f"top tags: {', '.join(labels[k] for k in np.argsort(-taggram.mean(0))[:5])}")
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        tag(mp3)
        times.append(time.perf_counter() - t)
    speeds = sorted(SECONDS / s for s in times)
    print("warm calls (s):", ", ".join(f"{s:.2f}" for s in times))
    print(f"warm x real time: median {statistics.median(speeds):.1f}, min {speeds[0]:.1f}, max {speeds[-1]:.1f} "
          f"(tensorflow {tf.__version__}, numpy {np.__version__})")
    for stage, seconds in split(mp3).items():
        print(f"  {stage}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
