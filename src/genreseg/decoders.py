"""Decoders: a file's samples at its own rate, block by block, with an honest end.

Two decoders share one interface (:func:`open_decoder`):

* **libsndfile** (soundfile) for PCM in WAV, RF64, Wave64, AIFF and AU, and for FLAC
  that states its length;
* **FFmpeg** (PyAV) for everything else a music library holds: MP3, AAC/ALAC in
  M4A/MP4, Opus, Vorbis, WMA, WebM/Matroska, and the files above whose header leaves
  the length open (a WAV written to a pipe, a FLAC encoded from a stream).

Each yields ``(n, channels)`` float32 blocks until the decoder reports the end of the
stream; a short read is never taken for the end. Whether a file is **truncated** is
decided only where the file states its exact length (:mod:`genreseg.headers`):

* a WAV/RF64/Wave64/AU data size, or an AIFF ``COMM`` frame count, larger than what
  is on disk;
* a FLAC STREAMINFO total, an MP3 Xing/Info/VBRI frame count, an M4A/MP4 sample
  table, an ASF (WMA) play duration or a Matroska/WebM duration that decoding falls
  short of (by more than two codec frames for lossy codecs).

A decoder error in mid-stream, with audio decoding again after it, is **damage**: the
file is refused with the time of the error, never decoded up to the damage (a store
must not hold half a track as if it were whole). Undecodable bytes after the last
audio (trailing tags, padding, or the cut end of a truncated file) end the stream;
the length check above then decides. Where the length is only an estimate (an MP3
without a Xing header; Ogg, whose last page is its own length) a file cut short
cannot be told from a short file, and is not guessed at.

Gapless: FFmpeg removes MP3 encoder delay and padding stated in a LAME header, and AAC
priming stated in an MP4 edit list or an iTunes ``iTunSMPB`` atom; we trim the
priming an ``iTunSMPB`` tag states when FFmpeg has not, and never return more samples
than an exact stated length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import headers
from .errors import AudioError

#: libsndfile formats whose lengths are exact; every other file goes to FFmpeg.
SOUNDFILE_FORMATS = frozenset({"WAV", "WAVEX", "W64", "RF64", "AIFF", "AU", "FLAC"})

#: libsndfile's frame count for "unknown" (SF_COUNT_MAX) is 2**63 - 1.
_UNKNOWN_FRAMES = 1 << 62


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
        length in frames, or None) set, :meth:`blocks` to iterate and :meth:`close`.

    Raises
    ------
    AudioError
        Not audio, or damaged beyond opening.
    OSError
        The file could not be read.
    """
    opened = _open_with_soundfile(path) if headers.container_kind(path) is not None else None
    if opened is not None:
        return SoundfileDecoder(path, block_frames, *opened)
    return FFmpegDecoder(path, block_frames)


def _open_with_soundfile(path: Path):
    """``(open SoundFile, pcm_data_sizes)`` when libsndfile reads the file and its header
    states the length; None otherwise (FFmpeg reads it then)."""
    import soundfile as sf

    sizes = headers.pcm_data_sizes(path)  # first: an OSError here leaves nothing open
    try:
        sound_file = sf.SoundFile(str(path))
    except Exception:  # noqa: BLE001 - libsndfile does not read it: FFmpeg may
        return None
    # A WAV whose data size is unknown: libsndfile reads 0 samples of it (size 0).
    unknown_wav = sound_file.format == "WAV" and sizes is not None and sizes[0] in headers.UNKNOWN_SIZES
    # frames out of range: e.g. a FLAC encoded from a stream (STREAMINFO total 0)
    if sound_file.format not in SOUNDFILE_FORMATS or not 0 < sound_file.frames < _UNKNOWN_FRAMES or unknown_wav:
        sound_file.close()
        return None
    return sound_file, sizes


