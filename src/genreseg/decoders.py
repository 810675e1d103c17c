"""Decoders: a file's samples at its own rate, block by block, with an honest end.

Two decoders share one interface (:func:`open_decoder`):

* **libsndfile** (soundfile) for PCM containers (WAV, WAVE64, RF64, AIFF, AU) and FLAC,
  whose headers give exact lengths;
* **FFmpeg** (PyAV) for everything else a music library holds: MP3, AAC/ALAC in
  M4A/MP4, Opus, Vorbis, WMA, WebM/Matroska, and PCM whose header leaves the length
  open (a WAV written to a pipe).

Each yields ``(n, channels)`` float32 blocks until the decoder reports the end of the
stream; a short read is never taken for the end. Whether a file is **truncated** is
decided only where the file states its exact length:

* a WAV/AU data chunk, or an AIFF ``COMM`` frame count, larger than what is on disk;
* a FLAC whose STREAMINFO total is not reached;
* an MP3 with a Xing/Info/VBRI frame count, an M4A/MP4 sample table, an ASF (WMA)
  or Matroska duration, that decoding falls short of by more than two codec frames;
* any decoder error in mid-stream (reported with the time at which it happened).

Where the length is only an estimate (an MP3 without a Xing header, whose length
libsndfile and FFmpeg guess from the file size; Ogg, whose last page is its own
length) a file cut short cannot be told from a short file, and is not guessed at.
A damaged file is refused, never decoded up to the damage: a store must not hold
half a track as if it were whole.

Gapless: FFmpeg removes MP3 encoder delay and padding from the LAME header, and AAC
priming from an MP4 edit list; we add iTunes' ``iTunSMPB`` tag (delay, padding and
original length of AAC from iTunes and other encoders that write no edit list), and
never return more samples than an exact declared length.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .errors import AudioError

#: libsndfile formats whose lengths are exact; every other file goes to FFmpeg.
SOUNDFILE_FORMATS = frozenset({"WAV", "WAVEX", "W64", "RF64", "AIFF", "AU", "FLAC"})

#: FFmpeg demuxers whose declared stream duration is written by the muxer, not
#: estimated (the key is FFmpeg's format name).
EXACT_LENGTH_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2", "asf", "matroska,webm")

#: A WAV data chunk size that means "unknown": streaming writers leave 0 or 0xFFFFFFFF.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def open_decoder(path: Path, block_frames: int):
    """The decoder for ``path``: libsndfile where lengths are exact, FFmpeg otherwise.

    Parameters
    ----------
    path : Path
        An existing, readable, non-empty file.
    block_frames : int
        Frames per yielded block (at the file's rate; the last block may be shorter).

    Returns
    -------
    SoundfileDecoder or FFmpegDecoder
        With ``rate``, ``channels``, ``codec`` and ``declared_frames`` (the exact
        length in frames, or None) set, and :meth:`blocks` to iterate.

    Raises
    ------
    AudioError
        The file is neither (not audio, or damaged beyond opening).
    """
    import soundfile as sf

    try:
        kind = sf.info(str(path)).format
    except Exception:  # noqa: BLE001 - libsndfile does not know it: FFmpeg may
        kind = None
    sizes = pcm_data_sizes(path)
    if kind in SOUNDFILE_FORMATS and (sizes is None or sizes[0] not in _UNKNOWN_SIZES):
        return SoundfileDecoder(path, block_frames)
    return FFmpegDecoder(path, block_frames)


def pcm_data_sizes(path: Path) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of sample data of a RIFF/WAVE or AU file, else None.

    ``declared`` is the header's own figure (0 or 0xFFFFFFFF: unknown, as a writer to a
    pipe leaves it); ``present`` is what the file holds after the header.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            offset = 12
            while offset + 8 <= size:
                fh.seek(offset)
                chunk_id, chunk_size = fh.read(4), int.from_bytes(fh.read(4), "little")
                if chunk_id == b"data":
                    return chunk_size, size - offset - 8
                offset += 8 + chunk_size + (chunk_size & 1)
        elif head[:4] == b".snd" and len(head) == 12:
            data_offset, data_size = struct.unpack(">II", head[4:12])
            return data_size, size - data_offset
    return None


def _aiff_frames(path: Path) -> int | None:
    """Sample frames an AIFF/AIFC ``COMM`` chunk declares, or None."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
            return None
        offset = 12
        while offset + 8 <= size:
            fh.seek(offset)
            chunk_id, chunk_size = fh.read(4), int.from_bytes(fh.read(4), "big")
            if chunk_id == b"COMM":
                body = fh.read(6)
                return int.from_bytes(body[2:6], "big") if len(body) == 6 else None
            offset += 8 + chunk_size + (chunk_size & 1)
    return None


class SoundfileDecoder:
    """PCM and FLAC through libsndfile (exact lengths, any sample format and channel count)."""

    def __init__(self, path: Path, block_frames: int):
        import soundfile as sf

        self.path, self.block_frames = path, block_frames
        # libsndfile silently shortens a truncated WAV or AU to what is on disk: the
        # header's own size is the evidence.
        sizes = pcm_data_sizes(path)
        if sizes is not None and sizes[1] < sizes[0]:
            raise AudioError(path, f"truncated: header declares {sizes[0]} bytes of samples, file holds {sizes[1]}")
        try:
            self._file = sf.SoundFile(str(path))
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            raise AudioError(path, f"not audio or corrupt ({getattr(err, 'error_string', err)})") from None
        self.rate, self.channels = self._file.samplerate, self._file.channels
        self.codec = f"{self._file.format}/{self._file.subtype}".lower()
        if self._file.format == "FLAC":
            # STREAMINFO's total; 0 means the encoder did not know it.
            self.declared_frames = self._file.frames or None
        elif self._file.format == "AIFF":
            self.declared_frames = _aiff_frames(path)
        else:
            self.declared_frames = None  # checked in bytes, above

    def close(self) -> None:
        self._file.close()

    def blocks(self):
        """``(n, channels)`` float32 blocks until libsndfile reads nothing more."""
        import soundfile as sf

        decoded = 0
        while True:
            try:
                data = self._file.read(self.block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                raise AudioError(self.path, f"damaged or truncated: decoding fails at {decoded / self.rate:.1f} s "
                                            f"({getattr(err, 'error_string', err)})") from None
            if not len(data):
                break
            decoded += len(data)
            yield data
        if self.declared_frames and decoded < self.declared_frames:
            raise AudioError(self.path, f"truncated: header declares {self.declared_frames} samples, "
                                        f"file holds {decoded}")


def mp3_has_frame_count(path: Path) -> bool:
    """True when the first MPEG audio frame carries a Xing, Info or VBRI header.

    Those headers state the stream's exact frame count; without one the length is
    estimated from the file size.
    """
    with open(path, "rb") as fh:
        head = fh.read(10)
        start = 0
        if head[:3] == b"ID3" and len(head) == 10:
            # ID3v2 size: four 7-bit bytes, plus the 10-byte header (and a footer if flagged).
            start = 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]) + (10 if head[5] & 0x10 else 0)
        fh.seek(start)
        window = fh.read(64 * 1024)
    for i in range(len(window) - 4):
        if window[i] == 0xFF and (window[i + 1] & 0xE0) == 0xE0:
            # The tag sits after the side information: 4 + 32/17/17/9 bytes depending on
            # MPEG version and channel mode; VBRI always at 36. Looking at all four is cheaper
            # than decoding the header and just as exact.
            frame = window[i:i + 200]
            return any(frame[o:o + 4] in (b"Xing", b"Info") for o in (13, 21, 36)) or frame[36:40] == b"VBRI"
    return False


