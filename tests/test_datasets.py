"""Tests of genreseg.datasets: layouts and manifests (the splits are in test_splits.py).

Real data comes from ``../shared/data`` (see its README): the ISMIR 2004 metadata files
and the gtzan_mini clips. The only hard-coded expectations are what that README states.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from genreseg.datasets import (
    ISMIR2004_SPLITS,
    Track,
    detect_layout,
    label_counts,
    load_csv,
    load_dataset,
    load_folders,
    load_ismir2004,
    read_csv_manifest,
    read_dataset,
    read_folders,
    read_ismir2004,
    read_ismir2004_tracklist,
)
from genreseg.errors import DatasetError
from genreseg.splits import artist_kfold_splits, official_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ISMIR_META = DATA / "ismir2004_metadata"
GTZAN = DATA / "gtzan_mini"

# From ../shared/data/README.md: the paper's Table 1, per split.
ISMIR_CLASSES = ("classical", "electronic", "jazz_blues", "metal_punk", "rock_pop", "world")
README_COUNTS = {
    "training": dict(zip(ISMIR_CLASSES, (320, 115, 26, 45, 101, 122))),
    "development": dict(zip(ISMIR_CLASSES, (320, 114, 26, 45, 102, 122))),
}
README_ROWS = 729
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")

needs_ismir = pytest.mark.skipif(not ISMIR_META.is_dir(), reason=f"{ISMIR_META} not present")
needs_gtzan = pytest.mark.skipif(not GTZAN.is_dir(), reason=f"{GTZAN} not present")


def touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def gtzan_clip(i: int = 0) -> Path:
    return sorted((GTZAN / "blues").glob("*.wav"))[i]


def check_partition(splits, n: int) -> None:
    """Each pair is disjoint and covers everything; test parts partition range(n)."""
    all_test = np.concatenate([test for _, test in splits])
    assert sorted(all_test.tolist()) == list(range(n))
    for train, test in splits:
        assert train.dtype.kind == "i" and test.dtype.kind == "i"
        assert np.intersect1d(train, test).size == 0
        assert np.union1d(train, test).tolist() == list(range(n))


# ---------------------------------------------------------------------------------------
# ISMIR 2004: the real metadata


@needs_ismir
@pytest.mark.parametrize("split", ["training", "development"])
def test_ismir_counts_match_readme(split):
    rows = read_ismir2004_tracklist(ISMIR_META / split / "tracklist.csv")
    assert len(rows) == README_ROWS
    counts = {}
    for row in rows:
        counts[row.label] = counts.get(row.label, 0) + 1
    assert counts == README_COUNTS[split]


@needs_ismir
def test_ismir_evaluation_has_no_header_and_an_id_column():
    rows = read_ismir2004_tracklist(ISMIR_META / "evaluation" / "tracklist.csv")
    assert len(rows) == README_ROWS
    # The first line is a track, not a header swallowed by name.
    assert rows[0].line == 1
    assert rows[0].label in ISMIR_CLASSES
    assert rows[0].file_path.endswith(".mp3")
    assert {r.label for r in rows} == set(ISMIR_CLASSES)
    assert all(r.id is not None and r.id.isdigit() for r in rows)
    assert len({r.id for r in rows}) == len(rows)


@needs_ismir
def test_ismir_headers_map_columns_in_both_spellings():
    training = read_ismir2004_tracklist(ISMIR_META / "training" / "tracklist.csv")
    development = read_ismir2004_tracklist(ISMIR_META / "development" / "tracklist.csv")
    # The header is not a track, and "file_path" / "file path" both reach file_path.
    for rows in (training, development):
        assert rows[0].line == 2
        assert all(r.file_path.endswith(".mp3") and r.id is None for r in rows)
    # README: development has anonymised artists and flat file names.
    assert all(r.artist.startswith("artist_") and "/" not in r.file_path for r in development)
    # README: 72 training paths carry an apostrophe.
    assert sum("'" in r.file_path for r in training) == 72


def test_tracklist_header_found_by_content_not_position(tmp_path):
    # Reordered header columns, quoted cells with commas and apostrophes.
    body = (
        '"file path","class","artist","album","track","track number"\n'
        '"a/b\'s, c.mp3","jazz_blues","o\'neil, j","al","t, 1","3"\n'
    )
    path = touch(tmp_path / "training" / "tracklist.csv", body.encode())
    (row,) = read_ismir2004_tracklist(path)
    assert (row.label, row.artist, row.title, row.number) == ("jazz_blues", "o'neil, j", "t, 1", "3")
    assert row.file_path == "a/b's, c.mp3"
    # The same data without header, in positional order, is read by position.
    headerless = '"jazz_blues","o\'neil, j","al","t, 1","3","a/b\'s, c.mp3"\n'
    path2 = touch(tmp_path / "development" / "tracklist.csv", headerless.encode())
    (row2,) = read_ismir2004_tracklist(path2)
    assert (row2.label, row2.file_path, row2.line) == (row.label, row.file_path, 1)


def test_tracklist_errors_name_file_and_line(tmp_path):
    short = touch(tmp_path / "short.csv", b'"rock_pop","a","b","c","1","x.mp3"\n"rock_pop","a"\n')
    with pytest.raises(DatasetError, match=r"short\.csv: line 2 has 2 columns"):
        read_ismir2004_tracklist(short)
    empty = touch(tmp_path / "empty.csv", b"\n")
    with pytest.raises(DatasetError, match=r"empty\.csv: tracklist is empty"):
        read_ismir2004_tracklist(empty)
    with pytest.raises(DatasetError, match="tracklist not found"):
        read_ismir2004_tracklist(tmp_path / "nope.csv")


@pytest.fixture
def ismir_tree(tmp_path):
    """A collection root: the real metadata and three training tracks as linked gtzan clips.

    One track is stored under its listed name, one apostrophe track as listed, one
    apostrophe track with the apostrophe written as ``_``.
    """
    if not (ISMIR_META.is_dir() and GTZAN.is_dir()):
        pytest.skip("shared data not present")
    root = tmp_path / "ismir2004"
    shutil.copytree(ISMIR_META, root / "metadata")
    rows = read_ismir2004_tracklist(ISMIR_META / "training" / "tracklist.csv")
    plain = next(r for r in rows if "'" not in r.file_path)
    apostrophes = [r for r in rows if "'" in r.file_path]
    as_listed, underscored = apostrophes[0], apostrophes[-1]
    audio = root / "audio" / "training"
    stored = {
        plain.file_path: plain.file_path,
        as_listed.file_path: as_listed.file_path,
        underscored.file_path: underscored.file_path.replace("'", "_"),
    }
    for i, name in enumerate(stored.values()):
        link = audio / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(gtzan_clip(i))
    return root, rows, stored


def test_ismir_apostrophe_lookup_both_ways(ismir_tree):
    root, rows, stored = ismir_tree
    result = read_ismir2004(root, splits=["training"])
    assert len(result.tracks) == 3
    assert len(result.missing) == len(rows) - 3
    by_id = {t.track_id: t for t in result.tracks}
    assert set(by_id) == {f"training/{listed}" for listed in stored}
    for listed, on_disk in stored.items():
        track = by_id[f"training/{listed}"]
        assert track.path == root.absolute() / "audio" / "training" / on_disk
        assert track.path.is_file()
        assert track.split == "training"
        row = next(r for r in rows if r.file_path == listed)
        assert (track.label, track.artist) == (row.label, row.artist)
    # Tracks keep the tracklist's order.
    order = [r.file_path for r in rows if r.file_path in stored]
    assert [t.track_id for t in result.tracks] == [f"training/{p}" for p in order]


def test_ismir_missing_audio_raises_one_error_by_default(ismir_tree):
    root, rows, _ = ismir_tree
    with pytest.raises(DatasetError) as info:
        load_ismir2004(root, splits=["training"])
    message = str(info.value)
    assert "\n" not in message
    assert f"{len(rows) - 3} of {len(rows)}" in message
    first_missing = read_ismir2004(root, splits=["training"]).missing[0]
    assert first_missing.track_id in message
    assert str(root / "audio") in message


def test_ismir_skip_and_auto_layout(ismir_tree):
    root, _, stored = ismir_tree
    assert detect_layout(root) == "ismir2004"
    tracks = load_dataset(root, missing="skip", splits=["training"])
    assert sorted(t.track_id for t in tracks) == sorted(f"training/{p}" for p in stored)
    assert load_ismir2004(root, splits=["training"], missing="skip") == tracks
    assert load_ismir2004(root, splits="training", missing="skip") == tracks
    # All splits by default: development and evaluation audio is absent here.
    result = read_dataset(root)
    assert len(result.tracks) == 3
    assert {t.split for t in result.missing} == set(ISMIR2004_SPLITS)


def test_ismir_metadata_and_audio_overrides(ismir_tree, tmp_path):
    root, _, stored = ismir_tree
    moved = tmp_path / "elsewhere"
    shutil.move(str(root / "audio"), moved)
    tracks = load_ismir2004(metadata_dir=root / "metadata", audio_dir=moved, splits=["training"], missing="skip")
    assert len(tracks) == len(stored)
    assert all(t.path.is_relative_to(moved) for t in tracks)
    with pytest.raises(DatasetError, match="metadata_dir and audio_dir"):
        load_ismir2004(metadata_dir=root / "metadata")
    with pytest.raises(DatasetError, match="unknown ISMIR 2004 split 'test'"):
        load_ismir2004(root, splits=["test"])
    with pytest.raises(DatasetError, match="missing="):
        load_ismir2004(root, missing="ignore")


@needs_ismir
def test_ismir_official_split_is_the_papers_table(tmp_path):
    # No audio: every listed track is "missing", which still carries label and split.
    listed = read_ismir2004(metadata_dir=ISMIR_META, audio_dir=tmp_path).missing
    ((train, test),) = official_split([t.split for t in listed])
    assert label_counts([listed[i] for i in train]) == README_COUNTS["training"]
    assert label_counts([listed[i] for i in test]) == README_COUNTS["development"]
    assert {listed[i].split for i in train} == {"training"}
    assert {listed[i].split for i in test} == {"development"}
    with pytest.raises(DatasetError, match="no track in split 'nope'"):
        official_split([t.split for t in listed], test="nope")


@needs_ismir
def test_artist_folds_on_real_training_artists(tmp_path):
    listed = read_ismir2004(metadata_dir=ISMIR_META, audio_dir=tmp_path, splits=["training"]).missing
    splits = artist_kfold_splits([t.label for t in listed], [t.artist for t in listed], k=5, seed=0)
    assert len(splits) == 5
    check_partition(splits, len(listed))
    for train, test in splits:
        assert not {listed[i].artist for i in train} & {listed[i].artist for i in test}


# ---------------------------------------------------------------------------------------
# Folders layout


@needs_gtzan
def test_folders_on_gtzan_mini():
    tracks = load_folders(GTZAN)
    assert len(tracks) == 100
    assert label_counts(tracks) == {g: 10 for g in GTZAN_GENRES}
    assert [t.track_id for t in tracks] == sorted(t.track_id for t in tracks)
    for t in tracks:
        assert t.path.is_file() and t.path.is_absolute()
        assert t.path.parent.name == t.label
        assert t.track_id == f"{t.label}/{t.path.name}"
        assert t.split is None and t.artist is None
    assert load_folders(GTZAN) == tracks
    assert detect_layout(GTZAN) == "folders"
    assert load_dataset(GTZAN) == tracks


def test_folders_three_labels_nested(tmp_path, monkeypatch):
    root = tmp_path / "coll"
    touch(root / "Zydeco" / "b.wav")
    touch(root / "Zydeco" / "a.FLAC")
    touch(root / "ambient" / "live" / "2001" / "deep.Mp3")
    touch(root / "ambient" / "x.aiff")
    touch(root / "ambient" / ".hidden.wav")
    touch(root / "ambient" / ".cache" / "c.wav")
    touch(root / "ambient" / "notes.txt")
    touch(root / "ambient" / "cover.jpg")
    touch(root / "noise" / "n.au")
    (root / "empty_label").mkdir()
    touch(root / "top_level.wav")  # under no label folder
    touch(root / ".git" / "objects" / "z.wav")
    monkeypatch.chdir(tmp_path)
    tracks = load_folders("coll")  # relative root: paths still come back absolute
    assert [t.track_id for t in tracks] == [
        "Zydeco/a.FLAC",
        "Zydeco/b.wav",
        "ambient/live/2001/deep.Mp3",
        "ambient/x.aiff",
        "noise/n.au",
    ]
    assert label_counts(tracks) == {"Zydeco": 2, "ambient": 2, "noise": 1}
    assert tracks[2].label == "ambient"
    assert all(t.path.is_absolute() and t.path.is_file() for t in tracks)


def test_folders_list_what_they_pass_over_with_the_reason(tmp_path):
    root = tmp_path / "coll"
    for name in ("a.M4A", "b.opus", "c.wma", "d.Ogg", "e.webm", "f.aac"):
        touch(root / "pop" / name)
    touch(root / "pop" / "cover.jpg")
    touch(root / "pop" / ".DS_Store")
    touch(root / "pop" / ".thumbs" / "x.wav")
    touch(root / "index.html")
    (root / "pop" / "gone.mp3").symlink_to(tmp_path / "deleted.mp3")
    result = read_folders(root)
    assert [t.track_id for t in result.tracks] == [f"pop/{n}" for n in ("a.M4A", "b.opus", "c.wma", "d.Ogg",
                                                                       "e.webm", "f.aac")]
    assert {os.path.relpath(p, root): reason for p, reason in result.skipped} == {
        "pop/cover.jpg": "not an audio file name (.jpg)",
        "pop/.DS_Store": "hidden file",
        "pop/.thumbs": "hidden folder",
        "index.html": "not in a label folder",
        "pop/gone.mp3": "dangling symbolic link",
    }
    assert read_dataset(root).skipped == result.skipped


def test_folders_follow_linked_folders_without_looping(tmp_path):
    root = tmp_path / "coll"
    touch(root / "jazz" / "a.wav")
    (root / "jazz" / "loop").symlink_to(root / "jazz")
    (root / "blues").mkdir()
    (root / "blues" / "linked").symlink_to(tmp_path / "outside")
    touch(tmp_path / "outside" / "o.ogg")
    result = read_folders(root)
    assert [t.track_id for t in result.tracks] == ["blues/linked/o.ogg", "jazz/a.wav"]
    assert [(os.path.relpath(p, root), r.split(" (")[0]) for p, r in result.skipped] == [
        ("jazz/loop", f"folder already searched as {root / 'jazz'}")]


def test_folders_name_unreadable_folders(tmp_path, monkeypatch):
    root = tmp_path / "coll"
    touch(root / "jazz" / "a.wav")
    (root / "jazz" / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("locked"):  # root reads mode-000 folders: simulate a user who cannot
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = read_folders(root)
    assert [t.track_id for t in result.tracks] == ["jazz/a.wav"]
    assert result.skipped == ((str(root / "jazz" / "locked"), "unreadable folder (Permission denied)"),)


def test_folders_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_folders(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: no audio files"):
        load_folders(tmp_path / "empty")
    touch(tmp_path / "textonly" / "rock" / "readme.txt")
    touch(tmp_path / "textonly" / "loose.wav")
    with pytest.raises(DatasetError, match="no audio files"):
        load_dataset(tmp_path / "textonly")
    touch(tmp_path / "file.wav")
    with pytest.raises(DatasetError, match="folder or a .csv"):
        load_dataset(tmp_path / "file.wav")


# ---------------------------------------------------------------------------------------
# CSV manifests


def write_manifest(path: Path, text: str) -> Path:
    return touch(path, text.encode())


def test_csv_relative_paths_and_column_order(tmp_path, monkeypatch):
    base = tmp_path / "ds"
    touch(base / "audio" / "one.wav")
    touch(base / "audio" / "two.wav")
    outside = touch(tmp_path / "abs" / "three.wav")
    manifest = write_manifest(
        base / "list.csv",
        "artist,label,path,split\n"
        "Ann,rock,audio/one.wav,train\n"
        f",jazz,./audio/two.wav,\n"
        f"Bo,rock,{outside},test\n",
    )
    monkeypatch.chdir(tmp_path / "abs")  # relative to the manifest, not the cwd
    tracks = load_csv(manifest)
    assert [t.track_id for t in tracks] == ["audio/one.wav", "audio/two.wav", outside.as_posix()]
    assert [t.label for t in tracks] == ["rock", "jazz", "rock"]
    assert [t.split for t in tracks] == ["train", None, "test"]
    assert [t.artist for t in tracks] == ["Ann", None, "Bo"]
    assert all(t.path.is_file() for t in tracks)
    assert detect_layout(manifest) == "csv"
    assert load_dataset(manifest) == tracks
    ((train, test),) = official_split([t.split for t in tracks], train="train", test="test")
    assert (train.tolist(), test.tolist()) == ([0], [2])


def test_csv_required_columns_only(tmp_path):
    touch(tmp_path / "a.wav")
    manifest = write_manifest(tmp_path / "m.csv", 'label,path\n"pop, dance","a.wav"\n')
    (track,) = load_csv(manifest)
    assert (track.label, track.split, track.artist, track.track_id) == ("pop, dance", None, None, "a.wav")
    with pytest.raises(DatasetError, match="no track in split 'training'"):
        official_split([track.split])


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("path,label,genre\na.wav,x,y\n", r"m\.csv: unknown column 'genre'"),
        ("path,split\na.wav,x\n", r"m\.csv: header lacks the 'label' column"),
        ("path,label,label\na.wav,x,y\n", r"column 'label' appears twice"),
        ("path,label\na.wav,rock\nb.wav, \n", r"m\.csv: line 3 has an empty label"),
        ("path,label\n,rock\n", r"line 2 has an empty path"),
        ("path,label\na.wav,rock,extra\n", r"line 2 has 3 cells, the header has 2"),
        ("path,label\na.wav,rock\n./a.wav,jazz\n", r"line 3 repeats the path of line 2"),
        ("path,label\n", r"header but no tracks"),
        ("", r"manifest is empty"),
    ],
)
def test_csv_errors(tmp_path, text, pattern):
    touch(tmp_path / "a.wav")
    touch(tmp_path / "b.wav")
    manifest = write_manifest(tmp_path / "m.csv", text)
    with pytest.raises(DatasetError, match=pattern):
        load_csv(manifest)


def test_csv_missing_files(tmp_path):
    touch(tmp_path / "here.wav")
    manifest = write_manifest(tmp_path / "m.csv", "path,label\nhere.wav,a\ngone1.wav,b\ngone2.wav,b\n")
    with pytest.raises(DatasetError, match=r"m\.csv: 2 of 3 listed audio files not found \(first: gone1\.wav"):
        load_csv(manifest)
    assert [t.track_id for t in load_csv(manifest, missing="skip")] == ["here.wav"]
    result = read_csv_manifest(manifest)
    assert [t.track_id for t in result.missing] == ["gone1.wav", "gone2.wav"]
    assert result.missing[0].path == tmp_path / "gone1.wav"
    with pytest.raises(DatasetError, match="manifest not found"):
        load_csv(tmp_path / "none.csv")


def test_load_dataset_rejects_unknown_layout_and_options(tmp_path):
    touch(tmp_path / "rock" / "a.wav")
    with pytest.raises(DatasetError, match="unknown layout 'gtzan'"):
        load_dataset(tmp_path, layout="gtzan")
    with pytest.raises(DatasetError, match="takes no option 'splits'"):
        load_dataset(tmp_path, layout="folders", splits=["training"])
    assert [t.label for t in load_dataset(tmp_path, layout="folders")] == ["rock"]


def test_track_defaults_and_label_counts():
    t = Track(path="/x/rock/a.wav", label="rock")
    assert isinstance(t.path, Path) and t.track_id == "/x/rock/a.wav"
    with pytest.raises(AttributeError):
        t.label = "pop"  # frozen
    tracks = [t, Track(path="/x/b.wav", label="blues"), Track(path="/x/c.wav", label="rock")]
    counts = label_counts(tracks)
    assert counts == {"blues": 1, "rock": 2}
    assert list(counts) == ["blues", "rock"]

