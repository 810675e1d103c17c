"""Exception types. Every error carries the offending path and a plain reason."""

from __future__ import annotations


class GenresegError(Exception):
    """Base class of all genreseg errors."""


class AudioError(GenresegError):
    """An audio file could not be used.

    ``str(err)`` is one line: ``"<path>: <reason>"``.
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class StoreError(GenresegError):
    """A feature store is missing, corrupt, or of another feature config."""


class ModelError(GenresegError):
    """A model directory is missing, tampered with, or incompatible with the features."""


class DatasetError(GenresegError):
    """A dataset layout, manifest or split request cannot be satisfied."""


class TrainingDataError(GenresegError, ValueError):
    """Training data a model cannot learn from (one class, no labels)."""
