"""The genre tag of each container, read and written through mutagen.

=============  ==================  =====================================================
format         tag                 genre field
=============  ==================  =====================================================
``mp3``        ID3v2.3 / ID3v2.4   ``TCON`` (read: ID3v1's genre byte when no ``TCON``)
``aiff``       ID3 chunk           ``TCON``
``wav``        ID3 chunk           ``TCON``
``mp4``        iTunes ``ilst``     ``©gen`` (mutagen reads an old ``gnre`` as ``©gen``)
``flac``       Vorbis comment      ``GENRE`` (any letter case; the file's own is kept)
``ogg-vorbis`` Vorbis comment      ``GENRE``
``ogg-opus``   Vorbis comment      ``GENRE``
``asf``        ASF attributes      ``WM/Genre``
=============  ==================  =====================================================

ID3 tags are loaded as they are (``translate=False``, ``load_v1=False``) and saved in
their own version (2.3 stays 2.3), with multiple values NUL-separated as they were
loaded: mutagen's default load would upgrade a v2.3 tag to v2.4 in memory and drop
frames on the way back (``RVAD``, ``TSOP``/``TSOA`` written into v2.3 by iTunes...),
and fold the ID3v1 tag into the ID3v2 one. An ID3v2.2 tag is refused: mutagen can
only write it back converted. mutagen rewrites an MP3's ID3v1 tag (from the ID3v2
frames) on every save; the MP3 handler's ``save`` puts the original trailing tags
back, byte for byte, so the ID3v1 tag is never changed (its one-byte genre included).
"""

from __future__ import annotations

import hashlib
import os

import mutagen
from mutagen.aiff import AIFF
from mutagen.asf import ASF
from mutagen.flac import FLAC
from mutagen.id3 import TCON
from mutagen.id3 import Encoding as ID3Encoding
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from .payload import split_around_payload

__all__ = ["SUPPORTED_FORMATS", "Tags", "Untaggable", "detect_format", "one_line", "open_tags"]

_CLASSES = {"mp3": MP3, "aiff": AIFF, "wav": WAVE, "mp4": MP4, "flac": FLAC,
            "ogg-vorbis": OggVorbis, "ogg-opus": OggOpus, "asf": ASF}
#: The formats genreseg can tag, by the names results and the undo log use.
SUPPORTED_FORMATS = tuple(_CLASSES)


class Untaggable(Exception):
    """A file this module cannot read or write the genre of; ``reason`` is one line."""

    def __init__(self, reason: str):
        self.reason = one_line(reason)
        super().__init__(self.reason)


def one_line(text) -> str:
    """``text`` with its whitespace runs (newlines included) folded into single spaces."""
    return " ".join(str(text).split())


def _error_text(err: Exception) -> str:
    return one_line(err) or type(err).__name__


def detect_format(path) -> str:
    """The format name (one of :data:`SUPPORTED_FORMATS`) of ``path``, found by mutagen.

    Raises
    ------
    Untaggable
        Missing, unreadable, not audio mutagen knows, or a format not written here.
    """
    if not os.path.exists(path):
        raise Untaggable("file not found")
    if os.path.isdir(path):
        raise Untaggable("is a folder, not a file")
    try:
        found = mutagen.File(path)
    except Exception as err:  # mutagen raises its own and struct/IO errors for odd bytes
        raise Untaggable(f"not a taggable audio file ({_error_text(err)})") from None
    if found is None:
        raise Untaggable("not an audio format mutagen can tag")
    for name, cls in _CLASSES.items():
        if type(found) is cls:
            return name
    raise Untaggable(f"mutagen reads it as {type(found).__name__}, which genreseg tag does not write "
                     f"(it writes {', '.join(SUPPORTED_FORMATS)})")


