"""The speed targets of one pass from file to answer, side by side with a reference commit.

Usage::

    python benchmarks/speed.py --model MODEL [--ref COMMIT] [--files 8] [--work DIR] [--skip-kymatio]

Real music throughout: the inputs are gtzan_mini clips joined and encoded by LAME at
192 kb/s, 44.1 kHz stereo (:mod:`genreseg.encode`), made once in ``--work``: a 30-s
clip, a 10-minute file, a 60-minute mix and ``--files`` 3-minute songs. Each figure
is measured for the working tree and, with ``--ref``, for that commit (checked out
with ``git worktree`` and put first on ``PYTHONPATH``, same virtual environment), one
after the other in the same run:

* **service**, warm: the app of ``genreseg serve`` in process (FastAPI's test client:
  multipart upload, analysis, JSON answer), 3 warm-up uploads, then ``--repeats``
  uploads of the 30-s MP3 (p50, p95) and 3 of the 10-minute MP3 (median);
* **cold predict**: ``genreseg predict MODEL clip.mp3`` as a new process, 5 times
  (median, min, max), and the seconds its imports take (``python -X importtime``);
* **segment**: ``genreseg segment MODEL mix60.mp3`` as a new process: x real time
  (start-up included) and peak RSS (``/usr/bin/time``'s maximum resident set);
* **extract**: ``genreseg extract --workers 2`` of the 3-minute songs into a fresh
  store: x real time, and the same with ``--backend kymatio`` (the reference
  implementation; working tree only, ``--skip-kymatio`` leaves it out).

The targets (issue #20) are printed beside the figures. Wall times move with whatever
else runs on the machine: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

TARGETS = {"service_p50_s": 0.3, "service_p95_s": 0.6, "service_10min_s": 5.0, "cold_predict_s": 1.0,
           "segment_x_real_time": 100.0, "segment_peak_mb": 600.0, "extract_x_real_time": 200.0}


# --------------------------------------------------------------------------- inputs
def make_inputs(work: Path, n_files: int) -> dict:
    """The benchmark's MP3s (made once, then reused)."""
    from audio_corpus import source_signal
    from conftest import GTZAN

    from genreseg.encode import Encoding, write_audio

    mp3 = Encoding("libmp3lame", "mp3", bit_rate=192_000)
    clips = sorted(GTZAN.glob("*/*.wav"))
    rng = np.random.default_rng(0)
    work.mkdir(parents=True, exist_ok=True)
    songs = work / "songs"
    songs.mkdir(exist_ok=True)
    paths = {"clip": work / "clip30.mp3", "ten": work / "song10min.mp3", "mix": work / "mix60min.mp3"}
    wanted = {"clip": 30.0, "ten": 600.0, "mix": 3600.0}
    for name, path in paths.items():
        if not path.exists():
            order = rng.permutation(len(clips))
            write_audio(path, source_signal([clips[i] for i in order], 44100, 2, wanted[name]), 44100, mp3)
    for i in range(n_files):
        path = songs / f"song{i:03d}.mp3"
        if not path.exists():
            pick = rng.choice(len(clips), 8, replace=False)
            write_audio(path, source_signal([clips[j] for j in pick], 44100, 2, 180.0), 44100, mp3)
    return {**paths, "songs": songs, "n_songs": n_files}


# --------------------------------------------------------------------------- children
def service_child(model: str, clip: str, ten: str, repeats: int) -> None:
    """In a fresh process: upload latency through the service app; prints JSON."""
    from fastapi.testclient import TestClient

    from genreseg.service import ServeConfig, create_app

    def post(client, path):
        t0 = time.perf_counter()
        r = client.post("/predict", files={"file": (Path(path).name, Path(path).read_bytes(), "audio/mpeg")})
        assert r.status_code == 200, r.text
        return time.perf_counter() - t0

    with TestClient(create_app(model, ServeConfig(max_duration_s=7200, max_upload_mb=200))) as client:
        for _ in range(3):
            post(client, clip)
        short = [post(client, clip) for _ in range(repeats)]
        long = [post(client, ten) for _ in range(3)]
    print(json.dumps({"service_p50_s": float(np.percentile(short, 50)), "service_p95_s": float(np.percentile(short, 95)),
                      "service_min_s": min(short), "service_10min_s": statistics.median(long),
                      "service_10min_all_s": long}))


