"""Layout ``csv``: a manifest with a header naming ``path``, ``label`` and optionally
``split`` and ``artist``; relative paths are relative to the manifest's folder."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..errors import DatasetError
from .tracks import (
    LoadResult,
    Track,
    _apply_missing_policy,
    _check_missing_policy,
    _read_csv,
)

__all__ = ["load_csv", "read_csv_manifest"]

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
