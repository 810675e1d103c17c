"""Layout ``ismir2004``: the ISMIR 2004 genre contest collection.

``root/metadata/<split>/tracklist.csv`` lists the tracks; the audio is under
``root/audio/<split>/<file_path>``. The three tracklists differ in their header (or
lack of one), and some copies of the audio spell apostrophes as underscores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import DatasetError
from .tracks import (
    LoadResult,
    Track,
    _apply_missing_policy,
    _check_missing_policy,
    _read_csv,
)

__all__ = ["ISMIR2004_SPLITS", "TracklistRow", "load_ismir2004", "read_ismir2004", "read_ismir2004_tracklist"]

#: The ISMIR 2004 splits, in the order they are listed. The paper's train set is
#: ``training`` and its test set is ``development``.
ISMIR2004_SPLITS = ("training", "development", "evaluation")


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
