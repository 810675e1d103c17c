"""Audio in: decode any common file to float32 mono at the analysis rate.

:mod:`genreseg.decoders` reads the file at its own rate (libsndfile for PCM and FLAC,
FFmpeg through PyAV for MP3, M4A/AAC/ALAC, Opus, Vorbis, WMA, WebM and the rest); this
module downmixes (mean of the channels) and resamples with soxr, block by block. Every
failure raises :class:`genreseg.errors.AudioError`, whose message is one line,
``"<path>: <reason>"``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .decoders import open_decoder
from .errors import AudioError

TARGET_RATE = 22050

#: File extensions (lower case) that collections are searched for. Any file named
#: explicitly is decoded by its content, whatever its name.
AUDIO_EXTENSIONS = (
    ".wav", ".wave", ".w64", ".rf64", ".au", ".snd", ".aif", ".aiff", ".aifc", ".flac",  # libsndfile
    ".mp3", ".mp2", ".m4a", ".m4b", ".mp4", ".aac", ".alac", ".caf", ".3gp",  # FFmpeg from here
    ".ogg", ".oga", ".opus", ".wma", ".asf", ".webm", ".mka", ".mkv", ".ac3", ".ape", ".wv", ".amr",
)


class SilentAudioWarning(UserWarning):
    """The file decodes to digital silence; features stay finite but carry no music."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file declared and what loading it did."""

    path: str
    native_rate: int
    channels: int
    codec: str
    native_samples: int  # decoded, at native_rate, after gapless trimming
    n_samples: int  # after resampling
    duration: float  # seconds
    silent: bool


def is_audio_path(path) -> bool:
    """True when ``path`` has one of :data:`AUDIO_EXTENSIONS`."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def content_hash(path, chunk: int = 1 << 20) -> str:
    """SHA-256 (first 16 hex digits) of the file's bytes: the audio's identity in the store."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(chunk), b""):
                h.update(block)
    except OSError as err:
        raise AudioError(path, f"cannot read file ({err.strerror or err})") from None
    return h.hexdigest()[:16]


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


#: Frames decoded per read when streaming (at the file's own rate): ~6 s at 44.1 kHz.
BLOCK_FRAMES = 1 << 18


class AudioStream:
    """A file decoded, downmixed and resampled block by block.

    Iterating yields consecutive float32 mono blocks at ``sample_rate``; memory stays
    at a block or two whatever the file's length (soxr's streaming resampler gives
    the same samples as resampling the whole signal at once). Every problem raises
    :class:`genreseg.errors.AudioError` naming the file, during iteration for those
    found only by decoding (non-finite samples, truncation, too short). After a
    complete iteration :attr:`info` describes the file.

    Parameters
    ----------
    path : str or Path
    sample_rate : int
        Output rate.
    min_samples : int
        Shortest acceptable output; checked at the end of the file.
    block_frames : int
        Frames read at a time, at the file's rate.

    Warns
    -----
    SilentAudioWarning
        At the end of a file that is digital silence (all zeros).
    """

    def __init__(self, path, sample_rate: int = TARGET_RATE, min_samples: int = 1,
                 block_frames: int = BLOCK_FRAMES):
        self.path = Path(path)
        self.sample_rate, self.min_samples, self.block_frames = sample_rate, min_samples, block_frames
        self.info: AudioInfo | None = None

    def __iter__(self):
        path = self.path
        _check_readable(path)
        try:
            decoder = open_decoder(path, self.block_frames)
        except OSError as err:
            raise AudioError(path, f"cannot read file ({err.strerror or err})") from None
        try:
            rate = decoder.rate
            resampler = None
            if rate != self.sample_rate:
                import soxr

                resampler = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32", quality="HQ")
            decoded = produced = 0
            silent = True
            blocks = decoder.blocks()
            while True:
                # The decoder says when the stream ends: a short block is not the end.
                data = next(blocks, None)
                last = data is None
                if last:
                    block = np.zeros(0, np.float32)
                else:
                    if not np.isfinite(data).all():
                        raise AudioError(path, f"contains non-finite samples (NaN or inf) near "
                                               f"{decoded / rate:.1f} s")
                    decoded += len(data)
                    block = to_mono(data)
                if resampler is not None:
                    block = resampler.resample_chunk(block, last=last)
                if len(block):
                    silent = silent and not np.any(block)
                    produced += len(block)
                    yield block
                if last:
                    break
        except OSError as err:
            raise AudioError(path, f"cannot read file ({err.strerror or err})") from None
        finally:
            decoder.close()
        if decoded == 0:
            raise AudioError(path, "contains zero samples")
        if produced < self.min_samples:
            raise AudioError(path, f"too short: {produced / self.sample_rate:.3f} s, shorter than one analysis "
                                   f"window ({self.min_samples / self.sample_rate:.3f} s)")
        if silent:
            warnings.warn(f"{path}: digital silence", SilentAudioWarning, stacklevel=2)
        self.info = AudioInfo(path=str(path), native_rate=rate, channels=decoder.channels, codec=decoder.codec,
                              native_samples=decoded, n_samples=produced, duration=produced / self.sample_rate,
                              silent=silent)


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels: ``(n, channels)`` → ``(n,)`` float32."""
    return data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else np.asarray(data, np.float32)


def load_audio_with_info(path, sample_rate: int = TARGET_RATE, min_samples: int = 1) -> tuple[np.ndarray, AudioInfo]:
    """Decode ``path`` to float32 mono at ``sample_rate`` and report what was done.

    Parameters
    ----------
    path : str or Path
    sample_rate : int
        Output rate (always enforced).
    min_samples : int
        Shortest acceptable output, e.g. one analysis window of the features.

    Returns
    -------
    signal : np.ndarray, shape (n,), float32
    info : AudioInfo

    Raises
    ------
    AudioError
        Missing, unreadable, empty, not audio, corrupt, truncated, non-finite, or
        shorter than ``min_samples`` after resampling.

    Warns
    -----
    SilentAudioWarning
        When the signal is digital silence (all zeros); it is still returned.

    See Also
    --------
    AudioStream : the same, block by block, for files too long to hold whole.
    """
    stream = AudioStream(path, sample_rate, min_samples)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SilentAudioWarning)
        blocks = list(stream)
    for w in caught:  # re-issued here so that it points at the caller
        warnings.warn(w.message, w.category, stacklevel=2)
    signal = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    return signal, stream.info


def load_audio(path, sample_rate: int = TARGET_RATE, min_samples: int = 1) -> np.ndarray:
    """Decode ``path`` to a float32 mono signal at ``sample_rate``.

    See :func:`load_audio_with_info` for parameters and errors.
    """
    return load_audio_with_info(path, sample_rate, min_samples)[0]
