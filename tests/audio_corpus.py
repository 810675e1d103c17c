"""A format-compatibility corpus made with real encoders (FFmpeg through PyAV).

Every file is at least 3 minutes long, made from a real gtzan_mini clip looped (and
mixed with a second clip for the extra channels), so that decoding crosses many
block boundaries. Used by ``tests/test_formats.py`` and ``benchmarks/decode.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from genreseg.encode import Encoding, add_itunes_gapless, id3v2_tag, write_audio

SECONDS = 185  # >= 3 minutes


@dataclass(frozen=True)
class CorpusFile:
    """One file of the corpus and what decoding it must give.

    ``length_slack`` is ``(low, high)``: decoded frames minus source frames must lie in
    it (both 0: exact). ``tolerance`` bounds the mean absolute log-feature difference
    from the WAV original, per frame and per track (the ``lossy`` floor).
    """

    name: str
    rate: int
    channels: int
    encoding: Encoding | None  # None: written with libsndfile (subtype in ``sf_subtype``)
    length_slack: tuple[int, int] = (0, 0)
    tolerance: float = 1e-3  # lossless; lossy ones: about 2.5x the difference measured
    id3: int | None = None
    sf_format: str | None = None
    sf_subtype: str | None = None
    cut_outcome: str | None = None  # what the file cut at 50 % gives: the start of the reason, or "decodes"
    finish: str | None = None  # a change made after writing: a key of FINISHERS

    @property
    def path_name(self) -> str:
        return self.name


# The slack of lossy codecs, from their documentation:
# - MP3 without a LAME/Xing header carries the encoder's and decoder's delay (576 + 529,
#   under one 1152-sample frame) and up to one frame of end padding, none of which it states.
# - WMA (wmav2) works in 2048-sample frames; the ASF muxer does not state the delay.
# - Vorbis ends on a granule position; this experimental encoder overshoots by < one short block (256).
_MP3_NO_HEADER = (0, 2 * 1152)
# - MP3 with a LAME header: FFmpeg trims what it states, to within one frame.
_MP3_HEADER = (0, 1152)

CORPUS = (
    CorpusFile("mp3_cbr_xing_id3v23_cover.mp3", 44100, 2, Encoding("libmp3lame", "mp3", bit_rate=192_000,
               container_options={"id3v2_version": 0}), _MP3_HEADER, 0.02, id3=3,
               cut_outcome="truncated: the mp3 header declares"),
    CorpusFile("mp3_vbr_xing_id3v24_cover.mp3", 44100, 2, Encoding("libmp3lame", "mp3", vbr_quality=2,
               container_options={"id3v2_version": 0}), _MP3_HEADER, 0.03, id3=4,
               cut_outcome="truncated: the mp3 header declares"),
    CorpusFile("mp3_trailing_tags_and_padding.mp3", 44100, 2, Encoding("libmp3lame", "mp3", bit_rate=160_000),
               _MP3_HEADER, 0.02, finish="trailing_junk"),
    CorpusFile("mp3_cbr_no_xing.MP3", 44100, 2, Encoding("libmp3lame", "mp3", bit_rate=128_000,
               container_options={"write_xing": 0, "id3v2_version": 0}), _MP3_NO_HEADER, 0.045, id3=3,
               cut_outcome="decodes"),
    CorpusFile("mp3_vbr_no_xing.mp3", 44100, 2, Encoding("libmp3lame", "mp3", vbr_quality=4,
               container_options={"write_xing": 0}), _MP3_NO_HEADER, 0.045, cut_outcome="decodes"),
    CorpusFile("mp3_22k.mp3", 22050, 2, Encoding("libmp3lame", "mp3", bit_rate=96_000), _MP3_HEADER, 0.05),
    CorpusFile("aac.m4a", 44100, 2, Encoding("aac", "ipod", bit_rate=192_000), tolerance=0.025,
               cut_outcome="not audio or corrupt"),
    CorpusFile("aac_itunes_gapless.m4a", 44100, 2, Encoding(
        "aac", "mp4", bit_rate=192_000, container_options={"use_editlist": 0}, metadata={"title": "genreseg"}),
        tolerance=0.025, cut_outcome="not audio or corrupt", finish="itunes_gapless"),
    CorpusFile("aac_5.1_48k_faststart.mp4", 48000, 6, Encoding("aac", "mp4", bit_rate=384_000, container_options={
        "movflags": "+faststart"}), tolerance=0.06, cut_outcome="truncated: the mov header declares"),
    CorpusFile("opus.webm", 48000, 2, Encoding("libopus", "webm", bit_rate=128_000), tolerance=0.04,
               cut_outcome="truncated: the matroska header declares"),
    CorpusFile("opus.opus", 48000, 2, Encoding("libopus", "ogg", bit_rate=128_000), tolerance=0.04,
               cut_outcome="decodes"),
    CorpusFile("vorbis.ogg", 44100, 2, Encoding("vorbis", "ogg", codec_options={"strict": "experimental"}),
               (0, 256), 0.03, cut_outcome="decodes"),
    CorpusFile("wma.wma", 44100, 2, Encoding("wmav2", "asf", bit_rate=128_000), (-2048, 2048), 0.04,
               cut_outcome="truncated: the asf header declares"),
    CorpusFile("alac.m4a", 44100, 2, Encoding("alac", "ipod")),
    CorpusFile("flac24_96k_5.1.flac", 96000, 6, None, sf_format="FLAC", sf_subtype="PCM_24",
               cut_outcome="damaged or truncated: decoding fails between"),
    CorpusFile("flac_from_a_stream.flac", 44100, 2, None, sf_format="FLAC", sf_subtype="PCM_16",
               cut_outcome="decodes", finish="flac_length_unknown"),
    CorpusFile("flac_16k_mono.FLAC", 16000, 1, None, sf_format="FLAC", sf_subtype="PCM_16"),
    CorpusFile("aiff.aiff", 44100, 2, None, sf_format="AIFF", sf_subtype="PCM_16",
               cut_outcome="truncated: header declares"),
    CorpusFile("wave64.w64", 48000, 2, None, sf_format="W64", sf_subtype="PCM_24",
               cut_outcome="truncated: header declares"),
    CorpusFile("rf64.wav", 44100, 2, None, sf_format="RF64", sf_subtype="PCM_16",
               cut_outcome="truncated: header declares"),
    CorpusFile("wav_8k_mono.wav", 8000, 1, None, sf_format="WAV", sf_subtype="PCM_16", tolerance=5e-3),
    CorpusFile("wav_unknown_size.wav", 44100, 2, None, sf_format="WAV", sf_subtype="PCM_16",
               finish="wav_size_unknown"),
)


def source_signal(clips: list[Path], rate: int, channels: int, seconds: float = SECONDS) -> np.ndarray:
    """``(n, channels)`` float32 at ``rate``: real clips looped to ``seconds``.

    Channel ``c`` mixes the first clip with the ``c``-th other one, so channels differ
    as in real recordings and a decoder that drops or swaps channels changes the mix.
    """
    import soxr

    n = int(round(seconds * rate))
    tracks = []
    for clip in clips[:2]:
        x, sr = sf.read(clip, dtype="float32")
        x = soxr.resample(x, sr, rate) if sr != rate else x
        tracks.append(np.resize(x, n))  # np.resize repeats the clip
    weights = np.linspace(0.0, 0.6, channels)
    out = np.stack([(1 - w) * tracks[0] + w * tracks[1] for w in weights], axis=1)
    return (0.8 * out / np.max(np.abs(out))).astype(np.float32)


def _cover_art(size: int = 120_000) -> bytes:
    """Bytes standing for an embedded PNG cover (decoders skip the tag without reading it)."""
    return b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(size)


def write_corpus_file(entry: CorpusFile, signal: np.ndarray, folder: Path) -> Path:
    """Write ``entry`` from ``signal`` (at ``entry.rate``) into ``folder``."""
    path = Path(folder) / entry.name
    if entry.encoding is None:
        sf.write(path, signal, entry.rate, format=entry.sf_format, subtype=entry.sf_subtype)
    else:
        write_audio(path, signal, entry.rate, entry.encoding)
    if entry.id3:
        path.write_bytes(id3v2_tag(entry.id3, cover=_cover_art()) + path.read_bytes())
    if entry.finish:
        FINISHERS[entry.finish](path, len(signal))
    return path


def mark_wav_size_unknown(path: Path, size: int = 0xFFFFFFFF) -> None:
    """Set the RIFF and data sizes to ``size``: a WAV written to a pipe, which cannot go
    back to fill them in, has 0xFFFFFFFF or 0."""
    raw = bytearray(path.read_bytes())
    data = raw.find(b"data", 12)
    raw[4:8] = raw[data + 4:data + 8] = size.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def mark_flac_length_unknown(path: Path, n_frames: int) -> None:
    """Zero the STREAMINFO total, as an encoder fed from a stream leaves it."""
    raw = bytearray(path.read_bytes())
    # fLaC, block header (4), then 18 bytes: block sizes (4), frame sizes (6), and 64 bits
    # of rate (20), channels (3), bits (5) and total samples (36): bytes 21 (low half) to 25.
    raw[21] &= 0xF0
    raw[22:26] = bytes(4)
    path.write_bytes(bytes(raw))


def add_trailing_junk(path: Path, n_frames: int) -> None:
    """What tagging tools and rippers leave after the last MP3 frame: zero padding, a
    Lyrics3v2 block and an ID3v1 tag."""
    lyrics = b"LYRICSBEGININD0000210" + b"LYR00011genreseg la" + b"000040LYRICS200"
    id3v1 = b"TAG" + b"genreseg test".ljust(30, b"\0") + bytes(94) + b"\xff"
    with open(path, "ab") as fh:
        fh.write(bytes(4096) + lyrics + id3v1)


def add_itunes_tag(path: Path, n_frames: int) -> None:
    """iTunes' gapless atom stating FFmpeg's AAC priming (1024) and the source's length."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        total = int(stream.duration * stream.time_base * stream.codec_context.sample_rate)
    add_itunes_gapless(path, delay=1024, padding=total - 1024 - n_frames, original=n_frames)


FINISHERS = {"wav_size_unknown": lambda path, n: mark_wav_size_unknown(path),
             "flac_length_unknown": mark_flac_length_unknown, "trailing_junk": add_trailing_junk,
             "itunes_gapless": add_itunes_tag}


def cut_in_half(path: Path, folder: Path) -> Path:
    """A copy of ``path`` holding its first half (a broken download or copy)."""
    raw = Path(path).read_bytes()
    out = Path(folder) / f"cut_{Path(path).name}"
    out.write_bytes(raw[: len(raw) // 2])
    return out
