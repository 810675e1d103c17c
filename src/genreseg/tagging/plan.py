"""Planning a genre change: what each file holds, and what writing would make of it.

Planning only reads. :func:`plan_tags` returns one :class:`TagResult` per file, and
:func:`genreseg.tagging.apply_tags` carries out the ones whose action is ``"write"``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace

from ..errors import AudioError
from .containers import Untaggable, open_tags

__all__ = ["ACTIONS", "MODES", "TagError", "TagResult", "plan_tag", "plan_tags", "read_genres"]

#: What a result says happens to its file.
ACTIONS = ("write", "unchanged", "skip-low-confidence", "skip-tagged", "error")
#: ``replace``: the genre becomes the proposed one; ``append``: it is added to those there.
MODES = ("replace", "append")


class TagError(AudioError):
    """A file's genre cannot be read or written; ``str(err)`` is ``"<path>: <reason>"``."""


@dataclass(frozen=True)
class TagResult:
    """What happens (or happened) to one file's genre tag.

    Attributes
    ----------
    path : str
        The file as it was named.
    proposed_genre : str or None
        The genre to write.
    confidence : float or None
        The confidence given with it.
    action : str
        One of :data:`ACTIONS`. ``"write"``: the genre changes (to ``new_genres``);
        ``"unchanged"``: the file already holds what writing would give;
        ``"skip-low-confidence"`` / ``"skip-tagged"``: left alone as asked;
        ``"error"``: the file cannot be tagged (``reason`` says why).
    reason : str
        One line; empty only for a plain ``"write"``.
    current_genres : tuple of str
        The genre values the file holds (before any change).
    new_genres : tuple of str
        The values after the change; ``current_genres`` when nothing is written.
    format : str or None
        The container (see :data:`genreseg.tagging.SUPPORTED_FORMATS`); None when unknown.
    mode : str
        ``"replace"`` or ``"append"``.
    written : bool
        True once :func:`genreseg.tagging.apply_tags` has written the change; a
        planned result (a dry run) is never written.
    """

    path: str
    proposed_genre: str | None
    confidence: float | None
    action: str
    reason: str = ""
    current_genres: tuple[str, ...] = ()
    new_genres: tuple[str, ...] = ()
    format: str | None = None
    mode: str = "replace"
    written: bool = False

    @property
    def message(self) -> str:
        """``"<path>: <reason>"`` (or ``"<path>: <action>"`` when there is no reason)."""
        return f"{self.path}: {self.reason or self.action}"

    def to_dict(self) -> dict:
        """The fields as plain JSON data (genre tuples as lists), for a table, JSON or CSV."""
        out = asdict(self)
        out["current_genres"] = list(self.current_genres)
        out["new_genres"] = list(self.new_genres)
        return out


def read_genres(path) -> list[str]:
    """The genre values a file holds, in order.

    Parameters
    ----------
    path : path-like
        An MP3, AIFF, WAV, MP4/M4A, FLAC, Ogg Vorbis, Ogg Opus or ASF/WMA file.

    Returns
    -------
    list of str
        Empty when the file has no genre. ID3 numeric genres (``"(17)"``) come back as
        names (``"Rock"``); an MP3 with only an ID3v1 tag gives its ID3v1 genre.

    Raises
    ------
    TagError
        The file cannot be read as one of the supported formats.
    """
    try:
        return open_tags(os.fspath(path)).genres()
    except Untaggable as err:
        raise TagError(path, err.reason) from None


def _contains(genres, genre: str) -> bool:
    folded = genre.casefold()
    return any(g.casefold() == folded for g in genres)


