"""What every config dataclass of the package shares: a strict dict round trip and a stable hash.

Configs (features, frame models, segment stage, timeline, service, baselines, experiment
grids) are frozen dataclasses. They inherit :class:`ConfigMixin` for ``to_dict`` (JSON-ready:
tuples become lists), ``from_dict`` (unknown fields are refused: a typo in a saved file must
not pass silently), ``replace`` and ``hash`` (16 hex digits, stable across runs and machines).
A config whose hash must ignore some fields (the feature config's execution choices)
overrides :meth:`ConfigMixin.hash_dict`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

from .files import to_jsonable

__all__ = ["ConfigMixin", "stable_hash", "strict_from_dict"]


def strict_from_dict(cls, d: dict, what: str | None = None):
    """Build dataclass ``cls`` from ``d``, refusing unknown fields.

    Parameters
    ----------
    cls : dataclass type
    d : dict
    what : str, optional
        How the error names the config (default: the class name in words,
        ``FrameModelConfig`` -> "frame model config").
    """
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        what = what or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cls.__name__).lower()
        raise ValueError(f"unknown {what} fields: {sorted(unknown)}")
    return cls(**d)


def stable_hash(d: dict) -> str:
    """16 hex digits of the SHA-256 of ``d`` as sorted-key, compact JSON (stable across runs)."""
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ConfigMixin:
    """``to_dict`` / ``from_dict`` / ``replace`` / ``hash`` for a frozen dataclass.

    ``from_dict`` relies on the dataclass's ``__post_init__`` to turn JSON lists back
    into tuples where a field holds one.
    """

    def to_dict(self) -> dict:
        """The fields as JSON-ready values (tuples as lists)."""
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict):
        """The config ``to_dict`` wrote; unknown fields raise ``ValueError``."""
        return strict_from_dict(cls, d)

    def replace(self, **changes):
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def hash_dict(self) -> dict:
        """The fields the hash covers (all of them unless a subclass says otherwise)."""
        return self.to_dict()

    @property
    def hash(self) -> str:
        """Stable 16-hex-digit hash of :meth:`hash_dict` (sorted-key JSON, SHA-256)."""
        return stable_hash(self.hash_dict())
