"""Genre without training: the pretrained musicnn taggers' genre tags as a classifier.

``genreseg predict msd song.mp3`` answers at once, with no labelled collection and no
network: the MSD tagger (Million Song Dataset, 50 last.fm tags) or the MTT tagger
(MagnaTagATune, 50 tags, classical among them) runs on the file, and its genre tags
become the answer. **The genres are the tagger's, not the user's**: to classify into
your own labels, train a model (``genreseg train``), on musicnn frames if you like
(``genreseg extract DATA --out STORE --features musicnn``).

A :class:`PretrainedTagger` answers as a trained :class:`~genreseg.GenreClassifier`
does (``predict_files``, ``segment``, the service's JSON), with the tag probabilities
added: per frame (3-s windows every 372 ms), the genre tags' probabilities are
normalised to sum to one; the track's answer normalises the track mean of the tags.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ModelError
from .features import FeatureConfig

__all__ = ["MSD_GENRES", "MTT_GENRES", "PRETRAINED", "PretrainedTagger", "load_model"]

#: Names accepted where a model directory is expected, and the tagger each one runs.
PRETRAINED = {"msd": "MSD_musicnn", "mtt": "MTT_musicnn"}

#: The 30 of MSD_musicnn's 50 tags that name a genre. Left out: eras (60s ... 00s, oldies),
#: moods (beautiful, Mellow, chill, sad, happy, sexy, catchy, party), voices (female/male
#: vocalists), instruments and textures (guitar, acoustic, instrumental).
MSD_GENRES = ("rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock", "jazz", "metal",
              "chillout", "classic rock", "soul", "indie rock", "electronica", "folk", "punk", "blues",
              "hard rock", "ambient", "experimental", "Hip-Hop", "country", "easy listening", "funk", "electro",
              "heavy metal", "Progressive rock", "rnb", "indie pop", "House")
#: The 12 of MTT_musicnn's 50 tags that name a genre (``classic`` is left to its synonym
#: ``classical``; the rest are instruments, voices, tempi and moods).
MTT_GENRES = ("classical", "techno", "electronic", "rock", "indian", "opera", "pop", "new age", "dance",
              "country", "metal", "ambient")


def load_model(model, device: str | None = None):
    """A trained model directory, or a pretrained tagger by name (``"msd"``, ``"mtt"``).

    A directory of that name that holds a model wins over the tagger's name.

    Returns
    -------
    GenreClassifier or PretrainedTagger
    """
    from .classifier import META_FILE, GenreClassifier

    name = str(model)
    if name.lower() in PRETRAINED and not (Path(name) / META_FILE).exists():
        return PretrainedTagger(name.lower())
    return GenreClassifier.load(model, device=device)


class PretrainedTagger:
    """A musicnn tagger's genre tags, answering like a trained :class:`~genreseg.GenreClassifier`.

    Parameters
    ----------
    name : {"msd", "mtt"}
        The tagger (see :data:`PRETRAINED`).

    Attributes
    ----------
    label_names_ : list of str
        The tagger's genre tags (:data:`MSD_GENRES` or :data:`MTT_GENRES`).
    tags_ : list of str
        All 50 tags, the columns of the tag probabilities.
    feature_config_ : FeatureConfig
        musicnn frames holding the tag probabilities (``musicnn_output="taggram"``).

    Examples
    --------
    >>> tagger = PretrainedTagger("msd")
    >>> tagger.predict_files(["song.mp3"])[0].genre
    'rock'
    """

    pretrained = True

    def __init__(self, name: str = "msd"):
        from .features.musicnn.labels import MSD_TAGS, MTT_TAGS

        if name not in PRETRAINED:
            raise ModelError(f"unknown pretrained tagger {name!r} (expected {', '.join(PRETRAINED)})")
        self.name = name
        self.tags_ = list(MSD_TAGS if name == "msd" else MTT_TAGS)
        self.label_names_ = list(MSD_GENRES if name == "msd" else MTT_GENRES)
        self.classes_ = np.asarray(self.label_names_)
        self._genre_columns = np.array([self.tags_.index(g) for g in self.label_names_])
        self.feature_config_ = FeatureConfig(family="musicnn", musicnn_model=PRETRAINED[name],
                                             musicnn_output="taggram")
        self.training_: dict = {}

    def genre_posteriors(self, taggram: np.ndarray) -> np.ndarray:
        """Per-row genre distribution: the genre tags' probabilities, normalised to sum to 1."""
        genres = np.asarray(taggram, dtype=np.float64)[:, self._genre_columns]
        return genres / np.maximum(genres.sum(axis=1, keepdims=True), 1e-12)

    def predict_files(self, paths, timeline: bool = False, progress: bool = False,
                      max_duration: float | None = None) -> list:
        """Genre and tag probabilities of each file; bad files are reported, not raised.

        Returns
        -------
        list of genreseg.classifier.TrackPrediction
            ``probabilities`` over :attr:`label_names_`, ``tags`` over all 50 tags (the
            track means of the frames' tag probabilities).
        """
        from .classifier import predict_files

        return predict_files(self, paths, timeline=timeline, progress=progress, max_duration=max_duration)

    def segment(self, path, config=None, progress: bool = False):
        """Genre timeline of a recording from the tagger's per-frame genre tags.

        See :meth:`genreseg.GenreClassifier.segment`; the frames are computed as a
        stream, and only their 50 tag probabilities are kept.
        """
        from .classifier import segment_file

        return segment_file(self, path, config, progress)

    def file_analyser(self, decide: bool = True, timeline_window_frames: int | None = None):
        """The last stage of :func:`genreseg.pipeline.analyse_file`: tag frames in, genres out."""
        return _TaggramStream(self, decide, timeline_window_frames is not None)

    def describe(self) -> dict:
        """What the service's ``GET /model`` says of this tagger."""
        return {"labels": list(self.label_names_), "pretrained": PRETRAINED[self.name],
                "note": "genres of the tagger's training tags, not labels of your own",
                "tags": list(self.tags_), "feature_config": self.feature_config_.to_dict(),
                "feature_hash": self.feature_config_.hash}


class _TaggramStream:
    """Keeps a file's tag probabilities (50 per frame) and answers from them at the end."""

    def __init__(self, tagger: PretrainedTagger, decide: bool, timeline: bool):
        self.tagger, self.decide, self.timeline = tagger, decide, timeline
        self.parts: list = []

    def push(self, frames: np.ndarray) -> None:
        self.parts.append(np.asarray(frames, dtype=np.float32))

    def finish(self):
        from .pipeline import TrackAnswer

        taggram = np.concatenate(self.parts)
        answer = TrackAnswer(info={"frame_model": f"pretrained {PRETRAINED[self.tagger.name]}"})
        post = self.tagger.genre_posteriors(taggram).astype(np.float32)
        if self.decide:
            tags = taggram.mean(axis=0)
            answer.probabilities = self.tagger.genre_posteriors(tags[None])[0]
            answer.tags = {t: float(p) for t, p in zip(self.tagger.tags_, tags)}
            answer.frame_posteriors = post
        if self.timeline:
            answer.timeline_posteriors = post
        return answer
