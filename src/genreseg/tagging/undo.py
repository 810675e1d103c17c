"""Undoing a run of :func:`genreseg.tagging.apply_tags` from its undo log."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass

from .apply import LOG_FORMAT, LOG_VERSION
from .containers import Untaggable, one_line
from .payload import file_sha256
from .plan import TagError
from .safe_write import NotWritten, restore_bytes, rewrite

__all__ = ["UNDO_ACTIONS", "UndoResult", "read_undo_log", "undo"]

#: ``restored``: the file is back as it was (see ``method``); ``unchanged``: it already
#: was (its change was never made, or was undone); ``refused``: it changed since
#: (or is gone) and is left alone; ``error``: restoring it failed, it is as it was.
UNDO_ACTIONS = ("restored", "unchanged", "refused", "error")


@dataclass(frozen=True)
class UndoResult:
    """What undo did to one file.

    Attributes
    ----------
    path : str
    format : str or None
    action : str
        One of :data:`UNDO_ACTIONS`.
    method : str or None
        ``"bytes"``: rebuilt byte for byte (MP3, FLAC, WAV, AIFF); ``"genre"``: the
        genre field put back as it was stored (MP4, Ogg, ASF); None when nothing was
        written.
    genres : tuple of str
        The genre values the file has after undo (the logged ``genres_before``
        when restored).
    reason : str
        One line.
    """

    path: str
    format: str | None
    action: str
    method: str | None = None
    genres: tuple[str, ...] = ()
    reason: str = ""

    @property
    def message(self) -> str:
        """``"<path>: <reason>"``."""
        return f"{self.path}: {self.reason or self.action}"

    def to_dict(self) -> dict:
        """The fields as plain JSON data."""
        out = asdict(self)
        out["genres"] = list(self.genres)
        return out


def read_undo_log(log_path) -> list[dict]:
    """The entries of an undo log (see :mod:`genreseg.tagging.apply` for their fields).

    A torn last line (a crash while it was written) is left out: its file was not
    changed.

    Raises
    ------
    TagError
        Not a genreseg tag undo log, a version this code does not know, or a damaged
        line other than the last.
    """
    try:
        with open(log_path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise TagError(log_path, f"cannot read the undo log ({one_line(err)})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) and number > 1:
                break  # torn while being written: that file was not changed
            raise TagError(log_path, f"line {number} of the undo log is not JSON") from None
    header = parsed[0] if parsed else {}
    if not isinstance(header, dict) or header.get("format") != LOG_FORMAT:
        raise TagError(log_path, "not a genreseg tag undo log")
    if header.get("version") != LOG_VERSION:
        raise TagError(log_path, f"undo log version {header.get('version')!r}; this genreseg reads {LOG_VERSION}")
    return parsed[1:]


def _undo_one(entry: dict) -> UndoResult:
    path, kind = entry["path"], entry["format"]
    before = tuple(entry["genres_before"])
    if not os.path.isfile(path):
        return UndoResult(path, kind, "refused", reason="the file is gone; nothing to restore")
    current = file_sha256(path)
    if current == entry["sha256_before"]:
        return UndoResult(path, kind, "unchanged", genres=before,
                          reason="already as it was before tagging (the change was never made, or was undone)")
    if current != entry["sha256_after"]:
        return UndoResult(path, kind, "refused", reason="changed since it was tagged (its SHA-256 is not "
                                                        "the one logged after tagging); left alone")
    saved = entry.get("restore_bytes")
    note = ""
    if saved:
        try:
            restore_bytes(path, kind, base64.b64decode(saved["head_base64"]),
                          base64.b64decode(saved["tail_base64"]), entry["sha256_before"])
            return UndoResult(path, kind, "restored", "bytes", before, "restored byte for byte")
        except NotWritten as err:
            note = f" ({err.reason}; the genre was restored instead)"

    def change(tags):
        tags.restore(entry["genre_tag_before"])

    rewrite(path, kind, change, before)
    return UndoResult(path, kind, "restored", "genre", before,
                      f"genre restored to {'; '.join(before) or '(none)'}{note}")


def undo(log_path, *, on_result=None) -> list[UndoResult]:
    """Undo the changes an undo log records, last change first.

    Each file is checked first: one whose SHA-256 is not the one logged after its
    change (retagged, re-encoded, replaced since) is refused with a reason and left
    alone; one that already has its logged "before" hash is reported unchanged. MP3,
    FLAC, WAV and AIFF files are rebuilt byte for byte from the logged bytes around
    their audio (and the result checked against the logged "before" hash); MP4, Ogg
    and ASF files get their genre field back exactly as it was stored (or removed if
    there was none), through the same checked copy as tagging. A file that cannot be
    restored gets ``action="error"`` and the batch goes on.

    Parameters
    ----------
    log_path : path-like
        The log :func:`apply_tags` wrote.
    on_result : callable, optional
        Called with each :class:`UndoResult` as soon as it is known.

    Returns
    -------
    list of UndoResult
        One per log entry, in the order undone (last change first).

    Raises
    ------
    TagError
        The log cannot be read (see :func:`read_undo_log`); nothing is changed.
    """
    results = []
    for entry in reversed(read_undo_log(log_path)):
        try:
            result = _undo_one(entry)
        except (NotWritten, Untaggable) as err:
            result = UndoResult(entry.get("path", "?"), entry.get("format"), "error",
                                reason=f"not restored: {err.reason}")
        except Exception as err:  # one file's problem: report it and go on
            reason = one_line(getattr(err, "reason", None) or err) or type(err).__name__
            result = UndoResult(entry.get("path", "?"), entry.get("format"), "error",
                                reason=f"not restored: {reason}")
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
