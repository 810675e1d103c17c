"""Write predicted genres into audio files' tags (the library half of ``genreseg tag``).

Formats (through mutagen): MP3 (ID3v2.3/2.4 ``TCON``), AIFF and WAV (ID3 chunk),
MP4/M4A (``©gen``), FLAC, Ogg Vorbis and Ogg Opus (Vorbis comment ``GENRE``), ASF/WMA
(``WM/Genre``); see :mod:`genreseg.tagging.containers`.

Three steps, each usable on its own from a notebook:

1. :func:`plan_tags` (a dry run: reads only) says per file what would happen:
   ``"write"``, ``"unchanged"``, ``"skip-low-confidence"``, ``"skip-tagged"`` or
   ``"error"`` (with a one-line reason; the batch goes on).
2. :func:`apply_tags` writes the ``"write"`` ones. Nothing is lost: each file is
   changed through a copy that is checked (genre as asked, every other tag and the
   cover art as before, audio fingerprint unchanged) before it atomically replaces
   the original; a failed file is left exactly as it was. Each change is recorded in
   an undo log (JSON Lines) before it is made.
3. :func:`undo` puts the files back from that log: MP3, FLAC, WAV and AIFF byte for
   byte, MP4, Ogg and ASF with their genre field exactly as it was; a file changed
   since is refused.

Examples
--------
>>> from genreseg.tagging import plan_tags, apply_tags, undo, read_genres
>>> plans = plan_tags([("a.mp3", "jazz", 0.93), ("b.m4a", "rock", 0.41)],
...                   mode="replace", min_confidence=0.5)             # doctest: +SKIP
>>> for p in plans:                                                   # doctest: +SKIP
...     print(p.action, p.message)
write a.mp3: write
skip-low-confidence b.m4a: confidence 0.41 is below the minimum 0.5
>>> report = apply_tags(plans, undo_log="tag-undo.jsonl")             # doctest: +SKIP
>>> read_genres("a.mp3")                                              # doctest: +SKIP
['jazz']
>>> [r.action for r in undo("tag-undo.jsonl")]                        # doctest: +SKIP
['restored']
"""

from .apply import LOG_FORMAT, ApplyReport, apply_tags, default_undo_log_path
from .containers import SUPPORTED_FORMATS, detect_format
from .payload import BYTE_EXACT_KINDS, audio_fingerprint, payload_span
from .plan import ACTIONS, MODES, TagError, TagResult, plan_tag, plan_tags, read_genres
from .undo import UNDO_ACTIONS, UndoResult, read_undo_log, undo

__all__ = [
    "ACTIONS", "BYTE_EXACT_KINDS", "LOG_FORMAT", "MODES", "SUPPORTED_FORMATS", "UNDO_ACTIONS",
    "ApplyReport", "TagError", "TagResult", "UndoResult",
    "apply_tags", "audio_fingerprint", "default_undo_log_path", "detect_format", "payload_span",
    "plan_tag", "plan_tags", "read_genres", "read_undo_log", "undo",
]