def run_side(tree: Path | None, model: str, inputs: dict, repeats: int, kymatio: bool) -> dict:
    """Every figure for one source tree (``None``: the working tree)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")
    py = [sys.executable]
    cli = py + ["-m", "genreseg.cli"]
    out: dict = {}

    res = subprocess.run(py + [__file__, "--service-child", model, str(inputs["clip"]), str(inputs["ten"]), str(repeats)],
                         env=env, capture_output=True, text=True, check=True)
    out.update(json.loads(res.stdout.strip().splitlines()[-1]))

    cold = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(cli + ["predict", model, str(inputs["clip"])], env=env, capture_output=True, check=True)
        cold.append(time.perf_counter() - t0)
    out.update(cold_predict_s=statistics.median(cold), cold_predict_min_s=min(cold), cold_predict_max_s=max(cold))
    res = subprocess.run(py + ["-X", "importtime", "-m", "genreseg.cli", "predict", model, str(inputs["clip"])],
                         env=env, capture_output=True, text=True, check=True)
    top = {}
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() and not parts[2].startswith("  ") and parts[1].strip().isdigit():
            top[parts[2].strip()] = int(parts[1]) / 1e6
    out["imports_s"] = round(sum(top.values()), 3)
    out["heaviest_imports"] = dict(sorted(top.items(), key=lambda kv: -kv[1])[:4])

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = subprocess.run(["/usr/bin/time", "-f", "%M"] + cli + ["segment", model, str(inputs["mix"]), "--quiet",
                                                                  "--format", "json"],
                             env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        out.update(segment_x_real_time=3600.0 / wall, segment_peak_mb=int(res.stderr.strip().splitlines()[-1]) / 1024)

        backends = ["fast"] + (["kymatio"] if kymatio else [])
        for backend in backends:
            store = Path(tmp) / f"store-{backend}"
            t0 = time.perf_counter()
            subprocess.run(cli + ["extract", str(inputs["songs"]), "--layout", "folders", "--out", str(store),
                                  "--workers", "2", "--quiet"] + ([] if backend == "fast" else ["--backend", backend]),
                           env=env, capture_output=True, check=True)
            key = "extract_x_real_time" if backend == "fast" else f"extract_{backend}_x_real_time"
            out[key] = inputs["n_songs"] * 180.0 / (time.perf_counter() - t0)
    return out


def _songs_as_dataset(songs: Path) -> None:
    """``extract`` reads a folder per label: the songs sit in one label folder."""
    folder = songs / "mix"
    folder.mkdir(exist_ok=True)
    for p in songs.glob("*.mp3"):
        p.rename(folder / p.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a trained model directory, or 'msd'")
    ap.add_argument("--ref", help="reference commit to compare with (e.g. the commit before a change)")
    ap.add_argument("--files", type=int, default=8, help="3-minute MP3s to extract (default 8)")
    ap.add_argument("--repeats", type=int, default=20, help="timed uploads of the 30-s clip (default 20)")
    ap.add_argument("--work", type=Path, default=REPO / ".genreseg-cache" / "speed-bench")
    ap.add_argument("--skip-kymatio", action="store_true", help="leave the kymatio extraction out")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here too")
    ap.add_argument("--service-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.service_child:
        model, clip, ten, repeats = args.service_child
        service_child(model, clip, ten, int(repeats))
        return
    if not args.model:
        ap.error("--model is required")
    inputs = make_inputs(args.work, args.files)
    if list(inputs["songs"].glob("*.mp3")):
        _songs_as_dataset(inputs["songs"])
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    sides = {"working tree": None}
    worktree = None
    if args.ref:
        worktree = Path(tempfile.mkdtemp(prefix="genreseg-ref-"))
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.ref],
                       check=True, capture_output=True)
        sides = {f"ref {args.ref}": worktree, **sides}
    results = {}
    try:
        for name, tree in sides.items():
            print(f"measuring {name} ...", flush=True)
            results[name] = run_side(tree, args.model, inputs, args.repeats, kymatio=tree is None and not args.skip_kymatio)
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    keys = list(TARGETS) + ["cold_predict_min_s", "cold_predict_max_s", "imports_s", "extract_kymatio_x_real_time"]
    print("| figure | target | " + " | ".join(results) + " |")
    print("|---|---|" + "---|" * len(results))
    for key in keys:
        vals = [results[n].get(key) for n in results]
        if all(v is None for v in vals):
            continue
        cells = [f"{v:.3g}" if isinstance(v, float) else "-" for v in vals]
        print(f"| {key} | {TARGETS.get(key, '')} | " + " | ".join(cells) + " |")
    for name, r in results.items():
        print(f"\n{name}: heaviest imports of a cold predict (s): {r['heaviest_imports']}")
    if args.out:
        args.out.write_text(json.dumps({"results": results, "targets": TARGETS, "ref": args.ref}, indent=2))


if __name__ == "__main__":
    main()
