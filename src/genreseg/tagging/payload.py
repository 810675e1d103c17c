"""Where the audio lies in a file, and a fingerprint of it that ignores the tags.

Tagging must never touch the audio. To check that, :func:`audio_fingerprint` hashes
what a tag writer has no business changing, by one of two methods:

``payload``
    MP3, FLAC, WAV and AIFF keep their tags in regions apart from the audio, so the
    audio is one contiguous byte range, found here without decoding
    (:func:`payload_span`): MP3, the bytes after the ID3v2 tag and before the trailing
    tags (ID3v1, APEv2, Lyrics3v2); FLAC, the frames after the last metadata block
    (with the STREAMINFO block hashed too); WAV and AIFF, the ``data`` / ``SSND``
    chunk body (with the ``fmt `` / ``COMM`` chunk hashed too). Exact to the byte.
    The bytes outside that range (the "head" and "tail") are what the undo log keeps
    to restore such a file byte for byte.
``packets``
    MP4/M4A, Ogg (Vorbis, Opus) and ASF (WMA) interleave tags with the container's
    own tables, and a tag writer may legitimately move the audio (MP4 ``stco``
    offsets, Ogg page numbers and checksums, ASF header size). For them (and any
    other file FFmpeg opens) the fingerprint hashes the compressed audio packets as
    FFmpeg's demuxer reads them (through PyAV): each packet's stream, timestamps,
    duration and bytes, plus each audio stream's codec, rate and channel count. It
    does not decode, so it is fast and bit-exact, and as the packets are found
    through the container's tables, a tag writer that broke those tables would
    change it. Codec extradata is left out: Vorbis keeps its comment header (the
    tags) there.

Only the few structures needed to find the byte range are parsed here (ID3v2 header
size, trailing-tag footers, FLAC metadata block headers, RIFF/IFF chunk headers);
tags themselves are read and written by mutagen only.
"""

from __future__ import annotations

import hashlib
import os
import struct

from ..errors import AudioError

__all__ = ["BYTE_EXACT_KINDS", "audio_fingerprint", "file_sha256", "payload_span", "split_around_payload"]

#: Kinds whose audio is one contiguous byte range (and whose undo is byte for byte).
BYTE_EXACT_KINDS = ("mp3", "flac", "wav", "aiff")

_BLOCK = 1 << 20


