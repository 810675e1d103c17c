"""Feature configuration: a frozen dataclass with a stable hash.

The hash covers only the fields that define *which numbers* a feature is (the
scattering maths and the post-processing). Execution choices — which backend
computes it, how long the processing windows are — are excluded: the backends
agree to within 1e-4 relative L2 (tested), and window joins to within the
tolerance stated in :mod:`genreseg.features.framing`, so a store built by one can
be read by a model trained on the other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..configs import ConfigMixin

#: Fields that do not change the feature definition (see module docstring).
EXECUTION_FIELDS = ("backend", "window_frames", "context_frames", "device")

#: The frame-feature families: the paper's scattering, the pretrained musicnn tagger's
#: frames (:mod:`genreseg.features.musicnn`), or both side by side in one frame.
FAMILIES = ("scattering", "musicnn", "both")
#: The musicnn models shipped with the package (converted from ``musicnn==0.1.0``).
MUSICNN_MODELS = ("MSD_musicnn", "MTT_musicnn")
#: What a musicnn frame holds, computed over a window of ``musicnn_window_s`` centred on
#: the frame: the 200-d penultimate layer, the 50 tag probabilities, or the 753-d
#: mid-end features averaged over the window (see :mod:`genreseg.features.musicnn.frames`).
MUSICNN_OUTPUTS = ("penultimate", "taggram", "midend")
#: Fields of the scattering transform only, and of the musicnn frames only: a family's
#: hash leaves out the other family's fields, so that adding a family changes no
#: existing store key.
SCATTERING_FIELDS = ("Q1", "Q2", "keep_zeroth", "renormalize", "log_eps", "renorm_eps", "min_frequency_hz")
MUSICNN_FIELDS = ("musicnn_model", "musicnn_output", "musicnn_window_s")


@dataclass(frozen=True)
class FeatureConfig(ConfigMixin):
    """Settings of the scattering frame features.

    Defaults follow the ScatNet GTZAN recipe of Andén & Mallat, "Deep scattering
    spectrum": averaging scale ``T = 2**J = 2**14`` samples (≈ 743 ms at 22050 Hz),
    ``Q = (8, 1)`` wavelets per octave, hop ``T / 2`` (``oversampling=1``), second
    order renormalised by its first-order parent, then ``log(x + log_eps)``.

    Parameters
    ----------
    sample_rate : int
        Rate every signal is resampled to before the transform.
    J : int
        log2 of the averaging scale T, in samples.
    Q1, Q2 : int
        Wavelets per octave at first and second order.
    oversampling : int
        Output hop is ``2**(J - oversampling)``; 1 gives the paper's hop of T/2.
    keep_zeroth : bool
        Keep the zeroth-order coefficient (the low-passed signal). Off by default:
        it carries almost no genre information and kymatio's can be negative; when
        kept it enters the log as ``|S0|``.
    renormalize : bool
        Divide each second-order coefficient by its first-order parent
        ``S2(λ1, λ2) / (S1(λ1) + renorm_eps)``.
    log_eps : float
        Floor added before the log, so silence stays finite.
    renorm_eps : float
        Floor of the renormalising denominator.
    min_frequency_hz : float
        First-order channels centred below this frequency are dropped together with
        their second-order children. With J=14 about 40 first-order channels lie
        below 50 Hz in a 22050 Hz signal and carry only the log floor. 0 keeps all.
    backend : {"fast", "kymatio"}
        Which implementation computes the transform (execution only).
    window_frames, context_frames : int
        Audio is processed in windows of ``window_frames`` output frames with
        ``context_frames`` frames of real signal on each side (execution only).
        The defaults make a window of 128 hops = 2^20 samples (47.6 s), which holds
        a 30-s clip whole; keep ``window_frames + 2 * context_frames`` a product of
        2s, 3s and 5s (fast FFT lengths).
    device : str
        "cpu", "cuda" or "auto" (execution only).
    family : {"scattering", "musicnn", "both"}
        Which frame features: the scattering transform above, the pretrained musicnn
        tagger's frames, or both concatenated (scattering columns first). Every family
        has one frame every :attr:`hop` samples, frame ``m`` centred on sample
        ``m * hop``, so the families line up frame by frame.
    musicnn_model : {"MSD_musicnn", "MTT_musicnn"}
        The pretrained tagger (Million Song Dataset or MagnaTagATune tags).
    musicnn_output : {"penultimate", "taggram", "midend"}
        What a musicnn frame holds (see :data:`MUSICNN_OUTPUTS`).
    musicnn_window_s : float
        Length of audio each musicnn frame summarises, centred on the frame (the
        tagger was trained on 3-s patches).
    """

    sample_rate: int = 22050
    J: int = 14
    Q1: int = 8
    Q2: int = 1
    oversampling: int = 1
    keep_zeroth: bool = False
    renormalize: bool = True
    log_eps: float = 1e-6
    renorm_eps: float = 1e-6
    min_frequency_hz: float = 0.0
    backend: str = "fast"
    window_frames: int = 104
    context_frames: int = 12
    device: str = "cpu"
    family: str = "scattering"
    musicnn_model: str = "MSD_musicnn"
    musicnn_output: str = "penultimate"
    musicnn_window_s: float = 3.0

    def __post_init__(self):
        # 3 and 3.0 are one window: the hash must not tell them apart.
        object.__setattr__(self, "musicnn_window_s", float(self.musicnn_window_s))
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if self.musicnn_model not in MUSICNN_MODELS:
            raise ValueError(f"musicnn_model must be one of {', '.join(MUSICNN_MODELS)}, got {self.musicnn_model!r}")
        if self.musicnn_output not in MUSICNN_OUTPUTS:
            raise ValueError(f"musicnn_output must be one of {', '.join(MUSICNN_OUTPUTS)}, "
                             f"got {self.musicnn_output!r}")
        if not 0.1 <= self.musicnn_window_s <= 30.0:
            raise ValueError(f"musicnn_window_s must be in 0.1..30 s, got {self.musicnn_window_s}")
        if self.J < 1 or self.J > 20:
            raise ValueError(f"J must be in 1..20, got {self.J}")
        if self.Q1 < 1 or self.Q2 < 1:
            raise ValueError(f"Q1 and Q2 must be >= 1, got ({self.Q1}, {self.Q2})")
        if not 0 <= self.oversampling < self.J:
            raise ValueError(f"oversampling must be in 0..J-1, got {self.oversampling}")
        if self.backend not in ("fast", "kymatio"):
            raise ValueError(f"backend must be 'fast' or 'kymatio', got {self.backend!r}")
        if self.window_frames < 1 or self.context_frames < 0:
            raise ValueError("window_frames must be >= 1 and context_frames >= 0")
        if self.log_eps <= 0 or self.renorm_eps <= 0:
            raise ValueError("log_eps and renorm_eps must be > 0")

    # ------------------------------------------------------------------ derived
    @property
    def T(self) -> int:
        """Averaging scale in samples."""
        return 2**self.J

    @property
    def hop(self) -> int:
        """Samples between successive output frames."""
        return 2 ** (self.J - self.oversampling)

    @property
    def hop_seconds(self) -> float:
        return self.hop / self.sample_rate

    @property
    def min_samples(self) -> int:
        """Shortest signal accepted: one averaging window T."""
        return self.T

    @property
    def window_samples(self) -> int:
        """Length of one processing window, context included."""
        return (self.window_frames + 2 * self.context_frames) * self.hop

    @property
    def uses_scattering(self) -> bool:
        return self.family in ("scattering", "both")

    @property
    def uses_musicnn(self) -> bool:
        return self.family in ("musicnn", "both")

    def describe(self) -> str:
        """One line naming the features, e.g. ``"musicnn (MSD_musicnn penultimate, 3 s windows)"``."""
        scattering = f"scattering (J={self.J}, Q=({self.Q1},{self.Q2}))"
        musicnn = f"musicnn ({self.musicnn_model} {self.musicnn_output}, {self.musicnn_window_s:g} s windows)"
        return {"scattering": scattering, "musicnn": musicnn, "both": f"{scattering} + {musicnn}"}[self.family]

    # ------------------------------------------------------------------ identity
    def feature_dict(self) -> dict:
        """The fields that define the features (what the hash covers).

        The scattering family's dict is what it was before families existed (its store
        keys are unchanged); the musicnn family leaves the scattering-only fields out.
        ``sample_rate``, ``J`` and ``oversampling`` stay in every family: they set the hop.
        """
        d = dataclasses.asdict(self)
        for name in EXECUTION_FIELDS:
            d.pop(name)
        if not self.uses_musicnn:
            for name in ("family", *MUSICNN_FIELDS):
                d.pop(name)
        if not self.uses_scattering:
            for name in SCATTERING_FIELDS:
                d.pop(name)
        return d

    def hash_dict(self) -> dict:
        return self.feature_dict()


DEFAULT_CONFIG = FeatureConfig()
