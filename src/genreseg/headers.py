"""What audio files state about their own length, read from their headers without decoding.

A length is only evidence of truncation where the file states it: the data size of a
WAV, RF64, Wave64 or AU file, an AIFF ``COMM`` frame count, the Xing/Info/VBRI frame
count of an MP3, the play duration of an ASF (WMA) file, iTunes' ``iTunSMPB`` tag.
Each function here reads one of those; none decodes audio. All return None (or
False) when the file does not state the figure, and never raise for odd bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

#: A RIFF data size that means "unknown": streaming writers leave 0 or 0xFFFFFFFF.
UNKNOWN_SIZES = (0, 0xFFFFFFFF)

_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_ASF_FILE_PROPERTIES = bytes.fromhex("a1dcab8c47a9cf118ee400c00c205365")


def container_kind(path: Path) -> str | None:
    """``"riff"``, ``"rf64"``, ``"w64"``, ``"aiff"``, ``"au"`` or ``"flac"`` from the first bytes, else None."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "riff"
    if head[:4] in (b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "rf64"
    if head[:4] == b"riff":
        return "w64"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b".snd":
        return "au"
    if head[:4] == b"fLaC":
        return "flac"
    return None


def _chunks(fh, start: int, end: int, *, id_size: int = 4, big_endian: bool = False, align: int = 2,
            size_counts_header: bool = False):
    """``(chunk_id, body_offset, body_size)`` of the chunks from ``start`` to ``end``.

    RIFF and AIFF: 4-byte ids and 32-bit sizes (little- and big-endian), bodies padded
    to even lengths. Wave64: 16-byte GUIDs and 64-bit sizes that count the 24-byte
    header, padded to 8.
    """
    size_format = (">" if big_endian else "<") + ("Q" if id_size == 16 else "I")
    header = id_size + struct.calcsize(size_format)
    offset = start
    while offset + header <= end:
        fh.seek(offset)
        raw = fh.read(header)
        if len(raw) < header:
            return
        chunk_id, (size,) = raw[:id_size], struct.unpack(size_format, raw[id_size:])
        body = size - header if size_counts_header else size
        if body < 0:
            return
        yield chunk_id, offset + header, body
        offset += header + body + (-body % align)


def pcm_data_sizes(path: Path) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of sample data of a WAV, RF64, Wave64 or AU file, else None.

    ``declared`` is the header's own figure (for RIFF, 0 or 0xFFFFFFFF mean unknown, see
    :data:`UNKNOWN_SIZES`); ``present`` is what the file holds from the start of the data.
    """
    path = Path(path)
    kind, size = container_kind(path), path.stat().st_size
    with open(path, "rb") as fh:
        if kind == "au":
            fh.seek(4)
            raw = fh.read(8)
            if len(raw) < 8:
                return None
            data_offset, data_size = struct.unpack(">II", raw)
            return data_size, size - data_offset
        if kind in ("riff", "rf64"):
            ds64_data_size = None
            for chunk_id, body, body_size in _chunks(fh, 12, size):
                if chunk_id == b"ds64":  # RF64: the real 64-bit sizes (riff, data, sample count)
                    fh.seek(body)
                    raw = fh.read(16)
                    ds64_data_size = struct.unpack("<QQ", raw)[1] if len(raw) == 16 else None
                elif chunk_id == b"data":
                    declared = ds64_data_size if kind == "rf64" and ds64_data_size is not None else body_size
                    return declared, size - body
            return None
        if kind == "w64":
            for chunk_id, body, body_size in _chunks(fh, 40, size, id_size=16, align=8, size_counts_header=True):
                if chunk_id[:4] == b"data":
                    return body_size, size - body
    return None


def aiff_frames(path: Path) -> int | None:
    """Sample frames an AIFF/AIFC ``COMM`` chunk declares, or None."""
    path = Path(path)
    if container_kind(path) != "aiff":
        return None
    with open(path, "rb") as fh:
        for chunk_id, body, body_size in _chunks(fh, 12, path.stat().st_size, big_endian=True):
            if chunk_id == b"COMM" and body_size >= 6:
                fh.seek(body)
                return int.from_bytes(fh.read(6)[2:6], "big")
    return None


def mp3_has_frame_count(path: Path) -> bool:
    """True when the first MPEG audio frame carries a Xing, Info or VBRI header.

    Those headers state the stream's exact frame count; without one a length can only
    be estimated from the file size.
    """
    with open(path, "rb") as fh:
        start = 0
        while True:  # one or more ID3v2 tags before the audio
            fh.seek(start)
            head = fh.read(10)
            if head[:3] != b"ID3" or len(head) < 10:
                break
            start += 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]) + (10 if head[5] & 0x10 else 0)
        fh.seek(start)
        window = fh.read(64 * 1024)
    for i in range(len(window) - 4):
        if window[i] == 0xFF and (window[i + 1] & 0xE0) == 0xE0:
            # The tag sits after the side information: 4 + 32, 17 or 9 bytes depending on
            # MPEG version and channel mode; VBRI always at 36. Looking at all of them is
            # simpler than decoding the frame header and as exact.
            frame = window[i:i + 200]
            return any(frame[o:o + 4] in (b"Xing", b"Info") for o in (13, 21, 36)) or frame[36:40] == b"VBRI"
    return False


def asf_duration(path: Path) -> float | None:
    """Seconds of audio an ASF (WMA) File Properties object states: play duration less preroll.

    None for other files, and for broadcast files, whose durations are not filled in.
    """
    with open(path, "rb") as fh:
        head = fh.read(30)
        if head[:16] != _ASF_HEADER:
            return None
        offset, end = 30, 24 + min(struct.unpack("<Q", head[16:24])[0], 1 << 24)
        while offset + 24 <= end:
            fh.seek(offset)
            raw = fh.read(24)
            obj_id, (obj_size,) = raw[:16], struct.unpack("<Q", raw[16:24])
            if obj_id == _ASF_FILE_PROPERTIES:
                body = fh.read(68)  # file id, size, date, packets, play, send, preroll, flags
                if len(body) < 68:
                    return None
                play, _send, preroll, flags = struct.unpack("<QQQI", body[40:68])
                if flags & 1:  # broadcast: durations are not valid
                    return None
                return play * 1e-7 - preroll * 1e-3
            if obj_size < 24:
                return None
            offset += obj_size
    return None


def itunes_gapless(metadata: dict) -> tuple[int, int, int] | None:
    """``(delay, padding, original_frames)`` from an ``iTunSMPB`` tag, or None.

    The tag is hexadecimal fields: ``0 delay padding original ...``.
    """
    value = next((v for k, v in metadata.items() if k.lower() == "itunsmpb"), None)
    if value is None:
        return None
    try:
        fields = [int(f, 16) for f in str(value).split()]
    except ValueError:
        return None
    if len(fields) < 4 or fields[3] <= 0:
        return None
    return fields[1], fields[2], fields[3]
