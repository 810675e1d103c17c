"""Writing planned genre changes, each recorded in an undo log before it is made.

The undo log is JSON Lines (one JSON object a line, UTF-8), so that it can grow one
entry at a time without rewriting what is there: a header line, then one line per
changed file, written and fsync'ed *before* that file is replaced. A crash at any
point leaves a log that covers every file that was changed (and at most one entry
for a file that was not: undo finds it as it was and leaves it). A torn last line
can only belong to a file that was not changed; :func:`genreseg.tagging.undo`
ignores it.

Header line::

    {"format": "genreseg-tag-undo", "version": 1, "created": "2025-01-31T12:00:00+00:00"}

Entry line (one per changed file)::

    {"path": "/abs/path/song.mp3",        # as named (absolute); symlinks are followed on undo
     "format": "mp3",                     # see SUPPORTED_FORMATS
     "sha256_before": "...",              # the whole file before the change
     "sha256_after": "...",               # ... and after: undo refuses a file that differs
     "genres_before": ["Rock"], "genres_after": ["jazz"],
     "genre_tag_before": {...} | null,    # the genre field as stored (null: there was none)
     "restore_bytes": {"head_base64": "...", "tail_base64": "..."} | null,
     "time": "2025-01-31T12:00:01+00:00"}

``restore_bytes`` holds, for MP3, FLAC, WAV and AIFF, the original bytes before and
after the audio (the ID3v2 tag, FLAC metadata blocks, RIFF/IFF headers and chunks,
trailing ID3v1/APE tags): undo rebuilds those files byte for byte. For MP4, Ogg and
ASF (where a tag writer may move the audio and rewrite container tables) undo puts
``genre_tag_before`` back instead.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .containers import Untaggable, detect_format, one_line
from .plan import TagError, TagResult
from .safe_write import NotWritten, _fsync_path, rewrite

__all__ = ["LOG_FORMAT", "ApplyReport", "apply_tags", "default_undo_log_path"]

LOG_FORMAT, LOG_VERSION = "genreseg-tag-undo", 1


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def default_undo_log_path(folder=".") -> Path:
    """``<folder>/genreseg-tag-undo-YYYYmmdd-HHMMSS.jsonl`` (local time), with ``-2``, ``-3``... if taken."""
    stem = f"genreseg-tag-undo-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    path, n = Path(folder) / f"{stem}.jsonl", 1
    while path.exists():
        n += 1
        path = Path(folder) / f"{stem}-{n}.jsonl"
    return path


class _LogFailed(Exception):
    pass


class _UndoLog:
    """The undo log being written: created (exclusively) at the first entry, each line fsync'ed."""

    def __init__(self, path: Path):
        self.path, self._fh = path, None

    def append(self, entry: dict) -> None:
        try:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "x", encoding="utf-8")
                self._line({"format": LOG_FORMAT, "version": LOG_VERSION, "created": _now()})
                _fsync_path(str(self.path.parent), directory=True)
            self._line(entry)
        except OSError as err:
            raise _LogFailed(f"{self.path}: {err.strerror or err}") from None

    def _line(self, obj: dict) -> None:
        self._fh.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    @property
    def created(self) -> bool:
        return self._fh is not None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


@dataclass
class ApplyReport:
    """What :func:`apply_tags` did.

    Attributes
    ----------
    results : list of TagResult
        One per plan, in order: the ``"write"`` ones that were written have
        ``written=True``; those that could not be have ``action="error"`` and a reason.
    undo_log : str or None
        The undo log, or None when nothing was written (no log is created then).
    """

    results: list[TagResult] = field(default_factory=list)
    undo_log: str | None = None

    @property
    def written(self) -> list[TagResult]:
        """The results whose change was written."""
        return [r for r in self.results if r.written]

    @property
    def errors(self) -> list[TagResult]:
        """The results with ``action="error"`` (planned or at writing)."""
        return [r for r in self.results if r.action == "error"]

    def counts(self) -> dict[str, int]:
        """Number of results per action, ``"written"`` included."""
        out: dict[str, int] = {"written": len(self.written)}
        for r in self.results:
            out[r.action] = out.get(r.action, 0) + 1
        return out

    def to_dict(self) -> dict:
        """Plain JSON data: ``undo_log``, ``counts`` and ``results`` (each :meth:`TagResult.to_dict`)."""
        return {"undo_log": self.undo_log, "counts": self.counts(),
                "results": [r.to_dict() for r in self.results]}