def plan_tag(path, genre: str, confidence: float | None = None, *, mode: str = "replace",
             min_confidence: float = 0.0, skip_tagged: bool = False) -> TagResult:
    """Plan the genre change of one file. Reads only; never raises for the file.

    Parameters
    ----------
    path : path-like
    genre : str
        The proposed genre, written as given (no case change).
    confidence : float, optional
        The confidence of ``genre``. Compared with ``min_confidence``; None counts as
        below any ``min_confidence`` above 0.
    mode : {"replace", "append"}
        ``replace``: the genre becomes ``[genre]``. ``append``: the values there stay,
        in order, and ``genre`` is added after them unless one of them is already
        ``genre`` (compared without case).
    min_confidence : float
        Below it the file is left alone (``"skip-low-confidence"``).
    skip_tagged : bool
        Leave a file that already has a genre alone (``"skip-tagged"``).

    Returns
    -------
    TagResult
        With ``written=False``.

    Raises
    ------
    ValueError
        ``mode`` is not one of :data:`MODES` (a programming error, not a file's).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    path = os.fspath(path)
    base = TagResult(path, genre, None if confidence is None else float(confidence), "error", mode=mode)
    if not isinstance(genre, str) or not genre.strip():
        return replace(base, reason=f"no genre to write (got {genre!r})")
    if any(c in genre for c in "\0\r\n") or genre != genre.strip():
        return replace(base, reason=f"genre {genre!r} has a NUL, line break or surrounding space")
    try:
        tags = open_tags(path)
        current = tuple(tags.genres())
    except Untaggable as err:
        return replace(base, reason=err.reason)
    base = replace(base, current_genres=current, new_genres=current, format=tags.kind)
    if min_confidence > 0 and (confidence is None or math.isnan(confidence) or confidence < min_confidence):
        shown = "none given" if confidence is None else f"{confidence:.3g}"
        return replace(base, action="skip-low-confidence",
                       reason=f"confidence {shown} is below the minimum {min_confidence:.3g}")
    if skip_tagged and current:
        return replace(base, action="skip-tagged", reason=f"already has a genre: {'; '.join(current)}")
    if mode == "replace":
        new = (genre,)
    else:
        new = current if _contains(current, genre) else current + (genre,)
    if new == current:
        return replace(base, action="unchanged", reason=f"genre is already {'; '.join(current)}")
    return replace(base, action="write", new_genres=new)


def _predictions(predictions) -> Iterable[tuple]:
    if isinstance(predictions, Mapping):
        for path, value in predictions.items():
            yield (path, *value) if isinstance(value, (tuple, list)) else (path, value)
    else:
        for item in predictions:
            yield tuple(item)


def plan_tags(predictions, *, mode: str = "replace", min_confidence: float = 0.0,
              skip_tagged: bool = False) -> list[TagResult]:
    """Plan the genre change of many files (a dry run: nothing is written).

    Parameters
    ----------
    predictions : iterable of tuple, or mapping
        ``(path, genre)`` or ``(path, genre, confidence)`` items, or a mapping of
        path to ``genre`` or to ``(genre, confidence)``.
    mode, min_confidence, skip_tagged
        As in :func:`plan_tag`.

    Returns
    -------
    list of TagResult
        One per item, in order. A file that cannot be tagged gets ``action="error"``
        and a one-line reason; the others are planned as usual. A file named twice
        (under any name) is planned once; the later items are errors.

    Examples
    --------
    >>> plans = plan_tags([("a.mp3", "jazz", 0.91), ("b.flac", "rock", 0.42)],
    ...                   min_confidence=0.5)                      # doctest: +SKIP
    >>> [p.action for p in plans]                                  # doctest: +SKIP
    ['write', 'skip-low-confidence']
    >>> report = apply_tags(plans)                                 # doctest: +SKIP
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    results, seen = [], {}
    for item in _predictions(predictions):
        path, genre, confidence = (tuple(item) + (None,))[:3]
        real = os.path.realpath(path)
        if real in seen:
            results.append(TagResult(os.fspath(path), genre, None if confidence is None else float(confidence),
                                     "error", mode=mode,
                                     reason=f"the same file as {seen[real]}, listed earlier"))
            continue
        seen[real] = os.fspath(path)
        results.append(plan_tag(path, genre, confidence, mode=mode, min_confidence=min_confidence,
                                skip_tagged=skip_tagged))
    return results
