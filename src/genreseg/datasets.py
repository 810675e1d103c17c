"""Datasets: list the tracks of a collection and split them for evaluation.

Three on-disk layouts are understood, each read by a ``load_<layout>`` function that
returns a list of :class:`Track`:

``folders``
    One folder per label, as GTZAN ships: ``root/<label>/.../<file>``.
``ismir2004``
    The ISMIR 2004 genre contest collection: ``root/metadata/<split>/tracklist.csv``
    and the audio under ``root/audio/<split>/<file_path>``.
``csv``
    A manifest with a header naming the columns ``path``, ``label`` and optionally
    ``split`` and ``artist``.

:func:`load_dataset` picks the layout on its own (``layout="auto"``). Listing layouts
can name audio that is not on disk; the ``read_*`` functions return those tracks
beside the found ones (:class:`LoadResult`), and the ``load_*`` wrappers either raise
(``missing="error"``, the default) or leave them out (``missing="skip"``).

Evaluation protocols return lists of ``(train_indices, test_indices)`` pairs of
integer arrays over the track list: :func:`official_split`, :func:`kfold_splits`,
:func:`artist_kfold_splits`, dispatched by :func:`make_splits`.

Every failure raises :class:`genreseg.errors.DatasetError` with a one-line message,
``"<path>: <reason>"`` where a file or folder is at fault.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from .audio import AUDIO_EXTENSIONS, is_audio_path
from .errors import DatasetError

__all__ = [
    "ISMIR2004_SPLITS",
    "LAYOUTS",
    "PROTOCOLS",
    "LoadResult",
    "Track",
    "TracklistRow",
    "artist_kfold_splits",
    "detect_layout",
    "find_audio_files",
    "inner_folds",
    "kfold_splits",
    "label_counts",
    "load_csv",
    "load_dataset",
    "list_dataset",
    "load_folders",
    "read_folders",
    "load_ismir2004",
    "make_splits",
    "official_split",
    "read_csv_manifest",
    "read_dataset",
    "read_ismir2004",
    "read_ismir2004_tracklist",
]

#: The ISMIR 2004 splits, in the order they are listed. The paper's train set is
#: ``training`` and its test set is ``development``.
ISMIR2004_SPLITS = ("training", "development", "evaluation")

LAYOUTS = ("auto", "folders", "ismir2004", "csv")
PROTOCOLS = ("official", "kfold", "artist-kfold")
MISSING_POLICIES = ("error", "skip")

#: How many missing files an error message names before it says "...".
_MAX_NAMED = 3

Split = tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------------------
# Tracks


@dataclass(frozen=True)
class Track:
    """One audio file of a collection and what is known about it.

    Parameters
    ----------
    path : Path
        Where the audio is (or, for a missing track, where it was expected).
    label : str
        The class (genre) of the track.
    split : str or None
        The collection's own split (ISMIR 2004: ``"training"``, ``"development"``,
        ``"evaluation"``), or None.
    artist : str or None
        The artist, used for artist-filtered folds; None when unknown.
    track_id : str
        A stable id: the path relative to the dataset root, POSIX style. Defaults to
        ``path`` in POSIX style when not given.
    """

    path: Path
    label: str
    split: str | None = None
    artist: str | None = None
    # A default keeps hand-made tracks (tests, scripts) short; loaders always set it.
    track_id: str = ""

    def __post_init__(self) -> None:
        # Frozen: coerce through object.__setattr__ so str paths behave like Paths.
        object.__setattr__(self, "path", Path(self.path))
        if not self.track_id:
            object.__setattr__(self, "track_id", self.path.as_posix())


class LoadResult(NamedTuple):
    """Tracks found on disk, listed tracks whose audio was not found, and files passed over.

    ``skipped`` holds ``(path, reason)`` pairs for files a folder holds that are not
    taken as tracks (not audio by name, dangling links, hidden files, files outside any
    label folder), so that a caller can say what it left out.
    """

    tracks: list[Track]
    missing: list[Track]
    skipped: tuple = ()


def label_counts(tracks: Iterable[Track]) -> dict[str, int]:
    """Number of tracks per label, keys sorted by label.

    Parameters
    ----------
    tracks : iterable of Track

    Returns
    -------
    dict of str to int
    """
    counts = Counter(t.label for t in tracks)
    return {label: counts[label] for label in sorted(counts)}


def _check_missing_policy(missing: str) -> None:
    if missing not in MISSING_POLICIES:
        raise DatasetError(f"missing={missing!r}: expected one of {', '.join(MISSING_POLICIES)}")


def _apply_missing_policy(result: LoadResult, where: Path, missing: str) -> LoadResult:
    """Raise for missing audio unless the caller asked to skip it.

    One error for the whole collection (not one per file) so a user sees the size of
    the problem at once: a wrong audio folder shows up as "729 of 729".
    """
    _check_missing_policy(missing)
    if missing == "error" and result.missing:
        n_missing = len(result.missing)
        n_listed = n_missing + len(result.tracks)
        # track_id, not the full path: ``where`` already names the folder.
        named = ", ".join(t.track_id for t in result.missing[:_MAX_NAMED])
        more = ", ..." if n_missing > _MAX_NAMED else ""
        raise DatasetError(
            f"{where}: {n_missing} of {n_listed} listed audio files not found "
            f"(first: {named}{more}); pass missing='skip' to leave them out"
        )
    return result


def _existing_dir(path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: {what} does not exist")
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} is not a folder")
    return path


# ---------------------------------------------------------------------------------------
# Layout: one folder per label


def _audio_files(folder: Path, skipped: list) -> Iterator[Path]:
    """Audio files anywhere under ``folder``; what is passed over goes to ``skipped``.

    Symlinked folders are followed (collections are often assembled from links), but
    each real folder is visited once so a link loop cannot recurse forever. Audio is
    recognised by extension, in any case (:data:`genreseg.audio.AUDIO_EXTENSIONS`).
    """
    seen: set[str] = set()

    def unreadable(err: OSError) -> None:
        skipped.append((err.filename, f"unreadable folder ({err.strerror})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            skipped.append((dirpath, f"folder already searched as {real} (a link loop or a second link)"))
            dirnames[:] = []
            continue
        seen.add(real)
        for name in sorted(d for d in dirnames if d.startswith(".")):
            skipped.append((os.path.join(dirpath, name), "hidden folder"))
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            reason = _skip_reason(full)
            if reason:
                skipped.append((full, reason))
            else:
                yield Path(full)


def find_audio_files(folder) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files anywhere under ``folder`` (sorted), and ``(path, reason)`` for the rest.

    The search a collection folder gets (:func:`read_folders`), for commands that take
    a folder of unlabelled files.
    """
    skipped: list = []
    return sorted(_audio_files(Path(folder), skipped)), skipped