def open_tags(path, kind: str | None = None) -> "Tags":
    """Open ``path`` with mutagen as a :class:`Tags` of its format (or of ``kind``).

    Raises
    ------
    Untaggable
        As :func:`detect_format`, or the file cannot be loaded as ``kind``.
    """
    kind = kind or detect_format(path)
    cls = _CLASSES[kind]
    handler = _HANDLERS[kind]
    try:
        loaded = cls(path, **handler.LOAD_OPTIONS)
    except Exception as err:
        raise Untaggable(f"mutagen cannot read it as {kind} ({_error_text(err)})") from None
    return handler(path, kind, loaded)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Tags:
    """One file's tags as mutagen loaded them, seen through its genre field.

    Attributes
    ----------
    path : str
    kind : str
        One of :data:`SUPPORTED_FORMATS`.
    file : mutagen.FileType
    """

    LOAD_OPTIONS: dict = {}

    def __init__(self, path, kind: str, loaded):
        self.path, self.kind, self.file = str(path), kind, loaded

    def genres(self) -> list[str]:
        """The genre values, in order (empty when there is none)."""
        raise NotImplementedError

    def state(self):
        """The genre field as stored (JSON data), for :meth:`restore`; None when absent."""
        raise NotImplementedError

    def set_genres(self, values: list[str]) -> None:
        """Make the genre field hold exactly ``values`` (in memory; :meth:`save` writes)."""
        raise NotImplementedError

    def restore(self, state) -> None:
        """Put back a genre field :meth:`state` returned (None: remove the field)."""
        raise NotImplementedError

    def others(self) -> list:
        """Everything but the genre field, comparable between two loads of a file."""
        raise NotImplementedError

    def stream_info(self) -> str:
        """mutagen's description of the audio stream (length, rate, channels...)."""
        return one_line(self.file.info.pprint())

    def save(self) -> None:
        """Write the tags into the file they were loaded from."""
        self.file.save()


class _ID3(Tags):
    LOAD_OPTIONS = {"translate": False, "load_v1": False}

    def __init__(self, path, kind, loaded):
        super().__init__(path, kind, loaded)
        tags = loaded.tags
        if tags is not None and tags.version < (2, 3, 0):
            raise Untaggable("ID3v2.2 tag: mutagen can only write it back converted to ID3v2.3/2.4; "
                             "convert it first (e.g. mid3v2 --convert)")
        self.version = tags.version[1] if tags is not None else 4

    def _tcon(self):
        return None if self.file.tags is None else self.file.tags.get("TCON")

    def genres(self):
        tcon = self._tcon()
        return list(tcon.genres) if tcon is not None else []

    def state(self):
        tcon = self._tcon()
        return None if tcon is None else {"encoding": int(tcon.encoding), "text": list(tcon.text)}

    def set_genres(self, values):
        if self.file.tags is None:
            self.file.add_tags()
        encoding = ID3Encoding.UTF8 if self.version == 4 else ID3Encoding.UTF16  # v2.3 has no UTF-8
        self.file.tags.setall("TCON", [TCON(encoding=encoding, text=list(values))])

    def restore(self, state):
        if state is None:
            if self.file.tags is not None:
                self.file.tags.delall("TCON")
            return
        if self.file.tags is None:
            self.file.add_tags()
        self.file.tags.setall("TCON", [TCON(encoding=ID3Encoding(state["encoding"]), text=state["text"])])

    def others(self):
        tags = self.file.tags
        if tags is None:
            return []
        frames = sorted((key, _digest(repr(frame).encode())) for key, frame in tags.items() if key != "TCON")
        frames += sorted(("unknown", _digest(raw)) for raw in tags.unknown_frames)
        return [("version", tags.version[:2])] + frames if frames else []  # a new tag has only TCON

    def save(self):
        # v23_sep=None: text values are written NUL-separated, as they were loaded.
        self.file.save(v2_version=self.version, v23_sep=None)


