"""Atomic file writes: a reader sees the old file or the whole new one, never a torn one.

Every file the package writes for later reading (store entries and manifest, model files,
reports, the scattering plan cache, label files) goes through :func:`atomic_write_bytes`:
write to a temporary name in the target's file system, fsync, ``os.replace``.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_bytes", "atomic_write_json", "to_jsonable"]


def to_jsonable(obj):
    """Plain JSON data: tuples as lists, NumPy scalars and arrays unwrapped, NaN and inf as null."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def atomic_write_bytes(path, payload: bytes, tmp_dir=None, mode: int | None = None) -> None:
    """Write ``payload`` to ``path`` atomically.

    Parameters
    ----------
    path : path-like
    payload : bytes
    tmp_dir : path-like, optional
        Where the temporary file goes (same file system as ``path``); default its folder.
    mode : int, optional
        Permission bits to set before the file appears (default: the process umask's).
    """
    path = Path(path)
    tmp_dir = Path(tmp_dir) if tmp_dir is not None else path.parent
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f".{path.name}.{uuid.uuid4().hex}.part"
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_json(path, obj, tmp_dir=None, indent: int = 2, sort_keys: bool = True) -> None:
    """Write :func:`to_jsonable` of ``obj`` as JSON atomically (NaN and inf become null)."""
    text = json.dumps(to_jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode(), tmp_dir)
