"""Scattering backends side by side: kymatio 0.3.0's torch frontend (the reference) and ``fast``.

Usage::

    python benchmarks/extract.py [--clips N] [--long-minutes M]

On the same gtzan_mini clips, cut to 655360 samples (29.7 s: the length kymatio
pads by a whole number of hops to 2^20, so both put frames at the same times):

* **kymatio** as its users run it: ``Scattering1D(J=14, shape=655360, Q=(8, 1),
  oversampling=1)`` applied to each whole clip (2^20 padded length, as in #6);
* **fast** as the pipeline runs it: ``genreseg.features.compute_raw`` with the
  default ``FeatureConfig`` (a clip is one periodic 2^20 window).

For each:

* setup time: building the transform in a fresh process, first (for ``fast``: with
  an empty plan cache) and in later processes (``fast`` loads its cached plan;
  kymatio has no cache and rebuilds its filter bank in every process; the two later
  processes start together, so they share the cores). The imports each needs
  (SciPy's FFT for ``fast``; torch and kymatio for kymatio) are timed apart;
* throughput in x real time, with both cores used two ways: one process with two
  threads, and two processes with one thread each (the pipeline's Dask layout); the
  better of the two is each backend's figure, and their ratio the speed-up. CPU
  seconds per clip (user + system, one thread) are shown too: unlike wall time they
  hardly move when other jobs share the machine;
* the largest relative L2 difference of ``fast`` from kymatio per scattering order
  (0, 1, 2 separately) over the clips, before the log;
* peak RSS (``VmHWM``) of a fresh process: one clip for both, and for ``fast`` the
  features of a ``--long-minutes`` (default 60) WAV file made by tiling the clips,
  through ``compute_features_from_file`` (decode, resample and transform streamed),
  as ``genreseg extract`` computes them. kymatio cannot take an hour whole (a
  4-minute track needs ~10 GB), so it has no long-file figure.

Every measurement runs in its own subprocess (``--worker``), so that memory and
caches do not leak between them. Defaults take about 3 minutes on 2 idle cores,
mostly kymatio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GTZAN = REPO.parent / "shared" / "data" / "gtzan_mini"
SAMPLE_RATE = 22050
CLIP = 655360


# --------------------------------------------------------------------------- worker side
def _vm_hwm_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    status = Path("/proc/self/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+)\s+kB", status)
    if m:
        return int(m.group(1)) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _load(path: str) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise SystemExit(f"{path}: expected {SAMPLE_RATE} Hz, got {sr}")
    return x.mean(axis=1)[:CLIP]


def _build(backend: str, threads: int):
    """(transform: clip -> frames x channels, imports_s, setup_s) in this process."""
    t0 = time.perf_counter()
    if backend == "fast":  # no torch on this path
        import scipy.fft  # noqa: F401  (the CPU engine's FFTs)

        from genreseg.features import FeatureConfig, compute_raw
        from genreseg.features.backends import get_backend
        from genreseg.features.engines import set_cpu_threads

        set_cpu_threads(threads)
        config = FeatureConfig()
        t1 = time.perf_counter()
        get_backend(config)  # builds (and caches, per process) the plan for the window
        return (lambda x: compute_raw(x, SAMPLE_RATE, config)), t1 - t0, time.perf_counter() - t1
    import torch

    from genreseg.features.kymatio_compat import import_scattering1d

    torch.set_num_threads(threads)
    Scattering1D = import_scattering1d()
    t1 = time.perf_counter()
    scattering = Scattering1D(J=14, shape=CLIP, Q=(8, 1), oversampling=1, max_order=2)

    def transform(x):
        with torch.no_grad():
            return scattering(torch.from_numpy(x)[None])[0].numpy().T

    return transform, t1 - t0, time.perf_counter() - t1


def _write_long_file(path: str, minutes: float, clips: list[str]) -> None:
    """A WAV of ``minutes`` made by tiling the clips, written block by block."""
    import soundfile as sf

    n = int(minutes * 60 * SAMPLE_RATE)
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, subtype="PCM_16") as f:
        done, i = 0, 0
        while done < n:
            x = _load(clips[i % len(clips)])[: n - done]
            f.write(x)
            done, i = done + len(x), i + 1


def _worker(task: dict) -> None:
    """Run one measurement in this (fresh) process and print ``RESULT <json>``."""
    if task["kind"] == "long":
        from genreseg.features import FeatureConfig, compute_features_from_file
        from genreseg.features.engines import set_cpu_threads

        set_cpu_threads(task["threads"])
        t0 = time.perf_counter()
        feats = compute_features_from_file(task["path"], FeatureConfig())
        print("RESULT " + json.dumps({
            "seconds": time.perf_counter() - t0, "frames": feats.n_frames, "audio_s": feats.info["duration"],
            "peak_rss_mb": _vm_hwm_mb(), "torch_loaded": "torch" in sys.modules}), flush=True)
        return
    transform, imports_s, setup_s = _build(task["backend"], task["threads"])
    result = {"import_s": imports_s, "setup_s": setup_s}
    clips = [_load(p) for p in task["clips"]]
    transform(clips[0])  # warm-up (first-call allocations, FFT plans)
    if task.get("barrier"):
        print("READY", flush=True)
        sys.stdin.readline()
    start, cpu0 = time.time(), _cpu_seconds()
    raws = [transform(x) for x in clips]
    result.update(start=start, end=time.time(), cpu_s=_cpu_seconds() - cpu0,
                  audio_s=sum(len(x) for x in clips) / SAMPLE_RATE, peak_rss_mb=_vm_hwm_mb())
    if task.get("save"):
        np.savez(task["save"], *raws)
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver side
def _spawn(task: dict, env: dict, stdin=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(task)], env=env,
                            stdin=stdin, stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    for line in proc.stdout:
        if line.startswith("RESULT "):
            proc.wait()
            return json.loads(line[len("RESULT "):])
    proc.wait()
    raise SystemExit(f"worker failed with exit code {proc.returncode}")


def run_worker(task: dict, env: dict) -> dict:
    return _result(_spawn(task, env))


def run_two_processes(task: dict, clips: list[str], env: dict) -> dict:
    """Two one-thread workers on alternate clips, started together once both are warm."""
    procs = [_spawn(dict(task, clips=clips[i::2], threads=1, barrier=True), env, stdin=subprocess.PIPE)
             for i in range(2)]
    for p in procs:
        for line in p.stdout:
            if line.startswith("READY"):
                break
        else:
            raise SystemExit("worker died before it was ready")
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [_result(p) for p in procs]
    return {"wall_s": max(r["end"] for r in results) - min(r["start"] for r in results),
            "cpu_s": sum(r["cpu_s"] for r in results), "audio_s": sum(r["audio_s"] for r in results),
            "setup_s": max(r["setup_s"] for r in results), "import_s": max(r["import_s"] for r in results)}


def order_errors(a: np.ndarray, b: np.ndarray, order: np.ndarray) -> list[float]:
    """Relative L2 difference of ``a`` from ``b`` (frames x channels) per order 0, 1, 2."""
    out = []
    for o in (0, 1, 2):
        ref, got = b[:, order == o].astype(np.float64), a[:, order == o].astype(np.float64)
        out.append(float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)))
    return out


def pick_clips(n: int) -> list[str]:
    genres = sorted(p for p in GTZAN.iterdir() if p.is_dir())
    per_genre = [sorted(g.glob("*.wav")) for g in genres]
    clips = []
    for i in range(n):
        files = per_genre[i % len(genres)]
        clips.append(str(files[(i // len(genres)) % len(files)]))
    return clips


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=4, help="gtzan_mini clips for throughput and equality (default 4)")
    ap.add_argument("--long-minutes", type=float, default=60.0,
                    help="length of the file for fast's long-file peak RSS (default 60)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker(json.loads(args.worker))
        return
    if not GTZAN.is_dir():
        raise SystemExit(f"gtzan_mini not found at {GTZAN}")

    from genreseg.features.backends import raw_channel_meta
    from genreseg.features.config import FeatureConfig

    cfg = FeatureConfig()
    order = raw_channel_meta(cfg.J, cfg.Q1, cfg.Q2)["order"]
    clips = pick_clips(args.clips)
    tmp = Path(tempfile.mkdtemp(prefix="scattering-bench-"))
    env = dict(os.environ, GENRESEG_CACHE=str(tmp / "cache"))  # a cold plan cache
    load0 = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load0:.1f} at start; J={cfg.J}, Q=({cfg.Q1}, {cfg.Q2}), "
          f"hop {cfg.hop}; fast's window {cfg.window_samples} samples", flush=True)
    print(f"clips: {len(clips)} x {CLIP / SAMPLE_RATE:.1f} s: " + ", ".join(Path(c).stem for c in clips), flush=True)

    res = {}
    for backend in ("fast", "kymatio"):
        r = res[backend] = {}
        print(f"[{backend}] one process, 2 threads ...", flush=True)
        one = run_worker({"kind": "throughput", "backend": backend, "threads": 2, "clips": clips,
                          "save": str(tmp / f"{backend}.npz")}, env)
        r["setup_first"], r["imports"], r["clip_rss"] = one["setup_s"], one["import_s"], one["peak_rss_mb"]
        r["xrt_1x2"] = one["audio_s"] / (one["end"] - one["start"])
        print(f"[{backend}] two processes, 1 thread each ...", flush=True)
        two = run_two_processes({"kind": "throughput", "backend": backend}, clips, env)
        r["setup_again"] = two["setup_s"]
        r["xrt_2x1"] = two["audio_s"] / two["wall_s"]
        r["cpu_per_clip"] = two["cpu_s"] / len(clips)
        r["best"] = max(r["xrt_1x2"], r["xrt_2x1"])

    print(f"[fast] {args.long_minutes:g}-minute file, peak RSS ...", flush=True)
    long_path = str(tmp / "long.wav")
    _write_long_file(long_path, args.long_minutes, clips)
    long = run_worker({"kind": "long", "threads": 1, "path": long_path}, env)
    os.unlink(long_path)

    with np.load(tmp / "fast.npz") as f, np.load(tmp / "kymatio.npz") as k:
        errs = np.array([order_errors(f[key], k[key], order) for key in k.files])
    worst = errs.max(axis=0)

    fa, ky = res["fast"], res["kymatio"]
    rows = [
        ("setup: imports it needs (s)", f"{ky['imports']:.2f}", f"{fa['imports']:.2f}", ""),
        ("setup: first build (s)", f"{ky['setup_first']:.1f}", f"{fa['setup_first']:.2f} (cold cache)", ""),
        ("setup: build in later processes (s)", f"{ky['setup_again']:.1f} (no cache)",
         f"{fa['setup_again']:.2f} (cached)", ""),
        ("x real time, 1 process x 2 threads", f"{ky['xrt_1x2']:.1f}", f"{fa['xrt_1x2']:.1f}",
         f"{fa['xrt_1x2'] / ky['xrt_1x2']:.1f}x"),
        ("x real time, 2 processes x 1 thread", f"{ky['xrt_2x1']:.1f}", f"{fa['xrt_2x1']:.1f}",
         f"{fa['xrt_2x1'] / ky['xrt_2x1']:.1f}x"),
        ("x real time, best of the two", f"{ky['best']:.1f}", f"{fa['best']:.1f}", f"{fa['best'] / ky['best']:.1f}x"),
        ("CPU s per clip (1 thread)", f"{ky['cpu_per_clip']:.2f}", f"{fa['cpu_per_clip']:.2f}",
         f"{ky['cpu_per_clip'] / fa['cpu_per_clip']:.1f}x less"),
        ("peak RSS, one clip (MB)", f"{ky['clip_rss']:.0f}", f"{fa['clip_rss']:.0f}", ""),
        (f"peak RSS, {args.long_minutes:g}-min file, streamed (MB)", "n/a", f"{long['peak_rss_mb']:.0f}", ""),
        (f"x real time, {args.long_minutes:g}-min file (1 thread)", "n/a",
         f"{long['audio_s'] / long['seconds']:.1f}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'':{width}}  {'kymatio':>20}  {'fast':>20}  {'fast/kymatio':>12}")
    for name, a, b, c in rows:
        print(f"{name:{width}}  {a:>20}  {b:>20}  {c:>12}")
    print()
    print(f"long file: {long['frames']} frames of {long['audio_s'] / 60:.1f} min; torch loaded in that process: "
          f"{long['torch_loaded']}")
    print("max relative L2 difference fast vs kymatio over the clips (raw, before log): "
          + ", ".join(f"order {o}: {e:.1e}" for o, e in enumerate(worst)))
    print(f"load average at end {os.getloadavg()[0]:.1f} (wall-clock figures are noisy when other jobs run; "
          "CPU seconds much less so)")


if __name__ == "__main__":
    main()
