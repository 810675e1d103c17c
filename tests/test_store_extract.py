"""Feature store and extraction: atomic entries, manifest, resume after a kill, batch failures, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import gtzan_clip, requires_gtzan
from genreseg.cli import main as cli_main
from genreseg.errors import StoreError
from genreseg.extract import extract
from genreseg.features import FeatureConfig
from genreseg.store import FeatureStore

pytestmark = requires_gtzan


def make_dataset(root: Path, per_genre=(("blues", 2), ("reggae", 2)), bad=True) -> Path:
    for genre, n in per_genre:
        (root / genre).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            src = gtzan_clip(genre, i)
            (root / genre / src.name).symlink_to(src)
    if bad:
        (root / "blues" / "broken.wav").write_text("not audio")
    return root


def test_store_roundtrip_and_config_check(tmp_path):
    data = make_dataset(tmp_path / "data", (("pop", 1),), bad=False)
    report = extract([{"path": p, "label": "pop", "track_id": p.name} for p in (data / "pop").iterdir()],
                     tmp_path / "s", FeatureConfig(), workers=0, progress=False)
    assert report.ok and len(report.computed) == 1
    store = FeatureStore(tmp_path / "s")
    row = store.rows()[0]
    feats = store.read(row["key"])
    assert feats.data.shape == (row["n_frames"], len(feats.channels["order"]))
    assert feats.info["source_path"].endswith(".wav") and feats.info["duration"] > 29
    assert row["key"].endswith(FeatureConfig().hash)
    with pytest.raises(StoreError, match="not .*use another store"):
        FeatureStore(tmp_path / "s", FeatureConfig(J=13))
    with pytest.raises(StoreError, match="no feature store"):
        FeatureStore(tmp_path / "nowhere")
    # a tampered entry is refused, not half-read
    store.entry_path(row["key"]).write_bytes(b"garbage")
    with pytest.raises(StoreError, match="corrupt store entry"):
        store.read(row["key"])


def test_torn_manifest_line_is_skipped(tmp_path):
    data = make_dataset(tmp_path / "data", (("pop", 1),), bad=False)
    tracks = [{"path": p, "label": "pop", "track_id": p.name} for p in (data / "pop").iterdir()]
    extract(tracks, tmp_path / "s", FeatureConfig(), workers=0, progress=False)
    with open(tmp_path / "s" / "manifest.jsonl", "a") as fh:
        fh.write('{"track_id": "half-writ')
    assert len(FeatureStore(tmp_path / "s").rows()) == 1


def test_batch_goes_on_past_bad_files_and_cli_reports_them(tmp_path, capsys):
    data = make_dataset(tmp_path / "data")
    code = cli_main(["extract", str(data), "--out", str(tmp_path / "s"), "--workers", "0", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert "1 file(s) failed" in captured.err and "broken.wav: not audio or corrupt" in captured.err
    store = FeatureStore(tmp_path / "s")
    assert len(store.rows()) == 4
    assert cli_main(["info", str(tmp_path / "s"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tracks"] == 4 and info["labels"] == {"blues": 2, "reggae": 2}
    # a second run recomputes nothing
    report = extract([{"path": r["path"], "label": r["label"], "track_id": r["track_id"]} for r in store.rows()],
                     tmp_path / "s", workers=0, progress=False)
    assert len(report.cached) == 4 and not report.computed


def test_killed_run_resumes_without_recomputing(tmp_path):
    data = make_dataset(tmp_path / "data", (("blues", 2), ("reggae", 2), ("metal", 2)))
    store_dir = tmp_path / "s"
    cmd = [sys.executable, "-m", "genreseg", "extract", str(data), "--out", str(store_dir),
           "--workers", "0", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    entries = store_dir / "entries"
    deadline = time.time() + 300
    while time.time() < deadline and (not entries.exists() or len(list(entries.glob("*.npz"))) < 2):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in entries.glob("*.npz")}
    assert 2 <= len(done_before) < 6, "the kill should land mid-run"
    for p in entries.glob("*.npz"):  # every entry that exists is whole
        with np.load(p, allow_pickle=False) as z:
            assert np.isfinite(z["data"]).all()

    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 1  # broken.wav still fails, and says so
    assert "broken.wav" in rerun.stderr
    store = FeatureStore(store_dir)
    assert len(store.rows()) == 6
    after = {p.name: p.stat().st_mtime_ns for p in entries.glob("*.npz")}
    assert all(after[name] == mtime for name, mtime in done_before.items()), "finished entries were recomputed"
    assert not any((store_dir / "tmp").iterdir()) if (store_dir / "tmp").exists() else True
    assert not list(entries.glob("*.part"))


def test_local_cluster_workers_keep_glibcs_malloc_defaults():
    # Dask's default MALLOC_TRIM_THRESHOLD_ halves the transform's speed in its
    # workers (every large array a fresh mmap); local_cluster unsets it.
    import os

    from dask.distributed import Client

    from genreseg.extract import local_cluster

    with local_cluster(1) as cluster, Client(cluster) as client:
        seen = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert list(seen.values()) == [None]
