"""A small labelled synthetic corpus, for demos and tests when no real music is at hand.

Four "genres" that a scattering front end separates by construction:

``tones``
    Harmonic notes (a fundamental and its decaying partials) from a pentatonic scale,
    sustained for a quarter to one second: energy on a harmonic comb, slow modulation.
``noise``
    Band-pass noise bursts (50–250 ms) at irregular (Poisson) times: broadband
    energy, no harmonic structure, no regular rhythm.
``slow-clicks``
    Click trains at 70–100 beats per minute: impulsive, wide-band, a slow periodic
    amplitude modulation (what second-order scattering picks up).
``fast-clicks``
    Click trains at 160–200 beats per minute: the same sound, twice the tempo.

Each clip is drawn from its own generator, seeded from ``(seed, class index, clip index)``,
so the corpus is reproducible clip by clip and adding clips does not change the others.
Files are 16-bit PCM WAV in a folder per label (the ``folders`` layout of
:func:`genreseg.datasets.load_folders`), with a ``README.txt`` at the root saying what
they are (the loader ignores files directly under the root).

>>> from genreseg.synthetic import SyntheticConfig, make_synthetic_corpus
>>> paths = make_synthetic_corpus("synthetic-data", SyntheticConfig(n_per_class=6, seed=0))
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CLASSES", "SyntheticConfig", "make_synthetic_corpus", "synthesize_clip"]

#: The synthetic labels, in class-index order (the index enters the per-clip seed).
CLASSES = ("tones", "noise", "slow-clicks", "fast-clicks")

# Pentatonic scale degrees (semitones) over two octaves from A2 (110 Hz).
_PENTATONIC = np.array([0, 2, 4, 7, 9, 12, 14, 16, 19, 21])


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of a synthetic corpus.

    Parameters
    ----------
    n_per_class : int
        Clips per label.
    duration : float
        Seconds per clip; at least one scattering window (~0.75 s), ~10 s by default.
    sample_rate : int
    seed : int
        Seeds every clip (see module docstring).
    classes : tuple of str
        A subset of :data:`CLASSES`.
    """

    n_per_class: int = 8
    duration: float = 10.0
    sample_rate: int = 22050
    seed: int = 0
    classes: tuple[str, ...] = CLASSES

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        unknown = [c for c in self.classes if c not in CLASSES]
        if unknown:
            raise ValueError(f"unknown synthetic classes {unknown} (known: {', '.join(CLASSES)})")
        if self.n_per_class < 1 or self.duration < 1.0 or self.sample_rate < 8000:
            raise ValueError("n_per_class >= 1, duration >= 1 s and sample_rate >= 8000 required")


# --------------------------------------------------------------------------- sounds
def _tones(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    t0 = 0
    while t0 < n:
        length = int(rng.uniform(0.25, 1.0) * sr)
        f0 = 110.0 * 2 ** (rng.choice(_PENTATONIC) / 12)
        t = np.arange(min(length, n - t0)) / sr
        note = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k
                   for k in range(1, 9) if k * f0 < sr / 2)
        # Short attack, exponential decay: a plucked/struck note, no click at the onset.
        env = np.minimum(1.0, t / 0.01) * np.exp(-t / rng.uniform(0.3, 0.8))
        out[t0:t0 + len(t)] += note * env
        t0 += length
    return out


def _noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    t0 = int(rng.exponential(0.2) * sr)
    while t0 < n:
        length = min(int(rng.uniform(0.05, 0.25) * sr), n - t0)
        burst = rng.standard_normal(length)
        # Band-pass in the frequency domain: a Gaussian bump around a random centre.
        spec = np.fft.rfft(burst)
        freqs = np.fft.rfftfreq(length, 1 / sr)
        centre, width = rng.uniform(300, 6000), rng.uniform(200, 2000)
        burst = np.fft.irfft(spec * np.exp(-0.5 * ((freqs - centre) / width) ** 2), length)
        out[t0:t0 + length] += burst * np.hanning(length) / (np.abs(burst).max() + 1e-12)
        t0 += length + int(rng.exponential(0.3) * sr)
    return out


def _clicks(n: int, sr: int, rng: np.random.Generator, bpm_range: tuple[float, float]) -> np.ndarray:
    out = np.zeros(n)
    period = 60.0 / rng.uniform(*bpm_range) * sr
    click_len = int(0.015 * sr)
    t = np.arange(click_len) / sr
    click = rng.standard_normal(click_len) * np.exp(-t / 0.003)
    pos = rng.uniform(0, period)
    while pos < n - click_len:
        # A little timing jitter and accent variation, as a drummer would have.
        start = int(pos + rng.normal(0, 0.005 * sr))
        if 0 <= start < n - click_len:
            out[start:start + click_len] += click * rng.uniform(0.6, 1.0)
        pos += period
    return out


def synthesize_clip(kind: str, duration: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of a synthetic class, peak-normalised to a random level in [0.3, 0.8].

    Parameters
    ----------
    kind : str
        One of :data:`CLASSES`.
    duration : float
        Seconds.
    sample_rate : int
    rng : np.random.Generator

    Returns
    -------
    np.ndarray, shape (round(duration * sample_rate),), float32
    """
    n = int(round(duration * sample_rate))
    if kind == "tones":
        x = _tones(n, sample_rate, rng)
    elif kind == "noise":
        x = _noise(n, sample_rate, rng)
    elif kind == "slow-clicks":
        x = _clicks(n, sample_rate, rng, (70.0, 100.0))
    elif kind == "fast-clicks":
        x = _clicks(n, sample_rate, rng, (160.0, 200.0))
    else:
        raise ValueError(f"unknown synthetic class {kind!r} (known: {', '.join(CLASSES)})")
    # A faint noise floor keeps every clip free of digital silence.
    x = x / (np.abs(x).max() + 1e-12) + 1e-3 * rng.standard_normal(n)
    return (x / np.abs(x).max() * rng.uniform(0.3, 0.8)).astype(np.float32)


# --------------------------------------------------------------------------- corpus
def _write_wav(path: Path, signal: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    # Written beside the target and renamed: a killed run never leaves half a WAV.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        sf.write(str(tmp), signal, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def make_synthetic_corpus(root, config: SyntheticConfig = SyntheticConfig()) -> list[Path]:
    """Write a synthetic corpus as ``root/<label>/<label>.<NNN>.wav``.

    Rewriting an existing corpus with the same config produces the same bytes, so the
    feature store recognises the files (it keys entries by content hash).

    Parameters
    ----------
    root : path-like
        Created if needed.
    config : SyntheticConfig

    Returns
    -------
    list of Path
        The files written, sorted by label then index.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for label in config.classes:
        class_index = CLASSES.index(label)
        folder = root / label
        folder.mkdir(exist_ok=True)
        for i in range(config.n_per_class):
            rng = np.random.default_rng([config.seed, class_index, i])
            path = folder / f"{label}.{i:03d}.wav"
            _write_wav(path, synthesize_clip(label, config.duration, config.sample_rate, rng), config.sample_rate)
            paths.append(path)
    (root / "README.txt").write_text(
        "SYNTHETIC DATA: generated by genreseg.synthetic (not music).\n"
        f"classes: {', '.join(config.classes)}; {config.n_per_class} clips each, {config.duration:g} s, "
        f"{config.sample_rate} Hz, seed {config.seed}.\n"
        "Results obtained on it say nothing about music genre classification.\n")
    return paths
