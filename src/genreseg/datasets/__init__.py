"""Datasets: list the tracks of a collection.

Three on-disk layouts are understood, one module each, each with a ``read_<layout>``
function returning a :class:`LoadResult` and a ``load_<layout>`` wrapper returning a
list of :class:`Track`:

``folders`` (:mod:`.folders`)
    One folder per label, as GTZAN ships: ``root/<label>/.../<file>``.
``ismir2004`` (:mod:`.ismir2004`)
    The ISMIR 2004 genre contest collection: ``root/metadata/<split>/tracklist.csv``
    and the audio under ``root/audio/<split>/<file_path>``.
``csv`` (:mod:`.manifest`)
    A manifest with a header naming the columns ``path``, ``label`` and optionally
    ``split`` and ``artist``.

:mod:`.tracks` holds what they share: :class:`Track`, :class:`LoadResult`, the
missing-file policy and the audio-file search. This module picks the layout
(:func:`detect_layout`; ``layout="auto"``) and reads any of them
(:func:`read_dataset`, :func:`list_dataset`, :func:`load_dataset`). Listing layouts
can name audio that is not on disk; the ``read_*`` functions return those tracks
beside the found ones, and the ``load_*`` wrappers either raise (``missing="error"``,
the default) or leave them out (``missing="skip"``).

Evaluation splits over the tracks are in :mod:`genreseg.splits`, which takes arrays
(labels, artists, split names, content keys) rather than tracks.

Every failure raises :class:`genreseg.errors.DatasetError` with a one-line message,
``"<path>: <reason>"`` where a file or folder is at fault.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from .folders import load_folders, read_folders
from .ismir2004 import (
    ISMIR2004_SPLITS,
    TracklistRow,
    _ismir2004_dirs,
    load_ismir2004,
    read_ismir2004,
    read_ismir2004_tracklist,
)
from .manifest import load_csv, read_csv_manifest
from .tracks import (
    MISSING_POLICIES,
    LoadResult,
    Track,
    _apply_missing_policy,
    _check_missing_policy,
    find_audio_files,
    label_counts,
)

__all__ = [
    "ISMIR2004_SPLITS",
    "LAYOUTS",
    "MISSING_POLICIES",
    "LoadResult",
    "Track",
    "TracklistRow",
    "detect_layout",
    "find_audio_files",
    "label_counts",
    "list_dataset",
    "load_csv",
    "load_dataset",
    "load_folders",
    "load_ismir2004",
    "read_csv_manifest",
    "read_dataset",
    "read_folders",
    "read_ismir2004",
    "read_ismir2004_tracklist",
]

LAYOUTS = ("auto", "folders", "ismir2004", "csv")


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