def _skip_reason(path: str) -> str | None:
    """Why a file in a collection folder is not a track, or None when it is one."""
    name = os.path.basename(path)
    if name.startswith("."):
        return "hidden file"
    if not is_audio_path(name):
        return f"not an audio file name ({os.path.splitext(name)[1] or 'no extension'})"
    if os.path.islink(path) and not os.path.exists(path):
        return "dangling symbolic link"
    if not os.path.isfile(path):
        return "not a regular file"
    return None


def read_folders(root) -> LoadResult:
    """Tracks of a collection laid out as one folder per label (GTZAN's layout).

    Every non-hidden folder directly under ``root`` is a label; every audio file
    anywhere below it (nested folders included) belongs to that label. Everything else
    (files directly under ``root``, hidden files and folders, files that are not audio
    by name, dangling links) is returned in ``skipped`` with the reason.

    Parameters
    ----------
    root : path-like
        The collection folder.

    Returns
    -------
    LoadResult
        ``tracks`` sorted by ``track_id`` (``"<label>/<relative path>"``), so the order
        does not depend on the file system; ``missing`` empty.

    Raises
    ------
    DatasetError
        ``root`` is not a folder, or holds no audio in any label folder.
    """
    root = Path(_existing_dir(root, "dataset folder")).absolute()
    tracks, skipped = [], []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            skipped.append((str(entry), "hidden " + ("folder" if entry.is_dir() else "file")))
            continue
        if not entry.is_dir():
            skipped.append((str(entry), "not in a label folder"))
            continue
        for path in _audio_files(entry, skipped):
            track_id = path.relative_to(root).as_posix()
            tracks.append(Track(path=path, label=entry.name, track_id=track_id))
    if not tracks:
        raise DatasetError(f"{root}: no audio files in any label folder <root>/<label>/ "
                           f"({len(skipped)} other files; audio is {' '.join(AUDIO_EXTENSIONS)})")
    return LoadResult(sorted(tracks, key=lambda t: t.track_id), [], tuple(skipped))


