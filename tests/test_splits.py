"""Tests of genreseg.splits: evaluation protocols over label, artist, split-name and content-key arrays.

The folds of the data without replicas are frozen in ``data/folds_330f1a8.json`` (made by
the Track-based split functions of ``genreseg.datasets`` at commit 330f1a8): the move to
arrays, and the replica handling, must not move a single track of them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from test_datasets import check_partition  # a sibling test module

from genreseg.datasets import load_dataset, load_folders
from genreseg.errors import DatasetError
from genreseg.splits import (
    artist_kfold_splits,
    first_copies,
    inner_splitter,
    kfold_splits,
    make_splits,
    official_split,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GTZAN = DATA / "gtzan_mini"
FROZEN = Path(__file__).parent / "data" / "folds_330f1a8.json"
ROOTS = {"gtzan_mini": GTZAN, "homburg3": DATA / "homburg3" / "manifest.csv"}

needs_data = pytest.mark.skipif(not all(p.exists() for p in ROOTS.values()), reason=f"{DATA} not present")


def synthetic(per_label: dict[str, int], artists_per_label: int | None = None):
    """Labels and artists (None without artists_per_label) of a made-up collection."""
    labels, artists = [], []
    for label, n in per_label.items():
        for i in range(n):
            labels.append(label)
            artists.append(None if artists_per_label is None else f"{label}-artist{i % artists_per_label}")
    return labels, artists


def label_count(labels, idx) -> dict:
    held = [labels[i] for i in idx]
    return {label: held.count(label) for label in sorted(set(held))}


# ---------------------------------------------------------------------------------------
# The folds are those of the Track-based functions at 330f1a8


@needs_data
@pytest.mark.parametrize("name", sorted(ROOTS))
def test_folds_equal_the_frozen_folds_of_330f1a8(name):
    frozen = json.loads(FROZEN.read_text())["datasets"][name]
    tracks = load_dataset(ROOTS[name])
    ids = "\n".join(t.track_id for t in tracks).encode()
    assert hashlib.sha256(ids).hexdigest() == frozen["track_ids_sha256"]  # same tracks, same order
    labels, artists = [t.label for t in tracks], [t.artist for t in tracks]
    distinct = [f"content-{i}" for i in range(len(tracks))]  # no replicas: must change nothing
    assert len(frozen["folds"]) >= 6
    for case, want in frozen["folds"].items():
        protocol, k, seed = case.split()
        k, seed = int(k[2:]), int(seed[5:])
        for replicas in (None, distinct):
            got = make_splits(labels, protocol, k, seed, artists=artists, replicas=replicas)
            assert [test.tolist() for _, test in got] == want, (case, replicas is None)
            check_partition(got, len(tracks))


# ---------------------------------------------------------------------------------------
# Identical audio stays on one side


def test_first_copies():
    assert first_copies(["a", "b", "a", "c", "b"]).tolist() == [0, 1, 0, 3, 1]
    assert first_copies(list("xyz")).tolist() == [0, 1, 2]


def _side_of(splits, n):
    """For each fold, 1 where a track is in test, 0 in train, -1 in neither."""
    sides = np.full((len(splits), n), -1)
    for f, (train, test) in enumerate(splits):
        sides[f, train], sides[f, test] = 0, 1
    return sides


def test_kfold_keeps_replicas_together():
    labels, _ = synthetic({"a": 30, "b": 20, "c": 15})
    n = len(labels)
    rng = np.random.default_rng(0)
    keys = [f"h{i}" for i in range(n)]
    # A dozen exact copies, some across labels, some triplets (GTZAN has both kinds).
    copies = rng.choice(n, size=(12, 2), replace=False)
    for src, dst in copies:
        keys[dst] = keys[src]
    keys[copies[0][1]] = keys[copies[1][1]] = keys[copies[2][0]]
    for seed in range(5):
        plain = kfold_splits(labels, 5, seed)
        split = kfold_splits(labels, 5, seed, replicas=keys)
        check_partition(split, n)
        sides = _side_of(split, n)
        for key in set(keys):
            members = [i for i in range(n) if keys[i] == key]
            assert (sides[:, members] == sides[:, members[:1]]).all(), (seed, key, members)
        # Only copies moved: every first copy keeps its plain fold.
        plain_sides = _side_of(plain, n)
        firsts = np.unique(first_copies(keys))
        assert (sides[:, firsts] == plain_sides[:, firsts]).all()
    # The unprotected split does separate some of these copies (so the test can fail).
    sides = _side_of(kfold_splits(labels, 5, 0), n)
    assert any((sides[:, src] != sides[:, dst]).any() for src, dst in copies)


def test_artist_kfold_keeps_replicas_together_across_artists():
    labels, artists = synthetic({"a": 24, "b": 24}, artists_per_label=6)
    n = len(labels)
    keys = [f"h{i}" for i in range(n)]
    # The same recording under two artists (a compilation credited twice).
    keys[30] = keys[1]
    keys[47] = keys[8]
    for seed in range(4):
        split = artist_kfold_splits(labels, artists, 4, seed, replicas=keys)
        check_partition(split, n)
        for train, test in split:
            assert not {artists[i] for i in train} & {artists[i] for i in test}
            assert not {keys[i] for i in train} & {keys[i] for i in test}
    # Without the link the two artists can be split apart.
    assert any(
        {artists[1], artists[30]} & {artists[i] for i in train} and {artists[1], artists[30]} & {artists[i] for i in test}
        for seed in range(4) for train, test in artist_kfold_splits(labels, artists, 4, seed))


def test_official_split_leaves_copies_of_training_audio_out_of_test():
    names = ["training"] * 4 + ["development"] * 4 + ["evaluation"]
    keys = ["a", "b", "c", "d", "a", "e", "d", "f", "b"]
    ((train, test),) = official_split(names, replicas=keys)
    assert (train.tolist(), test.tolist()) == ([0, 1, 2, 3], [5, 7])
    ((train, test),) = official_split(names)
    assert test.tolist() == [4, 5, 6, 7]
    with pytest.raises(DatasetError, match="every track of 'development' is a copy"):
        official_split(names[:6], replicas=["a", "b", "c", "d", "a", "b"])


@pytest.mark.skipif(not GTZAN.is_dir(), reason=f"{GTZAN} not present")
def test_kfold_on_real_replicas(tmp_path):
    """Real copies: a gtzan_mini clip linked under a second name, keyed by its content hash."""
    from genreseg.audio import content_hash

    for genre in ("blues", "jazz", "rock"):
        (tmp_path / genre).mkdir()
        clips = sorted((GTZAN / genre).glob("*.wav"))[:6]
        for clip in clips:
            (tmp_path / genre / clip.name).symlink_to(clip)
        (tmp_path / genre / "copy.wav").symlink_to(clips[0])  # GTZAN-style exact replica
    tracks = load_folders(tmp_path)
    keys = [content_hash(t.path) for t in tracks]
    assert len(set(keys)) == len(keys) - 3
    for seed in range(3):
        for train, test in make_splits([t.label for t in tracks], "kfold", 3, seed, replicas=keys):
            assert not {keys[i] for i in train} & {keys[i] for i in test}


# ---------------------------------------------------------------------------------------
# Protocols (moved from test_datasets.py, now over arrays)


@pytest.mark.skipif(not GTZAN.is_dir(), reason=f"{GTZAN} not present")
def test_kfold_is_stratified_complete_and_deterministic():
    labels = [t.label for t in load_folders(GTZAN)]
    splits = kfold_splits(labels, k=5, seed=3)
    assert len(splits) == 5
    check_partition(splits, len(labels))
    for _, test in splits:
        # 10 clips per genre over 5 folds: exactly 2 of each in every test fold.
        assert label_count(labels, test) == {g: 2 for g in set(labels)}
    again = kfold_splits(labels, k=5, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))
    other = kfold_splits(labels, k=5, seed=4)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(splits, other))
    # The documented recipe: sklearn's StratifiedKFold(shuffle=True, random_state=seed).
    from sklearn.model_selection import StratifiedKFold

    y = np.array(labels)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=3).split(y, y)
    assert all(np.array_equal(test, ours[1]) for (_, test), ours in zip(folds, splits))


def test_kfold_too_few_tracks_names_the_label():
    labels, _ = synthetic({"common": 10, "rare": 2})
    with pytest.raises(DatasetError, match=r"label 'rare' has only 2 tracks, fewer than k=3"):
        kfold_splits(labels, k=3, seed=0)
    assert len(kfold_splits(labels, k=2, seed=0)) == 2
    for bad_k in (1, 0, 2.5, True):
        with pytest.raises(DatasetError, match="at least 2"):
            kfold_splits(labels, k=bad_k, seed=0)
    with pytest.raises(DatasetError, match="no tracks"):
        kfold_splits([], k=2, seed=0)
    with pytest.raises(DatasetError, match="replicas: 3 values for 12 tracks"):
        kfold_splits(labels, k=2, seed=0, replicas=["a", "b", "c"])


def test_artist_kfold_never_shares_an_artist():
    labels, artists = synthetic({"a": 30, "b": 20, "c": 12}, artists_per_label=4)
    for seed in (0, 1):
        splits = artist_kfold_splits(labels, artists, k=4, seed=seed)
        assert len(splits) == 4
        check_partition(splits, len(labels))
        for train, test in splits:
            assert not {artists[i] for i in train} & {artists[i] for i in test}
            # Four artists per label over four folds: every label is in every test fold.
            assert {labels[i] for i in test} == {"a", "b", "c"}
    again = artist_kfold_splits(labels, artists, k=4, seed=1)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(splits, again))


def test_artist_kfold_errors():
    labels, artists = synthetic({"a": 6, "b": 6}, artists_per_label=2)
    with pytest.raises(DatasetError, match="only 4 distinct artists, fewer than k=5"):
        artist_kfold_splits(labels, artists, k=5, seed=0)
    with pytest.raises(DatasetError, match=r"1 of 12 tracks have no artist \(first: track 11\)"):
        artist_kfold_splits(labels, artists[:-1] + [None], k=2, seed=0)
    # Copies linking every artist leave fewer groups than folds.
    with pytest.raises(DatasetError, match="only 1 groups of artists"):
        artist_kfold_splits(labels, artists, k=2, seed=0, replicas=["same"] * 12)


def test_make_splits_dispatches():
    labels, artists = synthetic({"a": 12, "b": 9}, artists_per_label=3)
    for protocol, direct in (("kfold", lambda: kfold_splits(labels, 3, 7)),
                             ("artist-kfold", lambda: artist_kfold_splits(labels, artists, 3, 7))):
        got = make_splits(labels, protocol, k=3, seed=7, artists=artists)
        want = direct()
        assert len(got) == len(want) == 3
        assert all(np.array_equal(g[0], w[0]) and np.array_equal(g[1], w[1]) for g, w in zip(got, want))
    names = [("training", "development")[i % 2] for i in range(6)]
    ((train, test),) = make_splits(["a"] * 6, "official", split_names=names)
    assert (train.tolist(), test.tolist()) == ([0, 2, 4], [1, 3, 5])
    with pytest.raises(DatasetError, match="no track in split 'training'"):
        make_splits(["a"] * 6, "official")
    with pytest.raises(DatasetError, match="have no artist"):
        make_splits(labels, "artist-kfold", k=3)
    with pytest.raises(DatasetError, match="unknown protocol 'loo'"):
        make_splits(labels, "loo")


def test_official_split_errors():
    with pytest.raises(DatasetError, match=r"no track in split 'development' \(splits present: training\)"):
        official_split(["training"])
    with pytest.raises(DatasetError, match="both 'training'"):
        official_split(["training"], test="training")


# ---------------------------------------------------------------------------------------
# Inner folds (cross-fitting)


def test_inner_splitter_reduces_k_to_smallest_class():
    labels = np.array([0] * 9 + [1] * 3 + [2] * 6)
    folds = list(inner_splitter(labels, 5, 0).split(np.zeros(len(labels)), labels))
    assert len(folds) == 3
    check_partition([(np.sort(tr), np.sort(te)) for tr, te in folds], len(labels))
    for _, test in folds:
        assert np.bincount(labels[test]).tolist() == [3, 1, 2]
    even = np.array([0, 1] * 10)
    assert inner_splitter(even, 4, 1).get_n_splits() == 4
    # A class of one track cannot be stratified: plain shuffled folds still separate tracks.
    single = np.array([0, 0, 0, 1])
    splitter = inner_splitter(single, 3, 0)
    assert type(splitter).__name__ == "KFold" and splitter.get_n_splits() == 3
    with pytest.raises(DatasetError, match="at least 2"):
        inner_splitter(labels, 1, 0)
