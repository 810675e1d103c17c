"""Limits of the service: a frozen dataclass, light to import (the CLI's help reads its defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from ..configs import ConfigMixin
from .analysis import SMOOTH_SECONDS, TIMELINE_POINTS


@dataclass(frozen=True)
class ServeConfig(ConfigMixin):
    """Limits of the service, per server process.

    Parameters
    ----------
    max_upload_mb : float
        Largest file accepted (MiB); 413 beyond. 200 takes a 15-minute CD-quality WAV.
    max_duration_s : float
        Longest audio analysed (seconds); longer files get 422, after at most this much
        audio has been decoded (headers are not trusted).
    queue : int
        Analyses admitted at once, the running one included; 503 with ``Retry-After``
        beyond. 16 keeps the wait of the last one admitted to ~10 s for 30-s clips.
    timeout_s : float
        Per request: the upload and the analysis (with its wait in the queue) must
        each finish within it; 408 / 504 otherwise.
    timeline_points : int
        Most points of the posterior timeline in an answer.
    smooth_s : float
        Moving-average width of the posterior timeline (seconds).
    tmp_dir : str, optional
        Where uploads are written while analysed (default: the system's temporary dir).
    """

    max_upload_mb: float = 200.0
    max_duration_s: float = 900.0
    queue: int = 16
    timeout_s: float = 60.0
    timeline_points: int = TIMELINE_POINTS
    smooth_s: float = SMOOTH_SECONDS
    tmp_dir: str | None = None

    def __post_init__(self):
        if min(self.max_upload_mb, self.max_duration_s, self.timeout_s, self.smooth_s) <= 0:
            raise ValueError("max_upload_mb, max_duration_s, timeout_s and smooth_s must be > 0")
        if self.queue < 1 or self.timeline_points < 2:
            raise ValueError("queue must be >= 1 and timeline_points >= 2")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

