"""Write audio with FFmpeg's encoders (through PyAV): MP3, AAC, ALAC, Opus, Vorbis, WMA, FLAC.

Used to build format-compatibility corpora (the tests, ``benchmarks/decode.py``) from
real audio, and usable to convert a collection. Frames carry timestamps, so muxers
record encoder delay as real encoders do (an MP4 edit list, a LAME header); the tags
other tools write (ID3v2 with cover art, iTunes' gapless atom) are added here.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: FFmpeg's lambda per quality step (FF_QP2LAMBDA): ``global_quality = q * this``.
_QP2LAMBDA = 118

_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


@dataclass(frozen=True)
class Encoding:
    """How to encode: codec, container and their options.

    Parameters
    ----------
    codec : str
        FFmpeg encoder name (``libmp3lame``, ``aac``, ``alac``, ``libopus``, ``vorbis``,
        ``wmav2``, ``flac``, ``pcm_s16le``...).
    container : str
        FFmpeg muxer name (``mp3``, ``mp4``, ``ipod``, ``ogg``, ``asf``, ``flac``, ``wav``...).
    bit_rate : int, optional
        Constant bit rate in bit/s.
    vbr_quality : float, optional
        Variable bit rate quality (LAME's ``-V`` scale for ``libmp3lame``).
    codec_options, container_options : dict
        Passed to FFmpeg as they are (e.g. ``{"write_xing": "0"}`` for ``mp3``).
    metadata : dict
        Container tags.
    """

    codec: str
    container: str
    bit_rate: int | None = None
    vbr_quality: float | None = None
    codec_options: dict = field(default_factory=dict)
    container_options: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def write_audio(path, signal: np.ndarray, sample_rate: int, encoding: Encoding, block: int = 1 << 14) -> Path:
    """Encode ``signal`` into ``path``.

    Parameters
    ----------
    path : path-like
    signal : np.ndarray, shape (n,) or (n, channels)
        Float samples in [-1, 1]; 1, 2 or 6 channels.
    sample_rate : int
    encoding : Encoding
    block : int
        Samples handed to the encoder at a time.

    Returns
    -------
    Path
    """
    import av

    x = np.asarray(signal, np.float32)
    x = x[:, None] if x.ndim == 1 else x
    layout = _LAYOUTS[x.shape[1]]
    path = Path(path)
    options = {k: str(v) for k, v in encoding.codec_options.items()}
    if encoding.vbr_quality is not None:
        # As ffmpeg's -q:a: the quality flag, and the quality in FFmpeg's lambda units.
        # (Set through the options: PyAV's qscale/global_quality attributes do not reach LAME.)
        options.update(flags="+qscale", global_quality=str(int(round(encoding.vbr_quality * _QP2LAMBDA))))
    with av.open(str(path), "w", format=encoding.container,
                 options={k: str(v) for k, v in encoding.container_options.items()}) as out:
        out.metadata.update(encoding.metadata)
        stream = out.add_stream(encoding.codec, rate=sample_rate, layout=layout, options=options)
        ctx = stream.codec_context
        if encoding.bit_rate:
            stream.bit_rate = encoding.bit_rate
        resampler = av.AudioResampler(format=ctx.format.name, layout=layout, rate=sample_rate,
                                      frame_size=ctx.frame_size or None)
        time_base = fractions.Fraction(1, sample_rate)
        pts = 0

        def mux(frames) -> None:
            nonlocal pts
            for frame in frames:
                frame.pts, frame.time_base = pts, time_base
                pts += frame.samples
                for packet in stream.encode(frame):
                    out.mux(packet)

        for start in range(0, len(x), block):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[start:start + block].T), format="fltp",
                                               layout=layout)
            frame.sample_rate = sample_rate
            mux(resampler.resample(frame))
        mux(resampler.resample(None))
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def id3v2_tag(version: int = 3, title: str = "genreseg test", cover: bytes | None = None) -> bytes:
    """An ID3v2.3 or v2.4 tag with a title frame and, optionally, front-cover art (APIC).

    Prepended to an MP3 it is what tagging tools write: a tag of tens or hundreds of
    kilobytes before the first audio frame.
    """
    if version not in (3, 4):
        raise ValueError(f"ID3v2 version must be 3 or 4, got {version}")

    def size_bytes(n: int, synchsafe: bool) -> bytes:
        if synchsafe:
            return bytes(((n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F))
        return n.to_bytes(4, "big")

    def frame(frame_id: bytes, body: bytes) -> bytes:
        # v2.4 frame sizes are synchsafe; v2.3's are plain 32-bit integers.
        return frame_id + size_bytes(len(body), version == 4) + b"\x00\x00" + body

    frames = frame(b"TIT2", b"\x00" + title.encode("latin-1"))
    if cover is not None:
        frames += frame(b"APIC", b"\x00image/png\x00\x03cover\x00" + cover)
    return b"ID3" + bytes((version, 0, 0)) + size_bytes(len(frames), True) + frames


def add_itunes_gapless(path, delay: int, padding: int, original: int) -> None:
    """Write iTunes' gapless tag (``----:com.apple.iTunes:iTunSMPB``) into an MP4 file, as iTunes does.

    The file must have its ``moov`` after ``mdat`` (FFmpeg's default) and a
    ``moov/udta/meta/ilst`` box (any tag, e.g. a title, makes FFmpeg write one), so that
    growing ``moov`` moves no sample data.
    """
    path = Path(path)
    raw = bytearray(path.read_bytes())
    chain, start, end = [], 0, len(raw)
    for name in (b"moov", b"udta", b"meta", b"ilst"):
        for offset, size, kind in _boxes(raw, start, end):
            if kind == name:
                chain.append(offset)
                start, end = offset + 8 + (4 if name == b"meta" else 0), offset + size  # meta has a version
                break
        else:
            raise ValueError(f"{path}: no {name.decode()} box on the way to ilst")
    if any(kind == b"mdat" and offset > chain[0] for offset, _, kind in _boxes(raw, 0, len(raw))):
        raise ValueError(f"{path}: moov comes before mdat; adding to it would move the samples")
    value = f" 00000000 {delay:08X} {padding:08X} {original:016X}".encode()
    atom = _box(b"----", _box(b"mean", b"\0\0\0\0com.apple.iTunes") + _box(b"name", b"\0\0\0\0iTunSMPB")
                + _box(b"data", b"\0\0\0\x01\0\0\0\0" + value))
    raw[end:end] = atom  # at the end of ilst
    for offset in chain:  # every box that holds it grows by as much
        raw[offset:offset + 4] = (int.from_bytes(raw[offset:offset + 4], "big") + len(atom)).to_bytes(4, "big")
    path.write_bytes(bytes(raw))


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def _boxes(raw, start: int, end: int):
    """``(offset, size, kind)`` of the MP4 boxes from ``start`` to ``end`` (32-bit sizes)."""
    offset = start
    while offset + 8 <= end:
        size = int.from_bytes(raw[offset:offset + 4], "big")
        if size < 8:
            return
        yield offset, size, bytes(raw[offset + 4:offset + 8])
        offset += size
