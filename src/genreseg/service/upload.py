"""Receive one uploaded audio file: a multipart body streamed to a private temporary file.

The body is parsed as it arrives (python-multipart's streaming parser), so an upload
over the limit is refused after at most the limit's worth of bytes, and nothing is
held in memory. The temporary file is created by :func:`tempfile.mkstemp` (mode 0600,
a random name); of the client's file name only a lower-cased extension of a known
audio type is kept (a hint to FFmpeg's probe; the decoder reads the content, as
``genreseg predict`` does). The name itself is only ever shown back to the client,
never used as a path.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fastapi import HTTPException
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from ..audio import is_audio_path

#: Bytes a multipart body may carry beyond its file (boundaries, part headers, small fields).
ENVELOPE_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Upload:
    """An uploaded file on disk: ``path`` (ours, temporary), ``name`` (the client's, for display)."""

    path: Path
    name: str
    size: int

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def display_name(filename: str) -> str:
    """The last component of a client's file name, without control characters (for messages only).

    ``"../../etc/passwd.wav"`` → ``"passwd.wav"``; ``"C:\\\\music\\\\a.mp3"`` → ``"a.mp3"``.
    """
    base = re.split(r"[/\\]", filename)[-1]
    base = _CONTROL.sub("", base).strip()[-120:]
    return base if base not in ("", ".", "..") else "upload"


def temp_suffix(name: str) -> str:
    """The extension to give the temporary file: the name's, lower-cased, if it is a known audio type."""
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if is_audio_path("x" + suffix) else ""


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"upload too large: the limit is {limit / 2**20:g} MB")


class _Receiver:
    """python-multipart callbacks that write the one file part to a temporary file."""

    def __init__(self, max_bytes: int, tmp_dir: str | None):
        self.max_bytes, self.tmp_dir = max_bytes, tmp_dir
        self.upload: Upload | None = None
        self.complete = False  # the closing boundary was seen
        self._file = None
        self._headers: dict = {}
        self._field = self._value = b""

    def on_part_begin(self):
        self._headers, self._file = {}, None

    def on_header_field(self, data, start, end):
        self._field += data[start:end]

    def on_header_value(self, data, start, end):
        self._value += data[start:end]

    def on_header_end(self):
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def on_headers_finished(self):
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"filename" not in params:
            return  # a plain form field: ignored (the body limit bounds it)
        if self.upload is not None:
            raise HTTPException(400, "one file per request: this request holds several")
        name = display_name(params[b"filename"].decode("utf-8", "replace"))
        fd, path = tempfile.mkstemp(prefix="genreseg-upload-", suffix=temp_suffix(name), dir=self.tmp_dir)
        self._file = os.fdopen(fd, "wb")
        self.upload = Upload(Path(path), name, 0)

    def on_part_data(self, data, start, end):
        if self._file is None:
            return
        self.upload.size += end - start
        if self.upload.size > self.max_bytes:
            raise _too_large(self.max_bytes)
        self._file.write(data[start:end])

    def on_part_end(self):
        self.close()

    def on_end(self):
        self.complete = True

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def callbacks(self) -> dict:
        names = ("on_part_begin", "on_header_field", "on_header_value", "on_header_end",
                 "on_headers_finished", "on_part_data", "on_part_end", "on_end")
        return {n: getattr(self, n) for n in names}


async def receive_upload(request, max_bytes: int, tmp_dir: str | None = None) -> Upload:
    """Stream the one audio file of a ``multipart/form-data`` request to a temporary file.

    Parameters
    ----------
    request : starlette.requests.Request
    max_bytes : int
        Largest file accepted.
    tmp_dir : str, optional
        Where the temporary file goes (default: the system's).

    Returns
    -------
    Upload
        The caller deletes it (:meth:`Upload.delete`).

    Raises
    ------
    fastapi.HTTPException
        415 not multipart; 413 over ``max_bytes``; 422 a file type the decoder does not
        take; 400 no file, several files, a malformed body, or a client gone before the
        end. Nothing is left on disk.
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise HTTPException(415, "send the audio file as multipart/form-data "
                                 "(e.g. curl -F file=@song.mp3 http://127.0.0.1:8000/predict)")
    body_limit = max_bytes + ENVELOPE_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > body_limit:
        raise _too_large(max_bytes)  # refused before a byte of the body is read
    receiver = _Receiver(max_bytes, tmp_dir)
    try:
        parser = MultipartParser(params[b"boundary"], receiver.callbacks())
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise _too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
        receiver.close()
        if receiver.upload is not None and not receiver.complete:
            raise HTTPException(400, "incomplete multipart body (no closing boundary): the upload was cut short")
        if receiver.upload is None:
            raise HTTPException(400, "no file in the request: send one audio file as a multipart "
                                     "field with a file name (e.g. curl -F file=@song.mp3 ...)")
        return receiver.upload
    except BaseException as err:
        receiver.close()
        if receiver.upload is not None:
            receiver.upload.delete()
        if isinstance(err, MultipartParseError):
            raise HTTPException(400, f"malformed multipart body ({err})") from None
        if isinstance(err, ClientDisconnect):  # routine: an answer nobody reads, not a traceback
            raise HTTPException(400, "the client disconnected before the upload was complete") from None
        raise
