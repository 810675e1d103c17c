"""Layout ``folders``: one folder per label, as GTZAN ships (``root/<label>/.../<file>``)."""

from __future__ import annotations

from pathlib import Path

from ..audio import AUDIO_EXTENSIONS
from ..errors import DatasetError
from .tracks import LoadResult, Track, _audio_files, _existing_dir

__all__ = ["load_folders", "read_folders"]


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
