"""Shared fixtures: real audio from ../shared/data/gtzan_mini and its features.

The features of all 100 clips are extracted once per test session through the real
pipeline (Dask, two workers) into a temporary store. Set ``GENRESEG_TEST_STORE`` to a
directory to keep that store between sessions while developing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
GTZAN = SHARED / "gtzan_mini"
ISMIR_METADATA = SHARED / "ismir2004_metadata"


def gtzan_clip(genre: str = "blues", index: int = 0) -> Path:
    """The ``index``-th clip (sorted) of a genre; GTZAN numbering has gaps in gtzan_mini."""
    return sorted((GTZAN / genre).glob("*.wav"))[index]


def gtzan_tracks(per_genre: int | None = None) -> list[dict]:
    """Track dicts (path, label, track_id) of gtzan_mini, optionally the first few per genre."""
    tracks = []
    for genre_dir in sorted(p for p in GTZAN.iterdir() if p.is_dir()):
        files = sorted(genre_dir.glob("*.wav"))[:per_genre]
        tracks += [{"path": str(f), "label": genre_dir.name, "track_id": f"{genre_dir.name}/{f.name}"}
                   for f in files]
    return tracks


#: Debian's Chromium, which the browser test drives through Playwright.
CHROMIUM = os.environ.get("GENRESEG_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

#: On CI (``CI`` set, as .ci/run runs) nothing may be skipped for want of data or of the
#: browser: a missing piece fails the session at once instead of passing silently.
IN_CI = bool(os.environ.get("CI"))


def pytest_configure(config):
    if not IN_CI:
        return
    missing = [str(p) for p in (GTZAN, ISMIR_METADATA) if not p.is_dir()]
    if missing:
        raise pytest.UsageError(f"CI must run every test on real data, but {', '.join(missing)} is missing")
    if not CHROMIUM:
        raise pytest.UsageError("CI must run the browser test, but Chromium is not installed "
                                "(apt-get install -y chromium, as .ci/run does)")


requires_gtzan = pytest.mark.skipif(not GTZAN.is_dir(), reason=f"real audio not found at {GTZAN}")


@pytest.fixture(scope="session")
def gtzan_store(tmp_path_factory):
    """A FeatureStore holding the default features of all gtzan_mini clips."""
    if not GTZAN.is_dir():
        pytest.skip(f"real audio not found at {GTZAN}")
    from genreseg.extract import extract
    from genreseg.features import FeatureConfig
    from genreseg.store import FeatureStore

    root = os.environ.get("GENRESEG_TEST_STORE") or tmp_path_factory.mktemp("gtzan_store")
    report = extract(gtzan_tracks(), root, FeatureConfig(), workers=2, progress=False)
    assert report.ok, report.failed
    return FeatureStore(root)


@pytest.fixture(scope="session")
def gtzan_features(gtzan_store):
    """FeatureSet of all 100 gtzan_mini clips: .sequences, .labels, .label_names, .track_ids."""
    return gtzan_store.load()


# ---------------------------------------------------------------------- the service (genreseg serve)
@pytest.fixture(scope="session")
def serve_model(gtzan_features):
    """A small real model (DNN[32], 2 epochs, one SVM setting) fitted on all gtzan_mini clips.

    For the service's tests, which check what is served, not how accurate it is (~15 s to fit).
    """
    from genreseg.classifier import GenreClassifier, make_frame_config
    from genreseg.segments import SegmentConfig

    frame = make_frame_config("dnn", hidden=(32,), epochs=2, seed=0, device="cpu")
    segment = SegmentConfig(inner_folds=2, cv_folds=2, C_grid=(1.0,), gamma_grid=(1.0,))
    return GenreClassifier(frame, segment).fit(gtzan_features)


@contextlib.contextmanager
def live_server(app):
    """Serve an ASGI app with uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # log_config=None: uvicorn's records reach the root logger, so caplog sees them
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture()
def one_torch_thread():
    """torch on one intra-op thread for the test, restored afterwards: the tests' models are
    tiny, and extra threads only add synchronisation (10-20x on a busy 2-core machine, measured)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
