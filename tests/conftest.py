"""Shared fixtures: real audio from ../shared/data/gtzan_mini and its features.

The features of all 100 clips are extracted once per test session through the real
pipeline (Dask, two workers) into a temporary store. Set ``GENRESEG_TEST_STORE`` to a
directory to keep that store between sessions while developing.
"""

from __future__ import annotations

import os
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