def _where(decoder, start: int, end: int | None = None) -> str:
    """Where in the file decoding failed, and how long the file says it is when it says so."""
    where = f"at {start / decoder.rate:.1f} s" if end is None else \
        f"between {start / decoder.rate:.1f} and {end / decoder.rate:.1f} s"
    if decoder.declared_frames:
        where += f" of the {decoder.declared_frames / decoder.rate:.1f} s its header declares"
    return where


class SoundfileDecoder:
    """PCM and FLAC through libsndfile (exact lengths, any sample format and channel count).

    Made by :func:`open_decoder` from the file it opened and the header's data sizes
    (:func:`genreseg.headers.pcm_data_sizes`), so the header is read once.
    """

    def __init__(self, path: Path, block_frames: int, sound_file, sizes: tuple[int, int] | None):
        self.path, self.block_frames, self._file = path, block_frames, sound_file
        # libsndfile silently shortens a truncated PCM file to what is on disk: the
        # header's own size is the evidence.
        if sizes is not None and sizes[1] < sizes[0]:
            self.close()
            if sizes[1] < 0:
                raise AudioError(path, f"truncated: the sample data should start {-sizes[1]} bytes "
                                       f"past the end of the file")
            raise AudioError(path, f"truncated: header declares {sizes[0]} bytes of samples, file holds {sizes[1]}")
        self.rate, self.channels = self._file.samplerate, self._file.channels
        self.codec = f"{self._file.format}/{self._file.subtype}".lower()
        self.declared_frames = None  # PCM sizes are checked in bytes, above
        try:
            if self._file.format == "FLAC":
                self.declared_frames = self._file.frames  # STREAMINFO's total
            elif self._file.format == "AIFF":
                self.declared_frames = headers.aiff_frames(path)
        except BaseException:
            self.close()
            raise

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
                # libsndfile fails a whole read: the error lies somewhere in this block.
                raise AudioError(self.path, f"damaged or truncated: decoding fails "
                                            f"{_where(self, decoded, decoded + self.block_frames)} "
                                            f"({getattr(err, 'error_string', err)})") from None
            if not len(data):
                break
            decoded += len(data)
            yield data
        if self.declared_frames and decoded < self.declared_frames:
            raise AudioError(self.path, f"truncated: header declares {self.declared_frames} samples, "
                                        f"file holds {decoded}")


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


def _ffmpeg_reason(err) -> str:
    """FFmpeg's own words for an error, without the file name PyAV appends."""
    return (getattr(err, "strerror", None) or str(err)).strip()