class _MP3(_ID3):
    def __init__(self, path, kind, loaded):
        super().__init__(path, kind, loaded)
        _, _, self._tail = split_around_payload(path, "mp3")

    def genres(self):
        if self._tcon() is not None:
            return super().genres()
        id3v1 = self._tail[-128:]  # no TCON: an ID3v1 genre is what players show
        if len(id3v1) == 128 and id3v1[:3] == b"TAG" and id3v1[127] < len(TCON.GENRES):
            return [TCON.GENRES[id3v1[127]]]
        return []

    def save(self):
        super().save()  # mutagen rewrites an ID3v1 tag from the ID3v2 frames: put back the original
        _, (_, end), tail = split_around_payload(self.path, "mp3")
        if tail != self._tail:
            with open(self.path, "r+b") as fh:
                fh.seek(end)
                fh.truncate()
                fh.write(self._tail)


class _MP4(Tags):
    KEY = "\xa9gen"

    def genres(self):
        return [] if self.file.tags is None else list(self.file.tags.get(self.KEY, []))

    def state(self):
        return None if self.file.tags is None or self.KEY not in self.file.tags else self.genres()

    def set_genres(self, values):
        if self.file.tags is None:
            self.file.add_tags()
        self.file.tags[self.KEY] = list(values)

    def restore(self, state):
        if state is None:
            if self.file.tags is not None:
                self.file.tags.pop(self.KEY, None)
        else:
            self.set_genres(state)

    def others(self):
        tags = self.file.tags
        if tags is None:
            return []
        items = sorted((key, _digest(repr(value).encode())) for key, value in tags.items() if key != self.KEY)
        failed_atoms = getattr(tags, "_failed_atoms", {})  # atoms mutagen could not parse, written back raw
        failed = sorted((key, _digest(b"".join(raw))) for key, raw in failed_atoms.items())
        return items + failed


class _Vorbis(Tags):
    """Vorbis comments (FLAC, Ogg Vorbis, Ogg Opus): ``(key, value)`` pairs, keys in any case."""

    def _pairs(self):
        return [] if self.file.tags is None else list(self.file.tags)

    def genres(self):
        return [value for key, value in self._pairs() if key.lower() == "genre"]

    def state(self):
        pairs = [[key, value] for key, value in self._pairs() if key.lower() == "genre"]
        return pairs or None

    def set_genres(self, values):
        if self.file.tags is None:
            self.file.add_tags()
        key = next((k for k, _ in self._pairs() if k.lower() == "genre"), "GENRE")  # keep the file's case
        self.file.tags[key] = list(values)  # removes every case of the key, appends the values

    def restore(self, state):
        if self.file.tags is None:
            if state is None:
                return
            self.file.add_tags()
        self.file.tags[:] = [(k, v) for k, v in self._pairs() if k.lower() != "genre"]
        self.file.tags.extend((key, value) for key, value in state or [])

    def others(self):
        if self.file.tags is None:
            return []
        return [("vendor", self.file.tags.vendor)] + [
            (key, _digest(value.encode("utf-8", "surrogatepass"))) for key, value in self._pairs()
            if key.lower() != "genre"]


class _FLAC(_Vorbis):
    def others(self):
        blocks = [(block.code, _digest(block.write())) for block in self.file.metadata_blocks
                  if block.code not in (1, 4)]  # padding and the Vorbis comment (compared below)
        return blocks + super().others()


class _ASF(Tags):
    KEY = "WM/Genre"

    def genres(self):
        tags = self.file.tags
        return [] if tags is None or self.KEY not in tags else [str(v) for v in tags[self.KEY]]

    def state(self):
        return self.genres() if self.file.tags is not None and self.KEY in self.file.tags else None

    def set_genres(self, values):
        if self.file.tags is None:
            self.file.add_tags()
        self.file.tags[self.KEY] = list(values)

    def restore(self, state):
        if state is not None:
            self.set_genres(state)
        elif self.file.tags is not None and self.KEY in self.file.tags:
            del self.file.tags[self.KEY]

    def others(self):
        tags = self.file.tags
        return [] if tags is None else [(key, _digest(repr(value).encode())) for key, value in tags
                                        if key != self.KEY]


_HANDLERS = {"mp3": _MP3, "aiff": _ID3, "wav": _ID3, "mp4": _MP4, "flac": _FLAC,
             "ogg-vorbis": _Vorbis, "ogg-opus": _Vorbis, "asf": _ASF}
