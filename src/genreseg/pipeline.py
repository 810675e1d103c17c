"""One pass from an audio file to every answer: its genre, its probabilities, its timeline.

A chain of processors, in the manner of madmom's::

    file ──► FrameSource ─────────────────────► model.file_analyser() ──► FileAnalysis
             decode, downmix, resample            frame posteriors (one stream per use),
             (genreseg.audio.AudioStream), then   track decision (segment statistics),
             frames (genreseg.features)           per-frame timeline, decoded segments

Every stage works block by block, so memory stays flat in the file's length: only the
``(T, C)`` posteriors (160 kB an hour for 10 genres) grow with it. ``genreseg predict``,
``genreseg segment``, :meth:`GenreClassifier.predict_files`, :meth:`GenreClassifier.segment`,
the pretrained taggers and the service all call :func:`analyse_file`, so each file is
decoded once and its frames are computed once, whatever is asked of it.

>>> from genreseg.pipeline import analyse_file
>>> from genreseg.pretrained import load_model
>>> result = analyse_file(load_model("model"), "set.mp3", segments=TimelineConfig())  # doctest: +SKIP
>>> result.genre, result.segments[0]                                                    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import AudioError, ModelError

__all__ = ["FileAnalysis", "FrameSource", "TrackAnswer", "analyse_file", "file_feature_config"]


class FrameSource:
    """The frames of an audio file, decoded and computed block by block.

    Iterating yields consecutive ``(n, n_features)`` float32 chunks of frames of
    ``config``'s family; after a complete iteration :attr:`info` describes the audio
    (:class:`genreseg.audio.AudioInfo`).

    Parameters
    ----------
    path : str or Path
    config : genreseg.features.FeatureConfig
    max_duration : float, optional
        Refuse a file longer than this many seconds. Checked as the audio arrives, so a
        long file is stopped after ``max_duration`` of work, whatever its header says.
    progress : bool
        A tqdm bar in seconds of audio (its total from the header where soundfile can
        read one).

    Raises
    ------
    genreseg.errors.AudioError
        While iterating: the file cannot be used (one line naming it and the reason).
    """

    def __init__(self, path, config, max_duration: float | None = None, progress: bool = False):
        self.path, self.config, self.max_duration, self.progress = path, config, max_duration, progress
        self.info = None

    def blocks(self):
        """The decoded signal, float32 mono at ``config.sample_rate``, block by block."""
        from .audio import AudioStream

        config = self.config
        stream = AudioStream(self.path, config.sample_rate, config.min_samples)
        blocks = iter(stream)
        if self.max_duration is not None:
            blocks = _at_most(blocks, self.max_duration, config.sample_rate, self.path)
        if self.progress:
            blocks = _with_progress(blocks, self.path, config.sample_rate)
        yield from blocks
        self.info = stream.info

    def __iter__(self):
        from .features import iter_features

        return iter_features(self.blocks(), self.config)


def _at_most(blocks, seconds: float, sample_rate: int, path):
    """Pass ``blocks`` on until they hold more than ``seconds`` of signal, then raise AudioError."""
    limit, seen = int(seconds * sample_rate), 0
    for block in blocks:
        seen += len(block)
        if seen > limit:
            raise AudioError(path, f"too long: more than the limit of {seconds:g} s")
        yield block


def _duration_hint(path) -> float | None:
    """The file's duration from its header, for the progress bar's total (None if unknown)."""
    try:
        import soundfile as sf

        return float(sf.info(str(path)).duration)
    except Exception:  # any format soundfile cannot size: the bar just has no total
        return None


def _with_progress(blocks, path, rate: int):
    from tqdm.auto import tqdm

    hint = _duration_hint(path)
    # Counted in samples (exact), shown in seconds of audio.
    with tqdm(total=round(hint * rate) if hint else None, unit_scale=1 / rate, desc=str(path)[-40:], leave=False,
              bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]") as bar:
        for block in blocks:
            bar.update(min(len(block), bar.total - bar.n) if bar.total else len(block))
            yield block


@dataclass
class TrackAnswer:
    """What a model's file analyser gives at the end of a file (see :func:`analyse_file`).

    Attributes
    ----------
    probabilities : np.ndarray, shape (C,) or None
        The track decision's probabilities (``None`` when no decision was asked for).
    frame_posteriors : np.ndarray, shape (T, C) or None
        Per-frame posteriors of the model that decides (a trained model's full frame
        model run over the whole track).
    timeline_posteriors : np.ndarray, shape (T, C) or None
        Per-frame posteriors the segment decoder reads (the same array where they are
        the same numbers; an LSTM restarted on short windows otherwise).
    tags : dict or None
        A pretrained tagger's probability of each of its tags.
    """

    probabilities: np.ndarray | None = None
    frame_posteriors: np.ndarray | None = None
    timeline_posteriors: np.ndarray | None = None
    tags: dict | None = None
    info: dict = field(default_factory=dict)


@dataclass
class FileAnalysis:
    """Everything one pass over one audio file found.

    Attributes
    ----------
    path : str
    duration_s : float
        Seconds of audio analysed.
    label_names : list of str
        The genres, the columns of every posterior array.
    times : np.ndarray, shape (T,)
        Frame centres in seconds.
    genre : str or None
        The track's genre (``None`` when no decision was asked for).
    probabilities : dict or None
        Genre → probability of the track decision, in label order.
    tags : dict or None
        A pretrained tagger's tag probabilities (track means).
    frame_posteriors, timeline_posteriors : np.ndarray or None
        See :class:`TrackAnswer`.
    segments : list of genreseg.timeline.GenreSegment or None
        Decoded genre segments (``None`` when not asked for).
    timeline_config : genreseg.timeline.TimelineConfig or None
    audio : genreseg.audio.AudioInfo
    info : dict
        Provenance from the model (e.g. the frame model's kind).
    """

    path: str
    duration_s: float
    label_names: list
    times: np.ndarray
    genre: str | None = None
    probabilities: dict | None = None
    tags: dict | None = None
    frame_posteriors: np.ndarray | None = None
    timeline_posteriors: np.ndarray | None = None
    segments: list | None = None
    timeline_config: object = None
    audio: object = None
    info: dict = field(default_factory=dict)

    def prediction(self, timeline: bool = False):
        """This analysis as a :class:`genreseg.classifier.TrackPrediction` (``predict``'s answer)."""
        from .classifier import TrackPrediction

        return TrackPrediction(path=self.path, genre=self.genre, probabilities=self.probabilities,
                               duration=self.duration_s, tags=self.tags,
                               frame_times=self.times if timeline else None,
                               frame_posteriors=self.frame_posteriors if timeline else None)

    def timeline(self):
        """This analysis as a :class:`genreseg.timeline.Timeline` (``segment``'s answer)."""
        from .timeline import Timeline

        if self.segments is None:
            raise ValueError("this analysis decoded no segments: analyse_file(..., segments=TimelineConfig())")
        return Timeline(path=self.path, duration_s=self.duration_s, times=self.times,
                        posteriors=self.timeline_posteriors, label_names=list(self.label_names),
                        segments=self.segments, config=self.timeline_config, info=dict(self.info))


def file_feature_config(model):
    """The features ``model`` computes of audio files, or a :class:`ModelError` saying why it cannot."""
    config = getattr(model, "feature_config_", None)
    if config is None:
        raise ModelError("this model was fitted on bare arrays without a feature config, so it cannot "
                         "compute features of audio files: fit(X, y, feature_config=...) names it")
    return config


def analyse_file(model, path, *, decide: bool = True, segments=None, max_duration: float | None = None,
                 progress: bool = False) -> FileAnalysis:
    """Decode ``path`` once, compute its frames once, and answer every question asked of it.

    Parameters
    ----------
    model : GenreClassifier or PretrainedTagger
        Anything with ``feature_config_``, ``label_names_`` and
        ``file_analyser(decide, timeline_window_frames)`` returning an object with
        ``push(frames)`` and ``finish() -> TrackAnswer``.
    path : str or Path
    decide : bool
        Compute the track decision (genre, probabilities, tags).
    segments : genreseg.timeline.TimelineConfig or None
        Decode genre segments with these settings (``None``: no segments).
    max_duration : float, optional
        Refuse files longer than this many seconds (an :class:`AudioError` of the file).
    progress : bool
        A progress bar in seconds of audio.

    Returns
    -------
    FileAnalysis

    Raises
    ------
    genreseg.errors.AudioError
        The file cannot be used (one line naming it and the reason).
    genreseg.errors.ModelError
        The model does not fit the frames (e.g. a model whose weights expect other
        features than its config names).
    """
    config = file_feature_config(model)
    window = segments.window_frames(config.hop_seconds) if segments is not None else None
    analyser = model.file_analyser(decide=decide, timeline_window_frames=window)
    source = FrameSource(path, config, max_duration=max_duration, progress=progress)
    n_frames = 0
    try:
        for chunk in source:
            n_frames += len(chunk)
            analyser.push(chunk)
        answer = analyser.finish()
    except ValueError as err:  # a frame model of other features than its config says
        raise ModelError(f"{path}: {err}") from None
    duration = float(source.info.duration)
    times = np.arange(n_frames) * config.hop_seconds
    labels = list(model.label_names_)
    result = FileAnalysis(path=str(path), duration_s=duration, label_names=labels, times=times,
                          frame_posteriors=answer.frame_posteriors, timeline_posteriors=answer.timeline_posteriors,
                          tags=answer.tags, audio=source.info, info=dict(answer.info))
    if answer.probabilities is not None:
        proba = np.asarray(answer.probabilities, dtype=np.float64)
        result.genre = labels[int(np.argmax(proba))]
        result.probabilities = {n: float(p) for n, p in zip(labels, proba)}
    if segments is not None:
        from .timeline import decode_segments

        result.segments = decode_segments(answer.timeline_posteriors, times, labels, segments, duration)
        result.timeline_config = segments
    return result
