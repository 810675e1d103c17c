"""What the service says about one audio file and about its model.

:func:`analyse` is the service's only way to the classifier: one
:func:`genreseg.pipeline.analyse_file` per upload, the pipeline ``genreseg predict`` and
``genreseg segment`` run (same decoding, same features, same error messages), which
decodes the file once and gives the genre, the posteriors and the segments together.

>>> from genreseg import GenreClassifier
>>> from genreseg.service import analyse
>>> analyse(GenreClassifier.load("model"), "song.mp3")["genre"]
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings

import numpy as np

from ..audio import SilentAudioWarning
from ..errors import GenresegError

#: At most this many points of the posterior timeline go to a client (a 4-minute song has
#: ~650 frames, an hour ~9700); enough for a chart as wide as a screen.
TIMELINE_POINTS = 400
#: Width of the moving average over the frame posteriors, in seconds (8 frames of 0.37 s):
#: frame posteriors flicker from frame to frame; a few seconds is what a listener calls a passage.
SMOOTH_SECONDS = 3.0


def smooth_timeline(times, posteriors, hop_s: float, smooth_s: float = SMOOTH_SECONDS,
                    max_points: int = TIMELINE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Moving-average the frame posteriors, then keep at most ``max_points`` of them.

    Parameters
    ----------
    times : array, shape (n,)
        Frame centre times in seconds.
    posteriors : array, shape (n, n_labels)
        Per-frame class posteriors (rows sum to 1).
    hop_s : float
        Seconds between frames.
    smooth_s : float
        Width of the centred moving average in seconds (an odd number of frames, at
        least 1); widened to the decimation step so that no frame is left out of the
        points that are kept.
    max_points : int

    Returns
    -------
    times : np.ndarray, shape (m,)
    posteriors : np.ndarray, shape (m, n_labels)
        Rows still sum to 1 (an average of distributions). ``m <= max_points``.
    """
    from scipy.ndimage import uniform_filter1d

    posteriors = np.asarray(posteriors, dtype=np.float64)
    n = len(posteriors)
    step = max(1, math.ceil(n / max_points))
    width = max(1, round(smooth_s / hop_s), step)
    width += 1 - width % 2  # odd: centred on the frame it stands for
    smoothed = uniform_filter1d(posteriors, size=width, axis=0, mode="nearest")
    keep = np.arange(step // 2, n, step)
    return np.asarray(times, dtype=np.float64)[keep], smoothed[keep]


def analyse(clf, path, *, name: str | None = None, max_duration: float | None = None,
            smooth_s: float = SMOOTH_SECONDS, max_points: int = TIMELINE_POINTS) -> dict:
    """Genre, probabilities, posterior timeline and segments of one audio file, from one pass.

    Parameters
    ----------
    clf : GenreClassifier or PretrainedTagger
        A fitted or loaded model.
    path : str or Path
        The audio file.
    name : str, optional
        What to call the file in the answer and in error messages (the service passes
        the client's file name, never a path of its own); default ``str(path)``.
    max_duration : float, optional
        Refuse files longer than this many seconds.
    smooth_s, max_points
        See :func:`smooth_timeline`.

    Returns
    -------
    dict
        ``file``, ``genre``, ``probabilities`` (label → probability, in the model's
        label order), ``duration_s``, ``timeline`` (``labels``, ``times_s``,
        ``posteriors``, ``smoothing_s``, ``frame_hop_s``, ``n_frames``: the posteriors the
        segments were decoded from) and ``segments`` (``start_s``, ``end_s``, ``genre``,
        ``confidence``), ``warnings`` (e.g. digital silence: analysed, but there is no
        music to classify), and ``tags`` for a pretrained tagger.

    Raises
    ------
    GenresegError
        The file cannot be analysed; the message is the one line ``genreseg predict``
        prints, with ``name`` in place of the path.
    """
    from ..pipeline import analyse_file
    from ..timeline import TimelineConfig

    name = str(path) if name is None else name
    # warnings.catch_warnings is process-wide: the service runs one analysis at a time.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SilentAudioWarning)
        try:
            result = analyse_file(clf, path, segments=TimelineConfig(), max_duration=max_duration)
        except GenresegError as err:
            raise GenresegError(str(err).replace(str(path), name, 1)) from None
    notes = []
    for w in caught:
        if issubclass(w.category, SilentAudioWarning):
            notes.append(str(w.message).replace(str(path), name, 1))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    hop_s = clf.feature_config_.hop_seconds
    times, post = smooth_timeline(result.times, result.timeline_posteriors, hop_s, smooth_s, max_points)
    return {
        "file": name,
        "genre": result.genre,
        "probabilities": result.probabilities,
        "duration_s": round(result.duration_s, 3),
        "timeline": {
            "labels": list(result.label_names),
            "times_s": [round(float(t), 3) for t in times],
            "posteriors": np.round(post, 4).tolist(),
            "smoothing_s": smooth_s,
            "frame_hop_s": hop_s,
            "n_frames": len(result.times),
        },
        "segments": [{"start_s": float(s.start_s), "end_s": float(s.end_s), "genre": s.genre,
                      "confidence": float(s.confidence)} for s in result.segments],
        "warnings": notes,
        **({"tags": result.tags} if result.tags is not None else {}),
    }


def describe_model(clf) -> dict:
    """What a client may want to know of a model: labels, features, frame model, training."""
    if getattr(clf, "pretrained", False):  # a pretrained tagger describes itself
        return clf.describe()
    from ..pipeline import file_feature_config

    file_feature_config(clf)  # a model fitted on bare arrays cannot analyse files: say so in one line
    meta = getattr(clf, "meta_", {})  # a loaded model keeps its model.json
    training = {k: v for k, v in clf.training_.items() if k != "track_ids"}
    return {
        "labels": list(clf.label_names_),
        "feature_config": clf.feature_config_.to_dict(),
        "feature_hash": clf.feature_config_.hash,
        "frame_model": clf.frame_config.to_dict(),
        "segment_config": clf.segment_config.to_dict(),
        "training": training,
        "versions": meta.get("versions"),
        "saved": meta.get("saved"),
    }


def warm_up(clf, seconds: float = 30.0, seed: int = 0) -> float:
    """Analyse ``seconds`` of quiet noise once, so that the first client does not wait for
    first-call setup (FFT plans, torch); measured ~2 s on the first 30-s clip of a process.

    Returns the seconds it took.
    """
    import soundfile as sf

    rate = clf.feature_config_.sample_rate
    noise = 0.01 * np.random.default_rng(seed).standard_normal(int(seconds * rate)).astype(np.float32)
    fd, path = tempfile.mkstemp(prefix="genreseg-warm-up-", suffix=".wav")
    t0 = time.perf_counter()
    try:
        os.close(fd)
        sf.write(path, noise, rate)
        analyse(clf, path)
    finally:
        os.unlink(path)
    return time.perf_counter() - t0
