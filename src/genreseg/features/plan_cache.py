"""On-disk cache of fast-scattering plans (:mod:`genreseg.features.filter_bank`).

A plan (supports, cropped filter values, FFT lengths, output grid; ~15 MB for the
pipeline's window) takes ~2-3 s to design, so it is cached as an ``.npz`` (no pickle)
under ``$GENRESEG_CACHE`` or ``~/.cache/genreseg``, keyed by every parameter, the design
constants, kymatio's version and :data:`~genreseg.features.filter_bank.FORMAT_VERSION`;
later constructions load it in ~0.05 s. A missing, unreadable or inconsistent cache
file is redesigned and atomically replaced (:func:`genreseg.files.atomic_write_bytes`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from ..runtime import library_versions
from . import filter_bank as fb


def cache_dir() -> Path:
    """Where plans are cached: ``$GENRESEG_CACHE`` or ``~/.cache/genreseg``."""
    root = os.environ.get("GENRESEG_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "genreseg"


def plan_path(J: int, Q: tuple[int, int], shape: int, oversampling: int, periodic: bool = False) -> Path:
    """Cache file of the plan for these parameters (and this code's design constants)."""
    key = json.dumps({
        "J": J, "Q": list(Q), "shape": shape, "oversampling": oversampling, "periodic": bool(periodic),
        "format": fb.FORMAT_VERSION, "threshold": fb.SUPPORT_THRESHOLD,
        "rates": [fb.RATE_MARGIN_1, fb.RATE_MARGIN_2, fb.RATE_FLOOR, fb.COARSE_SIZES_FROM],
        "constants": [fb.R_PSI, fb.SIGMA0, fb.ALPHA], "kymatio": library_versions(("kymatio",))["kymatio"],
    }, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir() / (f"fast-scattering1d-v{fb.FORMAT_VERSION}-J{J}-Q{Q[0]}_{Q[1]}-N{shape}"
                          f"{'p' if periodic else ''}-{digest}.npz")


def load_plan(J: int, Q: tuple[int, int], shape: int, oversampling: int, periodic: bool = False,
              use_cache: bool = True) -> dict:
    """The plan for these parameters: from the cache when valid, else designed and cached.

    The cache is best-effort: an unreadable or inconsistent file is redesigned and
    replaced, and a cache directory that cannot be written only costs the redesign
    next time. Files are written atomically (readable by all: it is a shareable
    cache), so a concurrent reader never sees half a file.
    """
    path = plan_path(J, Q, shape, oversampling, periodic)
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                plan = {k: data[k] for k in data.files}
            fb.check_plan(plan, J, Q, shape, oversampling, periodic)
            return plan
        except Exception:  # corrupt, truncated or stale: fall through and rebuild
            pass
    plan = fb.design_plan(J, Q, shape, oversampling, periodic)
    if use_cache:
        buffer = io.BytesIO()
        np.savez(buffer, **plan)
        try:
            atomic_write_bytes(path, buffer.getvalue(), mode=0o644)
        except OSError:
            pass
    return plan
