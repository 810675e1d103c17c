"""The 50 tags of the two musicnn models, in the order of their output units.

From musicnn 0.1.0's ``configuration.py`` (``MSD_LABELS``, ``MTT_LABELS``); spelling and
case are kept as the package has them ("Mellow", "Hip-Hop", both "vocal" and "vocals").
"""

from __future__ import annotations

__all__ = ["MSD_TAGS", "MTT_TAGS", "TAGS"]

#: Million Song Dataset (last.fm) tags of ``MSD_musicnn``.
MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance",
    "00s", "alternative rock", "jazz", "beautiful", "metal", "chillout",
    "male vocalists", "classic rock", "soul", "indie rock", "Mellow", "electronica",
    "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues",
    "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar",
    "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy", "funk",
    "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad",
    "House", "happy",
)

#: MagnaTagATune tags of ``MTT_musicnn``.
MTT_TAGS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock",
    "fast", "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian",
    "opera", "male", "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet",
    "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
    "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal",
    "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice",
    "choral",
)

#: Tags by model name.
TAGS: dict[str, tuple[str, ...]] = {"MSD_musicnn": MSD_TAGS, "MTT_musicnn": MTT_TAGS}
