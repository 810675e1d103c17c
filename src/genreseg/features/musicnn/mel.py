"""musicnn's input: the log-compressed mel spectrogram of 16-kHz audio.

musicnn 0.1.0 (``extractor.batch_data``) computes::

    S = librosa.feature.melspectrogram(y=audio, sr=16000, hop_length=256, n_fft=512,
                                       n_mels=96).T            # power 2, Slaney mel
    S = np.log10(10000 * S.astype(np.float16) + 1)

with the librosa of 2019, whose STFT padded the centred frames by *reflection*
(librosa >= 0.10 pads with zeros by default). :func:`log_mel` reproduces that, with its
own STFT (one real FFT per frame, no librosa call per track) and librosa's mel basis.

Two details matter for exactness:

* the float16 cast is part of the model's input: it is reproduced, then the log is
  taken in float32;
* under NumPy < 2 (the package's era) ``10000 * float16_array`` was float32 (a Python
  int promoted by value, and uint16 does not fit float16); under NumPy 2 the same
  expression stays float16 and overflows to ``inf`` for mel values above 6.55. The cast
  to float32 is therefore explicit here.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "MEL_HOP",
    "MUSICNN_SAMPLE_RATE",
    "N_FFT",
    "N_MELS",
    "log_mel",
    "mel_basis",
    "mel_power",
    "n_mel_frames",
]

#: Sample rate the models were trained at (Hz).
MUSICNN_SAMPLE_RATE = 16000
#: STFT size and hop (samples); one mel frame every 16 ms.
N_FFT = 512
MEL_HOP = 256
#: Mel bands (Slaney scale and area normalisation, librosa's defaults).
N_MELS = 96


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """librosa's mel filter bank for musicnn, shape ``(N_FFT // 2 + 1, N_MELS)``, float64.

    Stored transposed (frequency bins first) so that ``power @ mel_basis()`` maps
    frames to bands. librosa builds it in float32; the values are kept exactly.
    """
    import librosa  # only needed once, for the filter bank

    basis = librosa.filters.mel(
        sr=MUSICNN_SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, htk=False, norm="slaney"
    )
    basis = np.ascontiguousarray(basis.T, dtype=np.float64)
    basis.flags.writeable = False
    return basis


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # periodic Hann, as librosa's get_window("hann", N_FFT, fftbins=True)
    n = np.arange(N_FFT)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)


def n_mel_frames(n_samples: int) -> int:
    """Number of centred frames librosa gives a signal of ``n_samples``."""
    return 1 + n_samples // MEL_HOP


def mel_power(signal_16k: np.ndarray, block: int = 4096, center: bool = True) -> np.ndarray:
    """Mel power spectrogram, ``(n_frames, N_MELS)`` float32, before any quantisation.

    Equals ``librosa.feature.melspectrogram(y=signal_16k, sr=16000, n_fft=512,
    hop_length=256, n_mels=96, pad_mode="reflect").T`` up to float32 rounding (the
    FFT and the mel product run in float64 here).

    Parameters
    ----------
    signal_16k : np.ndarray, shape (n_samples,)
        Mono audio at :data:`MUSICNN_SAMPLE_RATE`, at least 2 samples.
    block : int
        Frames transformed at once (bounds the float64 working memory).
    center : bool
        Reflect-pad half an FFT at both ends, as librosa centres frames (default). Off,
        the signal is taken as already padded: frame ``m`` is samples ``256 m .. 256 m
        + 512`` (a stream computes its frames this way, piece by piece).
    """
    y = np.asarray(signal_16k, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected a mono signal (1-D array), got shape {y.shape}")
    if y.size < (2 if center else N_FFT):
        raise ValueError("the signal needs at least 2 samples (reflection padding)" if center
                         else f"an uncentred signal needs at least {N_FFT} samples")
    padded = np.pad(y.astype(np.float64), N_FFT // 2, mode="reflect") if center else y.astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::MEL_HOP]
    if center:
        frames = frames[: n_mel_frames(y.size)]
    window, basis = _window(), mel_basis()
    out = np.empty((len(frames), N_MELS), dtype=np.float32)
    for start in range(0, len(frames), block):
        spec = np.fft.rfft(frames[start : start + block] * window, axis=1)
        power = spec.real**2 + spec.imag**2
        out[start : start + block] = power @ basis
    return out


def log_mel(signal_16k: np.ndarray, center: bool = True) -> np.ndarray:
    """musicnn's log-mel input, ``(n_frames, 96)`` float32.

    ``log10(10000 * float16(mel) + 1)`` of :func:`mel_power`, computed in float32 as
    musicnn 0.1.0 did under NumPy 1.x (see the module docstring).

    Parameters
    ----------
    signal_16k : np.ndarray, shape (n_samples,)
        Mono audio at 16 kHz (resample first, e.g. with soxr).
    center : bool
        See :func:`mel_power`.

    Returns
    -------
    np.ndarray, shape (1 + n_samples // 256, 96), float32
    """
    quantised = mel_power(signal_16k, center=center).astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000.0) * quantised + np.float32(1.0))