def load_folders(root) -> list[Track]:
    """The tracks of :func:`read_folders` (what it passes over is not reported)."""
    return read_folders(root).tracks


# ---------------------------------------------------------------------------------------
# Layout: ISMIR 2004 genre contest


@dataclass(frozen=True)
class TracklistRow:
    """One row of an ISMIR 2004 ``tracklist.csv``.

    ``id`` is the seventh column of the evaluation list, None elsewhere. ``line`` is the
    line number in the file, for error messages.
    """

    label: str
    artist: str
    album: str
    title: str
    number: str
    file_path: str
    id: str | None
    line: int


# Positional columns of a headerless tracklist (the evaluation list), and the names a
# header may use for them. Names are compared after _column_key().
_TRACKLIST_COLUMNS = ("class", "artist", "album", "track", "track_number", "file_path", "id")


def _column_key(name: str) -> str:
    """Normalise a header cell: the development list spells ``file path`` with a space."""
    return "_".join(name.strip().lower().replace("_", " ").split())


def _is_tracklist_header(row: Sequence[str]) -> bool:
    # By content, not by split name: a header names both the class and the file path
    # columns; a data row holds a class value and an ``.mp3`` path instead.
    keys = {_column_key(cell) for cell in row}
    return {"class", "file_path"} <= keys


def read_ismir2004_tracklist(path) -> list[TracklistRow]:
    """Parse one ISMIR 2004 ``tracklist.csv``.

    The three lists of the collection differ: ``training`` has a quoted header with a
    ``file_path`` column, ``development`` a header with ``file path`` (a space), and
    ``evaluation`` no header and a seventh, numeric id column. A header is recognised by
    its content (it names ``class`` and ``file_path``); a headerless file is read by
    position.

    Parameters
    ----------
    path : path-like
        The ``tracklist.csv`` file.

    Returns
    -------
    list of TracklistRow
        In file order.

    Raises
    ------
    DatasetError
        The file cannot be read, has no rows, or a row has too few columns or an empty
        class or file path.
    """
    path = Path(path)
    numbered = _read_csv(path, "tracklist")

    if _is_tracklist_header(numbered[0][1]):
        keys = [_column_key(c) for c in numbered[0][1]]
        # Columns this parser does not know are ignored: the contest lists carry
        # extra bookkeeping columns, and only class and file path are essential.
        index = {name: keys.index(name) for name in _TRACKLIST_COLUMNS if name in keys}
        numbered = numbered[1:]
    else:
        index = {name: i for i, name in enumerate(_TRACKLIST_COLUMNS)}

    # The id column is optional (only the evaluation list has it); the others are not.
    needed = max(i for name, i in index.items() if name != "id") + 1
    rows = []
    for line, row in numbered:
        if len(row) < needed:
            raise DatasetError(f"{path}: line {line} has {len(row)} columns, expected at least {needed}")

        def cell(name: str, row=row) -> str:
            i = index.get(name)
            return row[i].strip() if i is not None and i < len(row) else ""

        label, file_path = cell("class"), cell("file_path")
        if not label:
            raise DatasetError(f"{path}: line {line} has an empty class")
        if not file_path:
            raise DatasetError(f"{path}: line {line} has an empty file path")
        rows.append(
            TracklistRow(
                label=label,
                artist=cell("artist"),
                album=cell("album"),
                title=cell("track"),
                number=cell("track_number"),
                file_path=file_path,
                id=cell("id") or None,
                line=line,
            )
        )
    if not rows:
        raise DatasetError(f"{path}: tracklist has a header but no tracks")
    return rows


