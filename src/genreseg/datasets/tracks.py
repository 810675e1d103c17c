"""Tracks and what every layout shares.

:class:`Track` (one audio file and its label, split, artist and stable id),
:class:`LoadResult` (found, missing and passed-over files), :func:`label_counts`, the
missing-file policy of the ``load_*`` wrappers, the search for audio files under a
folder with the reason each other file is passed over (:func:`find_audio_files`), and
the CSV reading the tracklist and manifest layouts share.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..audio import is_audio_path
from ..errors import DatasetError

__all__ = ["MISSING_POLICIES", "LoadResult", "Track", "find_audio_files", "label_counts"]

MISSING_POLICIES = ("error", "skip")

#: How many missing files an error message names before it says "...".
_MAX_NAMED = 3


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