def file_sha256(path) -> str:
    """SHA-256 (64 hex digits) of the file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _id3v2_end(fh) -> int:
    """Size of an ID3v2 tag at the start of the file (0 when there is none)."""
    fh.seek(0)
    head = fh.read(10)
    if len(head) == 10 and head[:3] == b"ID3" and head[3] < 0xFF and all(b < 0x80 for b in head[6:10]):
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        return 10 + size + (10 if head[5] & 0x10 else 0)  # flag 0x10: a footer follows
    return 0


def _read_at(fh, offset: int, n: int) -> bytes:
    fh.seek(offset)
    return fh.read(n)


def _trailer_start(fh, start: int, end: int) -> int:
    """Where the tags at the end of an MP3 (or FLAC) file begin: ID3v1, APEv2, Lyrics3v2, in any order."""
    while True:
        if end - 128 >= start and _read_at(fh, end - 128, 3) == b"TAG":
            end -= 128
            continue
        if end - 32 >= start and _read_at(fh, end - 32, 8) == b"APETAGEX":
            footer = _read_at(fh, end - 32, 32)
            size, _, flags = struct.unpack("<III", footer[12:24])
            total = size + (32 if flags & 0x80000000 else 0)  # size counts items and footer, not header
            if 32 <= total <= end - start:
                end -= total
                continue
        if end - 15 >= start and _read_at(fh, end - 9, 9) == b"LYRICS200":
            digits = _read_at(fh, end - 15, 6)
            if digits.isdigit():
                total = int(digits) + 15  # the size counts from LYRICSBEGIN to the last field
                if total <= end - start and _read_at(fh, end - total, 11) == b"LYRICSBEGIN":
                    end -= total
                    continue
        return end


def _flac_span(fh, size: int) -> tuple[int, int, bytes]:
    start = _id3v2_end(fh)
    if _read_at(fh, start, 4) != b"fLaC":
        raise ValueError("no fLaC marker")
    pos, streaminfo = start + 4, b""
    while True:
        header = _read_at(fh, pos, 4)
        if len(header) < 4:
            raise ValueError("metadata blocks run past the end of the file")
        length = int.from_bytes(header[1:4], "big")
        if header[0] & 0x7F == 0:
            streaminfo = _read_at(fh, pos + 4, length)
        pos += 4 + length
        if header[0] & 0x80:  # the last metadata block
            break
    if pos > size:
        raise ValueError("metadata blocks run past the end of the file")
    return pos, _trailer_start(fh, pos, size), streaminfo


def _iff_span(fh, size: int, big_endian: bool, fmt_id: bytes, data_id: bytes) -> tuple[int, int, bytes]:
    pos, fmt, data = 12, b"", None
    while pos + 8 <= size:
        cid, length = struct.unpack(">4sI" if big_endian else "<4sI", _read_at(fh, pos, 8))
        if cid == fmt_id:
            fmt = _read_at(fh, pos + 8, length)
        elif cid == data_id:
            data = (pos + 8, min(pos + 8 + length, size))
        pos += 8 + length + (length & 1)  # bodies are padded to even sizes
    if data is None:
        raise ValueError(f"no {data_id.decode().strip()} chunk")
    return data[0], data[1], fmt


def _span(fh, kind: str) -> tuple[int, int, bytes]:
    size = fh.seek(0, os.SEEK_END)
    if kind == "mp3":
        start = _id3v2_end(fh)
        return start, _trailer_start(fh, start, size), b""
    if kind == "flac":
        return _flac_span(fh, size)
    head = _read_at(fh, 0, 12)
    if kind == "wav" and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _iff_span(fh, size, False, b"fmt ", b"data")
    if kind == "aiff" and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _iff_span(fh, size, True, b"COMM", b"SSND")
    raise ValueError(f"not a {kind} file")


def payload_span(path, kind: str) -> tuple[int, int]:
    """``(start, end)``: the byte range of the audio in an MP3, FLAC, WAV or AIFF file.

    Parameters
    ----------
    path : path-like
    kind : {"mp3", "flac", "wav", "aiff"}

    Returns
    -------
    tuple of int
        Everything before ``start`` and from ``end`` on is container header and tags.

    Raises
    ------
    ValueError
        The file is not laid out as a ``kind`` file.
    """
    with open(path, "rb") as fh:
        start, end, _ = _span(fh, kind)
    return start, end


def split_around_payload(path, kind: str) -> tuple[bytes, tuple[int, int], bytes]:
    """``(head, (start, end), tail)``: the bytes before and after the audio, and its range."""
    with open(path, "rb") as fh:
        start, end, _ = _span(fh, kind)
        head = _read_at(fh, 0, start)
        tail = _read_at(fh, end, fh.seek(0, os.SEEK_END) - end)
    return head, (start, end), tail


def _payload_digest(path, kind: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        start, end, header = _span(fh, kind)
        h.update(len(header).to_bytes(8, "little") + header)
        fh.seek(start)
        left = end - start
        while left > 0:
            block = fh.read(min(_BLOCK, left))
            if not block:
                break
            h.update(block)
            left -= len(block)
    return h.hexdigest()


def _packets_digest(path) -> str:
    import av

    h = hashlib.sha256()
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise ValueError("no audio stream")
        for s in streams:
            ctx = s.codec_context
            h.update(f"{s.index}:{ctx.name}:{ctx.sample_rate}:{ctx.layout.nb_channels};".encode())
        for packet in container.demux(streams):
            if packet.size == 0:  # the end-of-stream marker
                continue
            stamps = [-1 if v is None else int(v) for v in (packet.pts, packet.dts, packet.duration)]
            h.update(struct.pack("<i3q", packet.stream.index, *stamps))
            h.update(bytes(packet))
    return h.hexdigest()


def audio_fingerprint(path, kind: str | None = None) -> str:
    """A hash of a file's audio that tag changes leave alone.

    Parameters
    ----------
    path : path-like
    kind : str, optional
        The container as :func:`genreseg.tagging.detect_format` names it; detected
        when not given. ``"mp3"``, ``"flac"``, ``"wav"`` and ``"aiff"`` are hashed by
        their payload bytes, everything else by its demuxed packets (see the module
        docstring for what each covers and why).

    Returns
    -------
    str
        ``"payload:<sha256 hex>"`` or ``"packets:<sha256 hex>"``; fingerprints made by
        different methods never compare equal.

    Raises
    ------
    genreseg.errors.AudioError
        The file cannot be read, or holds no audio FFmpeg can demux.

    Examples
    --------
    >>> before = audio_fingerprint("song.flac")            # doctest: +SKIP
    >>> # ... retag song.flac with any tool ...
    >>> audio_fingerprint("song.flac") == before           # doctest: +SKIP
    True
    """
    if kind is None:
        from .containers import Untaggable, detect_format

        try:
            kind = detect_format(path)
        except Untaggable:
            kind = None
    try:
        if kind in BYTE_EXACT_KINDS:
            return "payload:" + _payload_digest(path, kind)
        return "packets:" + _packets_digest(path)
    except OSError as err:
        raise AudioError(path, f"cannot read file ({err.strerror or err})") from None
    except Exception as err:  # PyAV's errors, a malformed layout
        reason = " ".join(str(err).split()) or type(err).__name__
        raise AudioError(path, f"cannot fingerprint the audio ({reason})") from None