def _write_one(plan: TagResult, log: _UndoLog) -> None:
    def change(tags):
        if tags.genres() != list(plan.current_genres):
            raise NotWritten(f"the genre changed since planning (now {tags.genres()}); plan again")
        state["before"] = tags.state()
        tags.set_genres(list(plan.new_genres))

    def log_entry(before: str, after: str, outside) -> None:
        log.append({
            "path": os.path.abspath(plan.path), "format": kind,
            "sha256_before": before, "sha256_after": after,
            "genres_before": list(plan.current_genres), "genres_after": list(plan.new_genres),
            "genre_tag_before": state["before"],
            "restore_bytes": None if outside is None else {
                "head_base64": base64.b64encode(outside[0]).decode("ascii"),
                "tail_base64": base64.b64encode(outside[1]).decode("ascii")},
            "time": _now()})

    state: dict = {}
    kind = plan.format or detect_format(plan.path)  # a plan made by hand may not name it
    rewrite(plan.path, kind, change, plan.new_genres, before_replace=log_entry)


def apply_tags(plans, undo_log=None, *, on_result=None) -> ApplyReport:
    """Write the ``"write"`` results of :func:`plan_tags`, logging each change for :func:`undo`.

    Each file is changed through a checked copy (see :mod:`genreseg.tagging.safe_write`):
    the audio bytes, every other tag, cover art and ReplayGain values stay as they
    are, and a file whose write fails or does not pass the checks is left exactly as
    it was. Its result becomes ``action="error"`` with the reason, and the batch goes on.

    Parameters
    ----------
    plans : iterable of TagResult
        As :func:`plan_tags` returns them; results other than ``"write"`` (and ones
        already written) pass through unchanged.
    undo_log : path-like, optional
        Where to write the undo log (must not exist yet), or a folder to put a
        default-named one in. Default: :func:`default_undo_log_path` in the current
        folder. The log is created just before the first change, not at all when
        nothing is written.
    on_result : callable, optional
        Called with each final :class:`TagResult` as soon as it is known (progress).
        Whatever it raises stops the batch; the files changed so far are in the log.

    Returns
    -------
    ApplyReport

    Raises
    ------
    TagError
        ``undo_log`` names an existing file (before anything is changed).
    """
    log_path = None if undo_log is None else Path(undo_log)
    if log_path is not None and log_path.is_dir():
        log_path = default_undo_log_path(log_path)
    elif log_path is not None and log_path.exists():
        raise TagError(log_path, "the undo log already exists; name a new file")
    log = _UndoLog(log_path or default_undo_log_path())
    results, done, log_error = [], set(), None
    try:
        for plan in plans:
            result = plan
            if plan.action == "write" and not plan.written:
                real = os.path.realpath(plan.path)
                try:
                    if log_error:
                        raise NotWritten(f"the undo log cannot be written ({log_error})")
                    if real in done:
                        raise NotWritten("the same file was changed earlier in this batch")
                    _write_one(plan, log)
                    done.add(real)
                    result = replace(plan, written=True)
                except _LogFailed as err:
                    log_error = str(err)
                    result = replace(plan, action="error", reason=f"not written: the undo log cannot be written "
                                                                  f"({log_error})")
                except (NotWritten, Untaggable) as err:
                    result = replace(plan, action="error", reason=f"not written: {err.reason}")
                except Exception as err:  # mutagen's errors, OSError, anything from one file
                    why = one_line(getattr(err, "reason", None) or err) or type(err).__name__
                    result = replace(plan, action="error", reason=f"not written: {why}")
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        log.close()
    return ApplyReport(results, str(log.path) if log.created else None)
