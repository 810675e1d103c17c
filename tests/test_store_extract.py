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


# ---------------------------------------------------------------------------------------
# Two datasets in one store; the CPUs the workers get


def test_two_datasets_sharing_a_store_keep_their_rows(tmp_path):
    """``blues/a.wav`` under two roots is two tracks: neither row overwrites the other."""
    from genreseg.datasets import load_folders

    roots = []
    for name, index in (("one", 0), ("two", 1)):
        root = tmp_path / name
        (root / "blues").mkdir(parents=True)
        (root / "blues" / "a.wav").symlink_to(gtzan_clip("blues", index))
        roots.append(root)
    store_dir = tmp_path / "s"
    for root in roots:
        assert extract(load_folders(root), store_dir, FeatureConfig(), workers=0, progress=False).ok
    rows = FeatureStore(store_dir).rows()
    assert [r["track_id"] for r in rows] == ["blues/a.wav", "blues/a.wav"]
    assert sorted(r["path"] for r in rows) == sorted(str(root.absolute() / "blues" / "a.wav") for root in roots)
    assert len({r["key"] for r in rows}) == 2
    # A rerun of the first dataset replaces its own row and leaves the other's alone.
    report = extract(load_folders(roots[0]), store_dir, workers=0, progress=False)
    assert len(report.cached) == 1
    def ids(rows):
        return [(r["track_id"], r["path"], r["key"]) for r in rows]

    assert ids(FeatureStore(store_dir).rows()) == ids(rows)
    # The first dataset moved (same audio, same id, another folder): its row follows it.
    moved = tmp_path / "moved"
    roots[0].rename(moved)
    extract(load_folders(moved), store_dir, workers=0, progress=False)
    paths = sorted(r["path"] for r in FeatureStore(store_dir).rows())
    assert paths == sorted([str(moved.absolute() / "blues" / "a.wav"), str(roots[1].absolute() / "blues" / "a.wav")])


def test_a_changed_file_replaces_its_row(tmp_path):
    """Same track_id and path, new content: the later row wins (no stale duplicate)."""
    store = FeatureStore(tmp_path / "s", FeatureConfig())
    for key in ("k1", "k2", "k3"):
        store.entry_path(key).write_bytes(b"")  # rows() lists rows whose entry exists
    row = {"track_id": "blues/a.wav", "path": "/data/blues/a.wav", "label": "blues"}
    store.append_rows([dict(row, key="k1"), dict(row, key="k2"),
                       dict(row, key="k3", path="/other/blues/a.wav")])
    assert [(r["path"], r["key"]) for r in store.rows()] == [("/data/blues/a.wav", "k2"),
                                                              ("/other/blues/a.wav", "k3")]


def test_worker_threads_follow_the_cpus_this_process_may_use(tmp_path, monkeypatch):
    """Threads per worker come from the affinity mask, not from os.cpu_count()."""
    import dask.distributed

    import genreseg.extract as extract_module
    from genreseg.runtime import usable_cpus

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert usable_cpus() == 6

    handed: list = []

    class Future:
        def __init__(self, item):
            self.item = item

        def result(self):
            return {"track_id": self.item["track_id"], "path": self.item["path"], "status": "failed",
                    "error": "not run"}

    class Client:
        def __init__(self, cluster):
            pass

        def submit(self, fn, item, store_root, config_dict, threads, pure=True):
            handed.append(threads)
            return Future(item)

        def close(self):
            pass

    class Cluster:
        def close(self):
            pass

    monkeypatch.setattr(extract_module, "local_cluster", lambda n: Cluster())
    monkeypatch.setattr(dask.distributed, "Client", Client)
    monkeypatch.setattr(dask.distributed, "as_completed", lambda futures: list(futures))
    tracks = [{"path": str(tmp_path / f"{i}.wav"), "label": "x", "track_id": f"{i}.wav"} for i in range(2)]
    for workers, want in ((1, 6), (2, 3), (4, 1), (12, 1)):
        handed.clear()
        extract(tracks, tmp_path / "s", FeatureConfig(), workers=workers, progress=False)
        assert handed == [want, want], (workers, handed)