def _read_csv(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file with their line numbers; DatasetError naming
    ``path`` and ``what`` it is ("tracklist", "manifest") when unreadable or empty."""
    try:
        # utf-8-sig: a byte-order mark would otherwise glue itself to the first cell
        # and hide the header.
        with open(path, newline="", encoding="utf-8-sig") as fh:
            numbered = [(i, row) for i, row in _csv_rows(fh) if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise DatasetError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{path}: cannot read {what} ({err})") from None
    if not numbered:
        raise DatasetError(f"{path}: {what} is empty")
    return numbered


def _csv_rows(fh) -> Iterator[tuple[int, list[str]]]:
    """csv rows with the line number each starts on (quoted fields may span lines)."""
    reader = csv.reader(fh)
    start = 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def _apostrophe_variants(file_path: str) -> list[str]:
    """Names to try for a listed file: as listed, then with ``'`` written as ``_``.

    Some copies of the ISMIR 2004 audio replaced apostrophes in file and folder names
    with underscores.
    """
    variants = [file_path]
    if "'" in file_path:
        variants.append(file_path.replace("'", "_"))
    return variants


def _find_listed_file(base: Path, file_path: str) -> Path | None:
    for variant in _apostrophe_variants(file_path):
        candidate = base.joinpath(*PurePosixPath(variant).parts)
        if candidate.is_file():
            return candidate
    return None


def _ismir2004_dirs(root, metadata_dir, audio_dir) -> tuple[Path, Path]:
    if root is None and (metadata_dir is None or audio_dir is None):
        raise DatasetError("ismir2004: give the collection root, or both metadata_dir and audio_dir")
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root}: ISMIR 2004 collection folder does not exist")
    metadata = Path(metadata_dir) if metadata_dir is not None else root / "metadata"
    audio = Path(audio_dir) if audio_dir is not None else root / "audio"
    return metadata.absolute(), audio.absolute()


def read_ismir2004(
    root=None,
    *,
    metadata_dir=None,
    audio_dir=None,
    splits: Sequence[str] | None = None,
) -> LoadResult:
    """All listed ISMIR 2004 tracks, split into found and missing.

    Never raises for missing audio: that is the wrappers' policy
    (:func:`load_ismir2004`).

    Parameters
    ----------
    root : path-like, optional
        The collection root, holding ``metadata/`` and ``audio/``.
    metadata_dir : path-like, optional
        Overrides ``root/metadata``; holds ``<split>/tracklist.csv``.
    audio_dir : path-like, optional
        Overrides ``root/audio``; holds ``<split>/<file_path>``.
    splits : str or sequence of str, optional
        Which splits to read; default all of :data:`ISMIR2004_SPLITS`.

    Returns
    -------
    LoadResult
        ``tracks`` found on disk and ``missing`` ones (``path`` = where the listed
        name was expected), each in split order, then file order. ``track_id`` is
        ``"<split>/<file_path as listed>"``, the same whichever apostrophe spelling
        the audio copy uses.

    Raises
    ------
    DatasetError
        No root and no overrides, an unknown split, or a tracklist that cannot be
        read.
    """
    metadata, audio = _ismir2004_dirs(root, metadata_dir, audio_dir)
    if isinstance(splits, str):  # splits="training" means that one split, not its letters
        splits = (splits,)
    splits = tuple(ISMIR2004_SPLITS if splits is None else splits)
    if not splits:
        raise DatasetError(f"{metadata}: no splits requested")
    unknown = [s for s in splits if s not in ISMIR2004_SPLITS]
    if unknown:
        raise DatasetError(
            f"{metadata}: unknown ISMIR 2004 split {unknown[0]!r} (expected {', '.join(ISMIR2004_SPLITS)})"
        )
    found, missing = [], []
    for split in splits:
        for row in read_ismir2004_tracklist(metadata / split / "tracklist.csv"):
            path = _find_listed_file(audio / split, row.file_path)
            track = Track(
                path=path if path is not None else audio / split / row.file_path,
                label=row.label,
                split=split,
                artist=row.artist or None,
                track_id=f"{split}/{row.file_path}",
            )
            (found if path is not None else missing).append(track)
    return LoadResult(found, missing)


def load_ismir2004(
    root=None,
    *,
    metadata_dir=None,
    audio_dir=None,
    splits: Sequence[str] | None = None,
    missing: str = "error",
) -> list[Track]:
    """Tracks of the ISMIR 2004 genre collection whose audio is on disk.

    Parameters are those of :func:`read_ismir2004`, plus ``missing``: ``"error"``
    raises one :class:`DatasetError` naming how many listed files are absent and the
    first few; ``"skip"`` leaves them out (call :func:`read_ismir2004` to get them).

    Returns
    -------
    list of Track
    """
    _check_missing_policy(missing)
    result = read_ismir2004(root, metadata_dir=metadata_dir, audio_dir=audio_dir, splits=splits)
    _, audio = _ismir2004_dirs(root, metadata_dir, audio_dir)
    return _apply_missing_policy(result, audio, missing).tracks


# ---------------------------------------------------------------------------------------
# Layout: CSV manifest

_MANIFEST_REQUIRED = ("path", "label")
_MANIFEST_OPTIONAL = ("split", "artist")


def _manifest_columns(path: Path, header: Sequence[str]) -> dict[str, int]:
    names = [cell.strip().lower() for cell in header]
    known = _MANIFEST_REQUIRED + _MANIFEST_OPTIONAL
    for name in names:
        if name not in known:
            # A typo ("lable") must not silently turn into "no label column".
            raise DatasetError(f"{path}: unknown column {name!r} in header (expected {', '.join(known)})")
    duplicated = [n for n, c in Counter(names).items() if c > 1]
    if duplicated:
        raise DatasetError(f"{path}: column {duplicated[0]!r} appears twice in header")
    absent = [n for n in _MANIFEST_REQUIRED if n not in names]
    if absent:
        raise DatasetError(f"{path}: header lacks the {absent[0]!r} column (header: {','.join(header)})")
    return {name: i for i, name in enumerate(names)}


def _manifest_track_id(base: Path, listed: str) -> str:
    """Stable id of a manifest entry: its path relative to the manifest's folder.

    Absolute paths outside that folder keep their absolute POSIX form.
    """
    listed_path = Path(listed)
    if not listed_path.is_absolute():
        return Path(os.path.normpath(listed_path)).as_posix()
    try:
        return listed_path.relative_to(base).as_posix()
    except ValueError:
        return listed_path.as_posix()


def read_csv_manifest(path) -> LoadResult:
    """All tracks of a CSV manifest, split into found and missing.

    The first row is a header naming the columns, in any order: ``path`` and
    ``label`` are required, ``split`` and ``artist`` optional (an empty cell is None).
    Relative paths are relative to the manifest's folder.

    Parameters
    ----------
    path : path-like
        The manifest file.

    Returns
    -------
    LoadResult
        In manifest order; ``missing`` holds entries whose file does not exist.

    Raises
    ------
    DatasetError
        The file cannot be read or is empty; the header has an unknown or duplicated
        column or lacks ``path``/``label``; a row has the wrong number of cells, an
        empty path or label, or repeats an earlier path.
    """
    path = Path(path).absolute()
    numbered = _read_csv(path, "manifest")
    columns = _manifest_columns(path, numbered[0][1])
    base = path.parent

    found, missing = [], []
    first_line: dict[str, int] = {}
    for line, row in numbered[1:]:
        if len(row) != len(columns):
            raise DatasetError(f"{path}: line {line} has {len(row)} cells, the header has {len(columns)}")
        cells = {name: row[i].strip() for name, i in columns.items()}
        if not cells["path"]:
            raise DatasetError(f"{path}: line {line} has an empty path")
        if not cells["label"]:
            raise DatasetError(f"{path}: line {line} has an empty label")
        track_id = _manifest_track_id(base, cells["path"])
        # The same file twice would let one track sit in train and test at once.
        if track_id in first_line:
            raise DatasetError(f"{path}: line {line} repeats the path of line {first_line[track_id]}")
        first_line[track_id] = line
        file_path = base / cells["path"]  # an absolute listed path replaces base
        track = Track(
            path=file_path,
            label=cells["label"],
            split=cells.get("split") or None,
            artist=cells.get("artist") or None,
            track_id=track_id,
        )
        (found if file_path.is_file() else missing).append(track)
    if not found and not missing:
        raise DatasetError(f"{path}: manifest has a header but no tracks")
    return LoadResult(found, missing)


def load_csv(path, *, missing: str = "error") -> list[Track]:
    """Tracks of a CSV manifest whose files exist.

    See :func:`read_csv_manifest` for the format; ``missing`` is as in
    :func:`load_ismir2004`.

    Returns
    -------
    list of Track
    """
    _check_missing_policy(missing)
    return _apply_missing_policy(read_csv_manifest(path), Path(path), missing).tracks


# ---------------------------------------------------------------------------------------
# Any layout


def detect_layout(root) -> str:
    """The layout of ``root``: ``"csv"``, ``"ismir2004"`` or ``"folders"``.

    A ``.csv`` file is a manifest; a folder with ``metadata/training/tracklist.csv``
    is the ISMIR 2004 collection; any other folder is read as one folder per label.

    Raises
    ------
    DatasetError
        ``root`` does not exist, or is a file other than a ``.csv``.
    """
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "csv"
        raise DatasetError(f"{root}: a dataset is a folder or a .csv manifest")
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset does not exist")
    if (root / "metadata" / "training" / "tracklist.csv").is_file():
        return "ismir2004"
    return "folders"


def read_dataset(root, layout: str = "auto", **options) -> LoadResult:
    """Found and missing tracks of a dataset in any layout.

    Parameters
    ----------
    root : path-like
        A folder (``folders``, ``ismir2004``) or a manifest file (``csv``).
    layout : {"auto", "folders", "ismir2004", "csv"}
    **options
        Passed to the layout's reader: ``metadata_dir``, ``audio_dir``, ``splits``
        for ``ismir2004``; none for the others.

    Returns
    -------
    LoadResult
        ``missing`` is always empty for ``folders``, which lists only what exists.
    """
    if layout not in LAYOUTS:
        raise DatasetError(f"{root}: unknown layout {layout!r} (expected {', '.join(LAYOUTS)})")
    if layout == "auto":
        layout = detect_layout(root)
    if layout != "ismir2004" and options:
        raise DatasetError(f"{root}: layout {layout!r} takes no option {sorted(options)[0]!r}")
    if layout == "folders":
        return read_folders(root)
    if layout == "ismir2004":
        return read_ismir2004(root, **options)
    return read_csv_manifest(root)


def list_dataset(root, layout: str = "auto", *, missing: str = "error", **options) -> LoadResult:
    """What a command works on: :func:`read_dataset` with the ``missing`` policy applied.

    ``missing`` is as in :func:`load_ismir2004`; ``skipped`` is kept for the caller to
    report.

    Returns
    -------
    LoadResult
    """
    _check_missing_policy(missing)
    if layout not in LAYOUTS:
        raise DatasetError(f"{root}: unknown layout {layout!r} (expected {', '.join(LAYOUTS)})")
    if layout == "auto":
        layout = detect_layout(root)
    result = read_dataset(root, layout, **options)
    where = Path(root)
    if layout == "ismir2004":  # missing audio is looked for under the audio folder
        where = _ismir2004_dirs(root, options.get("metadata_dir"), options.get("audio_dir"))[1]
    return _apply_missing_policy(result, where, missing)


def load_dataset(root, layout: str = "auto", *, missing: str = "error", **options) -> list[Track]:
    """Tracks of a dataset in any layout (see :func:`list_dataset`).

    Returns
    -------
    list of Track
    """
    return list_dataset(root, layout, missing=missing, **options).tracks


# ---------------------------------------------------------------------------------------
# Splits


def _as_index(values: Iterable[int]) -> np.ndarray:
    return np.asarray(sorted(values), dtype=np.int64)


def _check_tracks(tracks: Sequence, what: str) -> None:
    if len(tracks) == 0:
        raise DatasetError(f"{what}: no tracks to split")


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise DatasetError(f"k={k!r}: the number of folds must be an integer of at least 2")
    return int(k)


def official_split(tracks: Sequence[Track], train: str = "training", test: str = "development") -> list[Split]:
    """The collection's own train/test split (ISMIR 2004, or any tracks with ``split``).

    Tracks of other splits (such as ISMIR 2004's ``evaluation``) are in neither part.

    Parameters
    ----------
    tracks : sequence of Track
    train, test : str
        The split names of the train and the test part.

    Returns
    -------
    list of (ndarray, ndarray)
        One ``(train_indices, test_indices)`` pair of sorted int64 arrays.

    Raises
    ------
    DatasetError
        ``train == test``, or either part is empty.
    """
    if train == test:
        raise DatasetError(f"official split: train and test are both {train!r}")
    available = sorted({t.split for t in tracks if t.split is not None})
    parts = []
    for name in (train, test):
        idx = _as_index(i for i, t in enumerate(tracks) if t.split == name)
        if idx.size == 0:
            have = ", ".join(available) if available else "none (the tracks carry no split)"
            raise DatasetError(f"official split: no track in split {name!r} (splits present: {have})")
        parts.append(idx)
    return [(parts[0], parts[1])]


def _label_codes(labels: Iterable) -> np.ndarray:
    """Labels as integer codes, so sklearn sees a plain multiclass target.

    An object array of ints reads as target type "unknown" to sklearn; codes work for
    any hashable labels. Codes follow sorted label order where labels sort (as
    ``np.unique`` would), so folds equal sklearn's on the raw labels.
    """
    labels = list(labels)
    distinct = list(dict.fromkeys(labels))
    try:
        distinct = sorted(distinct)
    except TypeError:  # mixed, unorderable labels: first appearance is still deterministic
        pass
    code = {label: i for i, label in enumerate(distinct)}
    return np.asarray([code[label] for label in labels], dtype=np.int64)


def _check_class_sizes(labels: Sequence, k: int, what: str = "tracks") -> None:
    """Refuse a stratified split sklearn would warn about or fail on, naming the label."""
    counts = Counter(labels)
    small = sorted((n, str(label)) for label, n in counts.items() if n < k)
    if small:
        n, label = small[0]
        others = f" (and {len(small) - 1} more labels)" if len(small) > 1 else ""
        raise DatasetError(f"{k}-fold split: label {label!r} has only {n} {what}, fewer than k={k}{others}")


def _to_pairs(folds) -> list[Split]:
    return [(_as_index(train), _as_index(test)) for train, test in folds]


def kfold_splits(tracks: Sequence[Track], k: int, seed: int) -> list[Split]:
    """Stratified k-fold cross-validation over the tracks.

    Parameters
    ----------
    tracks : sequence of Track
    k : int
        Number of folds, at least 2.
    seed : int
        Shuffling seed; the same tracks, ``k`` and seed give the same folds.

    Returns
    -------
    list of (ndarray, ndarray)
        ``k`` pairs of sorted int64 index arrays; the test parts partition the tracks.

    Raises
    ------
    DatasetError
        ``k < 2``, or a label has fewer than ``k`` tracks (the message names it).
    """
    from sklearn.model_selection import StratifiedKFold

    k = _check_k(k)
    _check_tracks(tracks, f"{k}-fold split")
    _check_class_sizes([t.label for t in tracks], k)
    labels = _label_codes(t.label for t in tracks)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return _to_pairs(folds.split(np.zeros(len(labels)), labels))


def artist_kfold_splits(tracks: Sequence[Track], k: int, seed: int) -> list[Split]:
    """Artist-filtered stratified k-fold: no artist is in both train and test.

    Folds are stratified as well as the artists' sizes allow (sklearn
    ``StratifiedGroupKFold`` with the artist as group). A label recorded by fewer
    than ``k`` artists is absent from some test folds; one recorded by a single
    artist is absent from that fold's training part too.

    Parameters
    ----------
    tracks : sequence of Track
        Every track must have an ``artist``.
    k : int
        Number of folds, at least 2.
    seed : int
        Shuffling seed.

    Returns
    -------
    list of (ndarray, ndarray)
        ``k`` pairs of sorted int64 index arrays.

    Raises
    ------
    DatasetError
        ``k < 2``, a track has no artist, there are fewer distinct artists than
        ``k``, or a fold would have an empty test part.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    k = _check_k(k)
    _check_tracks(tracks, "artist-filtered split")
    no_artist = [t for t in tracks if not t.artist]
    if no_artist:
        raise DatasetError(
            f"artist-filtered split: {len(no_artist)} of {len(tracks)} tracks have no artist "
            f"(first: {no_artist[0].track_id})"
        )
    artists = np.asarray([t.artist for t in tracks], dtype=object)
    n_artists = len(set(artists))
    if n_artists < k:
        raise DatasetError(f"artist-filtered split: only {n_artists} distinct artists, fewer than k={k}")
    labels = _label_codes(t.label for t in tracks)
    folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    pairs = _to_pairs(folds.split(np.zeros(len(labels)), labels, groups=artists))
    # The greedy group assignment can, in principle, leave a fold without test tracks.
    if any(test.size == 0 for _, test in pairs):
        raise DatasetError(f"artist-filtered split: a fold has no test tracks with k={k}; use a smaller k")
    return pairs


def make_splits(tracks: Sequence[Track], protocol: str, k: int = 5, seed: int = 0) -> list[Split]:
    """Train/test index pairs for an evaluation protocol.

    Parameters
    ----------
    tracks : sequence of Track
    protocol : {"official", "kfold", "artist-kfold"}
        ``official``: :func:`official_split` with its defaults (``k`` and ``seed``
        unused); ``kfold``: :func:`kfold_splits`; ``artist-kfold``:
        :func:`artist_kfold_splits`.
    k : int
    seed : int

    Returns
    -------
    list of (ndarray, ndarray)
    """
    if protocol == "official":
        return official_split(tracks)
    if protocol == "kfold":
        return kfold_splits(tracks, k, seed)
    if protocol == "artist-kfold":
        return artist_kfold_splits(tracks, k, seed)
    raise DatasetError(f"unknown protocol {protocol!r} (expected {', '.join(PROTOCOLS)})")


def inner_folds(labels: Sequence, k: int, seed: int) -> list[Split]:
    """Stratified folds inside a training set, for cross-fitting.

    ``k`` is lowered to the smallest class size when a class is smaller, so a small
    training fold still gets folds, but never below 2.

    Parameters
    ----------
    labels : sequence
        One label per example (any hashable values).
    k : int
        Wanted number of folds, at least 2.
    seed : int
        Shuffling seed.

    Returns
    -------
    list of (ndarray, ndarray)
        ``min(k, smallest class size)`` pairs of sorted int64 index arrays into
        ``labels``.

    Raises
    ------
    DatasetError
        ``k < 2``, no labels, or a class with a single example.
    """
    from sklearn.model_selection import StratifiedKFold

    k = _check_k(k)
    labels = list(labels)
    if not labels:
        raise DatasetError("inner folds: no labels")
    counts = Counter(labels)
    smallest_label, smallest = min(counts.items(), key=lambda item: (item[1], str(item[0])))
    if smallest < 2:
        raise DatasetError(f"inner folds: label {smallest_label!r} has a single example; cannot hold one out")
    k = min(k, smallest)
    codes = _label_codes(labels)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return _to_pairs(folds.split(np.zeros(len(codes)), codes))