def itunes_gapless(metadata: dict) -> tuple[int, int, int] | None:
    """``(delay, padding, original_frames)`` from an ``iTunSMPB`` tag, or None.

    The tag is hexadecimal fields: ``0 delay padding original ...``.
    """
    value = next((v for k, v in metadata.items() if k.lower() == "itunsmpb"), None)
    try:
        fields = [int(f, 16) for f in str(value).split()]
    except ValueError:
        return None
    if value is None or len(fields) < 4 or fields[3] <= 0:
        return None
    return fields[1], fields[2], fields[3]


def _frame_to_array(frame) -> np.ndarray:
    """An FFmpeg audio frame as ``(n, channels)`` float32 in [-1, 1]."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed: one row of interleaved samples
        data = data.reshape(-1, channels).T
    if data.dtype.kind == "f":
        data = data.astype(np.float32, copy=False)
    elif data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128.0) / 128.0
    else:
        data = data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    return data.T


class FFmpegDecoder:
    """Any audio FFmpeg reads, through PyAV; the first audio stream of the file."""

    def __init__(self, path: Path, block_frames: int):
        import av

        self.path, self.block_frames = path, block_frames
        try:
            self._container = av.open(str(path), metadata_errors="ignore")
        except av.FFmpegError as err:
            raise AudioError(path, f"not audio or corrupt ({_ffmpeg_reason(err)})") from None
        streams = self._container.streams.audio
        if not streams:
            kinds = sorted({s.type for s in self._container.streams}) or ["nothing"]
            self._container.close()
            raise AudioError(path, f"no audio stream (the file holds {', '.join(kinds)})")
        self._stream = stream = streams[0]
        ctx = stream.codec_context
        self.rate, self.channels, self.codec = ctx.sample_rate, ctx.channels, ctx.name
        if self.rate <= 0:
            self._container.close()
            raise AudioError(path, f"invalid sample rate {self.rate}")
        declared = None
        if stream.duration and stream.time_base and self._length_is_exact():
            declared = int(round(stream.duration * stream.time_base * self.rate))
        self.skip = 0
        gapless = itunes_gapless({**self._container.metadata, **stream.metadata})
        if gapless is not None:
            delay, _padding, original = gapless
            # An MP4 edit list already trims the priming (FFmpeg applies it); otherwise
            # the stream still holds delay + original + padding frames and we trim them.
            if declared is None or abs(declared - original) > self._frame_tolerance():
                self.skip = delay
            declared = original
        self.declared_frames = declared

    def _length_is_exact(self) -> bool:
        name = self._container.format.name
        if name == "mp3":
            return mp3_has_frame_count(self.path)
        return name in EXACT_LENGTH_FORMATS

    def _frame_tolerance(self) -> int:
        """Two codec frames (2048 samples when the codec does not say): the most that
        encoder padding and an encoder's rounding of a declared duration may differ."""
        return 2 * max(self._stream.codec_context.frame_size or 0, 1024)

    def close(self) -> None:
        self._container.close()

    def _frames(self):
        import av

        decoded = 0
        try:
            for packet in self._container.demux(self._stream):
                for frame in packet.decode():
                    if frame.sample_rate != self.rate:
                        raise AudioError(self.path, f"sample rate changes from {self.rate} to "
                                                    f"{frame.sample_rate} Hz at {decoded / self.rate:.1f} s")
                    data = _frame_to_array(frame)
                    decoded += len(data)
                    yield data
        except av.FFmpegError as err:
            where = f"at {decoded / self.rate:.1f} s"
            if self.declared_frames is not None:
                # A cut file fails where its data ends, short of what its header declares.
                where += f" of the {self.declared_frames / self.rate:.1f} s its header declares"
            raise AudioError(self.path, f"damaged or truncated: decoding fails {where} "
                                        f"({_ffmpeg_reason(err)})") from None

    def blocks(self):
        """``(n, channels)`` float32 blocks of about ``block_frames`` until the stream ends.

        Channel counts may change between frames (some AAC streams switch between mono
        and stereo); each block is downmixed consistently by the caller, so a change
        starts a new block.
        """
        pending, pending_frames = [], 0
        to_skip, remaining = self.skip, self.declared_frames
        decoded = 0
        for data in self._frames():
            decoded += len(data)
            if to_skip:
                cut = min(to_skip, len(data))
                data, to_skip = data[cut:], to_skip - cut
            if remaining is not None:
                # Never more than an exact declared length: the rest is encoder padding.
                data = data[:remaining]
                remaining -= len(data)
            if not len(data):
                continue
            if pending and pending[0].shape[1] != data.shape[1]:
                yield np.concatenate(pending)
                pending, pending_frames = [], 0
            pending.append(data)
            pending_frames += len(data)
            if pending_frames >= self.block_frames:
                yield np.concatenate(pending)
                pending, pending_frames = [], 0
        if pending:
            yield np.concatenate(pending)
        if self.declared_frames is not None:
            got = decoded - self.skip
            if got < self.declared_frames - self._frame_tolerance():
                raise AudioError(self.path, f"truncated: the {self._container.format.name.split(',')[0]} header "
                                            f"declares {self.declared_frames / self.rate:.1f} s, the file decodes "
                                            f"to {max(got, 0) / self.rate:.1f} s")


def _ffmpeg_reason(err) -> str:
    """FFmpeg's own words for an error, without the file name PyAV appends."""
    return (getattr(err, "strerror", None) or str(err)).strip()
