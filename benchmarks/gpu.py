"""Training and feature throughput on a GPU (or, small, on the CPU so that CI keeps it working).

Usage::

    python benchmarks/gpu.py [--device auto] [--size ismir|small] [--epochs 2] [--out results.json]

* **Training**, in frames per second of one epoch (the mean over ``--epochs``, and the
  spread): DNN(1024), LSTM(512) with torch's cell and LSTM(512) with the paper's
  peephole cell, each with the default recipe's batching, on ISMIR-2004-sized data:
  729 tracks of ~650 frames (``--size ismir``), each built by joining the scattering
  frames of 8 gtzan_mini clips of one label (real features; ISMIR 2004's audio is not
  shipped). ``--size small`` (default on a CPU): 40 tracks of ~160 frames.
* **Features**: ``compute_features`` of gtzan_mini clips on the device, one clip at a
  time as the pipeline runs them, in x real time.

The store of gtzan_mini features is made once in ``.genreseg-cache/gpu-store``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "gtzan_mini"
SIZES = {"ismir": (729, 8), "small": (40, 2)}  # tracks, clips joined per track


def joined_tracks(features, n_tracks: int, clips_per_track: int, seed: int = 0):
    """``n_tracks`` sequences, each the frames of ``clips_per_track`` clips of one label."""
    rng = np.random.default_rng(seed)
    by_label = {lab: np.flatnonzero(features.labels == lab) for lab in np.unique(features.labels)}
    labels = rng.choice(sorted(by_label), n_tracks)
    seqs = [np.concatenate([features.sequences[i] for i in rng.choice(by_label[lab], clips_per_track)])
            for lab in labels]
    return seqs, labels.astype(np.int64)


def training_rates(seqs, labels, n_classes: int, device: str, epochs: int) -> dict:
    from genreseg.models import default_preset, train_frame_model

    frames = sum(len(s) for s in seqs)
    models = {"dnn-1024": default_preset("dnn").replace(hidden=(1024,)),
              "lstm-512 torch cell": default_preset("lstm").replace(hidden=(512,), cell="torch"),
              "lstm-512 peephole cell": default_preset("lstm").replace(hidden=(512,), cell="peephole")}
    out = {}
    for name, config in models.items():
        config = config.replace(epochs=epochs, device=device, valid_fraction=0.0, patience=0, seed=0)
        model = train_frame_model(seqs, labels, n_classes, config, progress=False)
        seconds = model.history["seconds"]
        rates = [frames / s for s in seconds]
        out[name] = {"frames_per_s": statistics.mean(rates), "min": min(rates), "max": max(rates),
                     "epochs": len(rates)}
        print(f"  {name:<24} {out[name]['frames_per_s']:>10,.0f} frames/s (min {min(rates):,.0f}, "
              f"max {max(rates):,.0f}; {frames} frames, {len(rates)} epochs)", flush=True)
    return out


def feature_rate(device: str, n_clips: int) -> dict:
    from genreseg.audio import load_audio
    from genreseg.features import FeatureConfig, compute_features

    config = FeatureConfig(device=device)
    clips = [load_audio(p) for p in sorted(DATA.glob("*/*.wav"))[:n_clips]]
    compute_features(clips[0], 22050, config)  # plans, kernels, allocations
    t0 = time.perf_counter()
    for x in clips:
        compute_features(x, 22050, config)
    seconds = time.perf_counter() - t0
    rate = sum(len(x) for x in clips) / 22050 / seconds
    print(f"  features on {device}: {rate:,.0f}x real time ({n_clips} clips one at a time)", flush=True)
    return {"x_real_time": rate, "clips": n_clips}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    ap.add_argument("--size", choices=sorted(SIZES), help="ismir (729 x ~650 frames) or small; default: "
                                                          "ismir on a GPU, small on the CPU")
    ap.add_argument("--epochs", type=int, default=2, help="epochs timed per model (default 2)")
    ap.add_argument("--clips", type=int, default=8, help="clips for the feature rate (default 8)")
    ap.add_argument("--store", type=Path, default=REPO / ".genreseg-cache" / "gpu-store")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = ap.parse_args()

    import torch

    from genreseg.runtime import resolve_device
    from genreseg.store import FeatureStore

    device = resolve_device(args.device)
    size = args.size or ("ismir" if device.startswith("cuda") else "small")
    if not args.store.exists():
        subprocess.run([sys.executable, "-m", "genreseg.cli", "extract", str(DATA), "--out", str(args.store),
                        "--quiet"], check=True)
    features = FeatureStore(args.store).load()
    n_tracks, per_track = SIZES[size]
    seqs, labels = joined_tracks(features, n_tracks, per_track)
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    print(f"device {device} ({name}), size {size}: {len(seqs)} tracks, "
          f"{np.mean([len(s) for s in seqs]):.0f} frames each, {seqs[0].shape[1]} features", flush=True)
    results = {"device": device, "device_name": name, "size": size, "torch": torch.__version__,
               "training": training_rates(seqs, labels, len(features.label_names), device, args.epochs),
               "features": feature_rate(device, args.clips)}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
