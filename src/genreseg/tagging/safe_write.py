"""Changing a file without ever leaving it half-changed or losing anything.

Every change (writing a genre, undoing one) is made to a copy in the file's own folder
(same file system), checked, and only then moved over the original with
``os.replace``, which is atomic: a reader, a crash or a power cut sees the old file or
the whole new one. The copy keeps the original's permission bits (and its owner where
the process may set it). A replaced file is a new inode: hard links to the old one
keep the old content. A symbolic link is followed: its target is changed and the link
stays.

Before the copy replaces the original, :func:`rewrite` reads it back with mutagen and
refuses it (leaving the original as it was) unless the genre is what was asked, every
other tag (cover art and ReplayGain included) is as before, mutagen's stream
description is the same, and :func:`~genreseg.tagging.payload.audio_fingerprint` is
unchanged.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid

from .containers import Tags, open_tags
from .payload import BYTE_EXACT_KINDS, audio_fingerprint, file_sha256, payload_span

__all__ = ["NotWritten", "restore_bytes", "rewrite"]

_BLOCK = 1 << 20


class NotWritten(Exception):
    """A change was refused or failed; the file is as it was. ``reason`` is one line."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _temp_path(real: str) -> str:
    folder, name = os.path.split(real)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.genreseg-{uuid.uuid4().hex[:12]}{ext}")  # same extension: same format


def _open_temp(tmp: str):
    try:
        return open(tmp, "xb")
    except OSError as err:
        raise NotWritten(f"cannot create a temporary copy in {os.path.dirname(tmp)} "
                         f"({err.strerror or err})") from None


def _keep_mode(tmp: str, st: os.stat_result) -> None:
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except OSError:  # only root (or the owner, for a group it is in) may
        pass


def _fsync_path(path: str, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _copy_range(src, dst, start: int, end: int, h) -> None:
    src.seek(start)
    left = end - start
    while left > 0:
        block = src.read(min(_BLOCK, left))
        if not block:
            raise NotWritten("the file got shorter while it was being copied")
        dst.write(block)
        h.update(block)
        left -= len(block)


def _replace(tmp: str, real: str, st: os.stat_result) -> None:
    now = os.stat(real)
    if (now.st_size, now.st_mtime_ns, now.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino):
        raise NotWritten("the file changed while it was being tagged; left as it is now")
    os.replace(tmp, real)
    _fsync_path(os.path.dirname(real), directory=True)


def _cleanup(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def rewrite(path, kind: str, change, expect_genres, before_replace=None) -> tuple[str, str]:
    """Change the tags of ``path`` through a checked copy; the original is replaced only at the end.

    Parameters
    ----------
    path : path-like
    kind : str
        The file's format, as :func:`~genreseg.tagging.detect_format` names it.
    change : callable
        ``change(tags)`` edits the copy's :class:`~genreseg.tagging.containers.Tags`
        in memory (it may raise :class:`NotWritten` to give up).
    expect_genres : sequence of str
        What the genre must read back as.
    before_replace : callable, optional
        ``before_replace(sha256_before, sha256_after, outside)`` is called once the
        copy passed every check and before it replaces the original (the undo log is
        written there). ``outside`` is ``(head, tail)``, the original's bytes around
        the audio, for the formats of :data:`~genreseg.tagging.payload.BYTE_EXACT_KINDS`,
        else None. If it raises, nothing is replaced.

    Returns
    -------
    tuple of str
        SHA-256 of the file before and after.

    Raises
    ------
    NotWritten
        A check failed. Any other exception (mutagen's, an ``OSError``) also leaves
        the original as it was.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    if not os.access(real, os.W_OK):
        raise NotWritten("the file is read-only")
    original = open_tags(real, kind)
    others, info = original.others(), original.stream_info()
    fingerprint = audio_fingerprint(real, kind)
    tmp = _temp_path(real)
    try:
        h = hashlib.sha256()
        with open(real, "rb") as src, _open_temp(tmp) as dst:
            _copy_range(src, dst, 0, st.st_size, h)
        before = h.hexdigest()
        outside = None
        if kind in BYTE_EXACT_KINDS:
            start, end = payload_span(tmp, kind)
            with open(tmp, "rb") as fh:
                head = fh.read(start)
                fh.seek(end)
                outside = (head, fh.read())
        copy: Tags = open_tags(tmp, kind)
        change(copy)
        copy.save()
        _fsync_path(tmp)
        check = open_tags(tmp, kind)
        if check.genres() != list(expect_genres):
            raise NotWritten(f"the genre read back as {check.genres()} instead of {list(expect_genres)}")
        if check.others() != others:
            raise NotWritten("writing would have changed other tags; refused")
        if check.stream_info() != info:
            raise NotWritten("writing would have changed the stream description; refused")
        if audio_fingerprint(tmp, kind) != fingerprint:
            raise NotWritten("writing would have changed the audio; refused")
        after = file_sha256(tmp)
        _keep_mode(tmp, st)
        if before_replace is not None:
            before_replace(before, after, outside)
        _replace(tmp, real, st)
    finally:
        _cleanup(tmp)
    return before, after


def restore_bytes(path, kind: str, head: bytes, tail: bytes, expected_sha256: str) -> None:
    """Rebuild ``path`` as ``head`` + its current audio bytes + ``tail``, if that gives ``expected_sha256``.

    Raises
    ------
    NotWritten
        The rebuilt file would not have the expected hash (nothing is changed).
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    start, end = payload_span(real, kind)
    tmp = _temp_path(real)
    try:
        h = hashlib.sha256()
        with open(real, "rb") as src, _open_temp(tmp) as dst:
            dst.write(head)
            h.update(head)
            _copy_range(src, dst, start, end, h)
            dst.write(tail)
            h.update(tail)
            dst.flush()
            os.fsync(dst.fileno())
        if h.hexdigest() != expected_sha256:
            raise NotWritten("the logged tag bytes and the current audio do not rebuild the original file")
        _keep_mode(tmp, st)
        _replace(tmp, real, st)
    finally:
        _cleanup(tmp)
