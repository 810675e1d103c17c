"""Load test of ``genreseg serve`` on loopback: latency when warm, and concurrent uploads.

Usage::

    python benchmarks/serve.py [--model DIR | --store STORE] [--clients 50] [--queue 16] [--seed 0]

Starts ``genreseg serve`` (the real command, its own process) on 127.0.0.1 and a free
port, waits for ``/health``, warms it with 3 requests, then measures, all with real
gtzan_mini audio:

* the latency of one 30-s clip (``--repeats`` sequential uploads of different clips):
  p50, p95, min and max, as a client sees it (upload + analysis + answer);
* the latency of one 4-minute song (8 clips of one genre joined into one 22050 Hz WAV,
  real music but joined: gtzan_mini has no longer tracks), ``--long-repeats`` times;
* ``--clients`` uploads of different 30-s clips sent at once: latency p50/p95 of those
  answered, throughput (answers per second over the whole burst), how many were
  refused with 503 (a full queue, the documented refusal), and any other failure,
  which makes the script exit 1;
* the server's peak RSS (``VmHWM`` of each server process).

Each figure comes with the server's CPU seconds per request (user + system of its
processes): wall time moves with whatever else shares the machine, CPU time much less;
the load average is printed before and after for the same reason.

The whole run is bounded: ``--clients`` requests at most, each with a client timeout,
and ``--deadline`` seconds for the burst. Without ``--model`` a model of the default
architecture (LSTM[512]: what inference costs does not depend on training length) is
trained for 1 epoch with 2 cross-fitting folds on the features of ``--store``
(extracted from gtzan_mini first if the store is empty) and kept in
``.genreseg-cache/`` for the next run: ~3 min the first time on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GTZAN = REPO.parent / "shared" / "data" / "gtzan_mini"


def clips() -> list:
    return sorted(GTZAN.glob("*/*.wav"))


def train_model(store: Path, out: Path, seed: int) -> Path:
    """A default-architecture model fitted briefly on gtzan_mini features (extracted if missing)."""
    from genreseg.classifier import GenreClassifier, make_frame_config
    from genreseg.datasets import load_dataset
    from genreseg.extract import extract
    from genreseg.features import FeatureConfig
    from genreseg.segments import SegmentConfig
    from genreseg.store import FeatureStore

    if (out / "model.json").exists():
        return out
    report = extract(load_dataset(GTZAN), store, FeatureConfig(), workers=2, progress=False)
    if not report.ok:
        sys.exit(f"feature extraction failed: {report.failed}")
    frame = make_frame_config("lstm", epochs=1, seed=seed, device="cpu")
    print(f"training {frame.kind.upper()}{list(frame.hidden)} for {frame.epochs} epoch on {store} ...", flush=True)
    segment = SegmentConfig(inner_folds=2, seed=seed)
    return GenreClassifier(frame, segment).fit(FeatureStore(store).load()).save(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes(pid: int) -> list:
    import psutil

    return [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True)


def peak_rss_mb(pid: int) -> dict:
    """VmHWM (peak resident set) of a process and its children, in MB."""
    out = {}
    for proc in processes(pid):
        status = Path(f"/proc/{proc.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        out[proc.pid] = kb / 1024
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    return sum(sum(p.cpu_times()[:2]) for p in processes(pid))


def percentiles(xs) -> str:
    xs = np.asarray(xs)
    if not len(xs):
        return "none"
    return (f"p50 {np.percentile(xs, 50):.2f} s  p95 {np.percentile(xs, 95):.2f} s  "
            f"min {xs.min():.2f}  max {xs.max():.2f}  (n={len(xs)})")


async def post(client, url: str, name: str, data: bytes) -> tuple[int, float, str]:
    import httpx2 as httpx

    t0 = time.perf_counter()
    try:
        r = await client.post(f"{url}/predict", files={"file": (name, data, "audio/wav")})
        detail = "" if r.status_code == 200 else r.text[:200]
        return r.status_code, time.perf_counter() - t0, detail
    except httpx.HTTPError as err:
        return -1, time.perf_counter() - t0, f"{type(err).__name__}: {err}"


async def sequential(url: str, items, timeout: float) -> list:
    import httpx2 as httpx

    async with httpx.AsyncClient(timeout=timeout) as client:
        return [await post(client, url, name, data) for name, data in items]


async def burst(url: str, items, timeout: float, deadline: float) -> tuple[list, float]:
    import httpx2 as httpx

    limits = httpx.Limits(max_connections=len(items), max_keepalive_connections=len(items))
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        t0 = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(post(client, url, n, d) for n, d in items)), deadline)
        return results, time.perf_counter() - t0


def check(results, what: str) -> list:
    """Latencies of the answered requests; exit 1 on any failure but a 503."""
    bad = [(code, detail) for code, _, detail in results if code not in (200, 503)]
    if bad:
        print(f"FAILED: {len(bad)} {what} request(s) failed otherwise than by 503: {bad[:5]}")
        sys.exit(1)
    return [t for code, t, _ in results if code == 200]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="model directory (default: train one, see above)")
    ap.add_argument("--store", type=Path, default=REPO / ".genreseg-cache" / "bench-store",
                    help="feature store to train on when no --model is given")
    ap.add_argument("--clients", type=int, default=50, help="concurrent uploads of the burst (default 50)")
    ap.add_argument("--queue", type=int, help="the server's --queue (default: its own default)")
    ap.add_argument("--workers", type=int, default=1, help="the server's --workers (default 1)")
    ap.add_argument("--repeats", type=int, default=20, help="sequential 30-s clips timed (default 20)")
    ap.add_argument("--long-repeats", type=int, default=5, help="sequential 4-minute songs timed (default 5)")
    ap.add_argument("--deadline", type=float, default=600, help="seconds the burst may take (default 600)")
    ap.add_argument("--seed", type=int, default=0, help="training seed and choice of clips (default 0)")
    args = ap.parse_args(argv)
    if not GTZAN.is_dir():
        sys.exit(f"real audio not found at {GTZAN}")
    import soundfile as sf

    rng = np.random.default_rng(args.seed)
    all_clips = clips()
    model = args.model or train_model(args.store, REPO / ".genreseg-cache" / f"bench-model-seed{args.seed}",
                                      args.seed)

    order = rng.permutation(len(all_clips))
    short = [(all_clips[i].name, all_clips[i].read_bytes()) for i in order]
    genre = all_clips[order[0]].parent
    song = np.concatenate([sf.read(p, dtype="float32")[0] for p in sorted(genre.glob("*.wav"))[:8]])
    buf = io.BytesIO()
    sf.write(buf, song, 22050, format="WAV", subtype="PCM_16")
    long_item = (f"{genre.name}-4min.wav", buf.getvalue())

    port = free_port()
    cmd = [sys.executable, "-m", "genreseg", "serve", str(model), "--port", str(port), "--workers",
           str(args.workers)] + (["--queue", str(args.queue)] if args.queue else [])
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx2 as httpx

        t0 = time.perf_counter()
        while True:
            if server.poll() is not None:
                sys.exit(f"server exited: {server.stderr.read()}")
            try:
                health = httpx.get(f"{url}/health").json()
                break
            except httpx.TransportError:
                time.sleep(0.2)
        print(f"server up in {time.perf_counter() - t0:.1f} s (queue {health['queue']['size']}, "
              f"{args.workers} worker(s)); load average {os.getloadavg()[0]:.2f}", flush=True)
        check(asyncio.run(sequential(url, short[:3], 120)), "warm-up")

        cpu = cpu_seconds(server.pid)
        lat = check(asyncio.run(sequential(url, short[:args.repeats], 120)), "30-s clip")
        cpu, per = cpu_seconds(server.pid), (cpu_seconds(server.pid) - cpu) / len(lat)
        print(f"one 30-s clip, warm:     {percentiles(lat)}; server CPU {per:.2f} s per clip", flush=True)
        lat = check(asyncio.run(sequential(url, [long_item] * args.long_repeats, 300)), "4-minute song")
        cpu, per = cpu_seconds(server.pid), (cpu_seconds(server.pid) - cpu) / len(lat)
        print(f"one {len(song) / 22050 / 60:.1f}-minute song, warm: {percentiles(lat)}; server CPU {per:.2f} s "
              f"per song", flush=True)

        items = [short[i % len(short)] for i in range(args.clients)]
        results, wall = asyncio.run(burst(url, items, 300, args.deadline))
        lat = check(results, "burst")
        cpu = cpu_seconds(server.pid) - cpu
        rejected = sum(code == 503 for code, _, _ in results)
        print(f"{args.clients} concurrent 30-s clips: {len(lat)} answered, {rejected} refused with 503, "
              f"0 other failures, in {wall:.1f} s")
        print(f"  latency of those answered: {percentiles(lat)}")
        print(f"  throughput: {len(lat) / wall:.2f} answers/s ({30 * len(lat) / wall:.0f} s of audio per s); "
              f"server CPU {cpu:.1f} s for the burst")
        rss = peak_rss_mb(server.pid)
        print("server peak RSS: " + ", ".join(f"pid {p} {mb:.0f} MB" for p, mb in rss.items())
              + f" (total {sum(rss.values()):.0f} MB)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