class FFmpegDecoder:
    """Any audio FFmpeg reads, through PyAV; the first audio stream of the file."""

    def __init__(self, path: Path, block_frames: int):
        import av

        self.path, self.block_frames = path, block_frames
        try:
            self._container = av.open(str(path), metadata_errors="ignore")
        except av.FFmpegError as err:
            raise AudioError(path, f"not audio or corrupt ({_ffmpeg_reason(err)})") from None
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        streams = self._container.streams.audio
        if not streams:
            kinds = sorted({s.type for s in self._container.streams}) or ["nothing"]
            raise AudioError(self.path, f"no audio stream (the file holds {', '.join(kinds)})")
        self._stream = stream = streams[0]
        ctx = stream.codec_context
        self.rate, self.channels, self.codec = ctx.sample_rate, ctx.channels, ctx.name
        if self.rate <= 0:
            raise AudioError(self.path, f"invalid sample rate {self.rate}")
        seconds = self._stated_seconds()
        declared = int(round(seconds * self.rate)) if seconds else None
        self.skip = 0
        gapless = headers.itunes_gapless({**self._container.metadata, **stream.metadata})
        if gapless is not None:
            delay, _padding, original = gapless
            # FFmpeg trims the priming itself when an edit list states it (the stream is
            # then about ``original`` long) or when it reads iTunes' own atom (the stream
            # then starts at ``delay``); otherwise the stream still holds it.
            trimmed = stream.start_time or (declared is not None and abs(declared - original) <= self._slack())
            self.skip = 0 if trimmed else delay
            declared = original
        self.declared_frames = declared

    def _stated_seconds(self) -> float | None:
        """The length the file states, in seconds, where it is exact (not estimated)."""
        name, stream = self._container.format.name, self._stream
        if name == "asf":  # FFmpeg's figure for ASF is estimated from the file size
            return headers.asf_duration(self.path)
        if name == "mp3" and not headers.mp3_has_frame_count(self.path):
            return None
        if name not in ("mp3", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "flac"):
            return None
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if self._container.duration:  # Matroska states the segment's duration only
            return self._container.duration / 1e6
        return None

    def _slack(self) -> int:
        """Two codec frames (2048 samples when the codec does not say): the most that
        encoder padding and a muxer's rounding of a stated duration may account for."""
        return 2 * max(self._stream.codec_context.frame_size or 0, 1024)

    def close(self) -> None:
        self._container.close()

    def _frames(self):
        """Decoded FFmpeg frames to the end of the stream; see the module doc on errors.

        ``self._decoded`` counts their samples as they come.
        """
        import av

        damage = None
        self._decoded = 0
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets, None)
                if packet is None:
                    return
                frames = packet.decode()
            except av.FFmpegError as err:
                # A demuxer error ends the packet generator (the next call returns None);
                # a decoder error skips one packet. Either is damage only if audio follows.
                damage = damage or (self._decoded, _ffmpeg_reason(err))
                continue
            for frame in frames:
                # Audio again after an error is damage in mid-stream; a frame or two may
                # still come out of the decoder's delay line at a cut end.
                if damage is not None and self._decoded - damage[0] > self._slack():
                    raise AudioError(self.path, f"damaged: decoding fails {_where(self, damage[0])} "
                                                f"and resumes after it ({damage[1]})")
                if frame.sample_rate != self.rate:
                    raise AudioError(self.path, f"sample rate changes from {self.rate} to "
                                                f"{frame.sample_rate} Hz at {self._decoded / self.rate:.1f} s")
                self._decoded += frame.samples
                yield frame

    def _raw_blocks(self):
        """The decoded frames joined into ``(n, channels)`` float32 blocks of about ``block_frames``.

        Frames are gathered in FFmpeg's own FIFO and converted once per block: an MP3
        frame holds 1152 samples, and converting each on its own cost more than
        decoding it (measured 0.28 s of a 3-minute file's 0.39 s). A change of sample
        format or channel layout (some AAC streams switch between mono and stereo)
        starts a new block, each downmixed by the caller.
        """
        import av

        fifo, kind = None, None
        for frame in self._frames():
            this = (frame.format.name, frame.layout.name)
            if fifo is not None and this != kind:
                if fifo.samples:
                    yield _frame_to_array(fifo.read())
                fifo = None
            if fifo is None:
                fifo, kind = av.AudioFifo(), this
            frame.pts = None  # the FIFO checks timestamps for gaps; the decoder has judged them
            fifo.write(frame)
            if fifo.samples >= self.block_frames:
                yield _frame_to_array(fifo.read())
        if fifo is not None and fifo.samples:
            yield _frame_to_array(fifo.read())

    def blocks(self):
        """``(n, channels)`` float32 blocks of about ``block_frames`` until the stream ends.

        Channel counts may change between blocks (see :meth:`_raw_blocks`).
        """
        to_skip, remaining = self.skip, self.declared_frames
        for data in self._raw_blocks():
            if to_skip:
                cut = min(to_skip, len(data))
                data, to_skip = data[cut:], to_skip - cut
            if remaining is not None:
                # Never more than an exact stated length: the rest is encoder padding.
                data = data[:remaining]
                remaining -= len(data)
            if len(data):
                yield data
        decoded = self._decoded
        got = max(decoded - self.skip, 0)
        if self.declared_frames is not None and got < self.declared_frames - self._slack():
            kind = self._container.format.name.split(",")[0]
            raise AudioError(self.path, f"truncated: the {kind} header declares {self.declared_frames / self.rate:.1f} s, "
                                        f"the file decodes to {got / self.rate:.1f} s")
