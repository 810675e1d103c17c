"""Genre timelines of long recordings: where each genre starts and ends.

>>> from genreseg import GenreClassifier
>>> clf = GenreClassifier.load("model")                        # doctest: +SKIP
>>> tl = clf.segment("dj-set.mp3", progress=True)              # doctest: +SKIP
>>> [(s.start_s, s.end_s, s.genre, s.confidence) for s in tl.segments]  # doctest: +SKIP

The frame model gives a genre posterior every hop (372 ms). :func:`decode_segments`
turns those into segments with a duration-aware decoder: Viterbi over a hidden
Markov model whose states are the genres, each expanded into a chain of
``D = round(min_duration_s / hop)`` states that must be walked through before the
genre may change (an explicit minimum duration), and whose last state prefers to
loop on itself over moving to any one other genre by a factor
``exp(switch_penalty)`` ("sticky" transitions). The
frame posteriors are the emission scores (a hybrid HMM: the training genres are
balanced, so posteriors and scaled likelihoods differ by a constant). Every path pays
the same normalisation per frame (see :func:`transition_matrix`), so the best path
maximises the summed log posteriors minus ``switch_penalty`` per change under the
minimum duration; :func:`frame_path` finds it with a segment-level Viterbi, tested
against :func:`librosa.sequence.viterbi` on the expanded HMM and against
enumeration of all paths.

Writers for the segments (table, CSV, JSON, JAMS, Audacity labels, PNG) live in
:mod:`genreseg.timeline_io`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .configs import ConfigMixin

__all__ = ["GenreSegment", "Timeline", "TimelineConfig", "decode_segments", "frame_path", "hop_of", "runs_to_segments",
           "transition_matrix"]

#: Emission floor: log(0) would forbid a genre outright on one overconfident frame.
POSTERIOR_FLOOR = 1e-6


@dataclass(frozen=True)
class TimelineConfig(ConfigMixin):
    """Settings of the segment decoder.

    Parameters
    ----------
    switch_penalty : float
        Cost of a genre change, in nats of log-posterior: staying in a genre is
        ``exp(switch_penalty)`` times as likely, per frame, as moving to any one
        other genre. A change is made only where the new genre's log-posteriors
        outweigh the old one's by more than this over the frames it covers. 0 with
        ``min_duration_s=0`` is the raw frame argmax.
    min_duration_s : float
        No segment is shorter than this (except the last of a file, which the file's
        end may cut); a blip of another genre shorter than it is absorbed into its
        surroundings. Rounded to whole frames.
    lstm_window_s : float
        How far back an LSTM frame model looks: it restarts every half window on a
        window of this length, and each frame's posterior comes from a window that
        saw at least half of it before the frame (:func:`genreseg.models.iter_frame_posteriors`).
        0 runs it over the whole recording as one sequence, as ``predict`` does for
        a track; an LSTM trained on single-genre tracks then lingers in the old
        genre for many seconds after a change. Ignored by DNN frame models.

    Defaults: chosen by measurement on training data only. In each of five folds of
    gtzan_mini, models trained on three training folds decoded two 10-minute mixes
    of the fourth (``benchmarks/segment.py``); over the grid penalty 0-32 x minimum
    0-20 s x LSTM window 0-6 s, accuracy + boundary F averaged over the folds was
    best at 8 / 20 s / 1.5 s for the LSTM (1.708; one pass, window 0: 1.436) and at
    min. 20 s with any penalty up to 16 for the DNN (1.829). Penalties tie once the
    minimum is 20 s; 8 is kept for its lead at shorter minimums. The mixes' genre
    segments last 25-30 s (GTZAN clips): a recording whose genres change faster
    than every 20 s needs a smaller ``min_duration_s``.
    """

    switch_penalty: float = 8.0
    min_duration_s: float = 20.0
    lstm_window_s: float = 1.5

    def __post_init__(self):
        if not np.isfinite(self.switch_penalty) or self.switch_penalty < 0:
            raise ValueError(f"switch_penalty must be a finite number >= 0, got {self.switch_penalty}")
        if not np.isfinite(self.min_duration_s) or self.min_duration_s < 0:
            raise ValueError(f"min_duration_s must be a finite number >= 0, got {self.min_duration_s}")
        if not np.isfinite(self.lstm_window_s) or self.lstm_window_s < 0:
            raise ValueError(f"lstm_window_s must be a finite number >= 0, got {self.lstm_window_s}")

    def min_frames(self, hop_s: float) -> int:
        """The minimum duration in frames of ``hop_s`` seconds (at least 1)."""
        return max(1, int(round(self.min_duration_s / hop_s)))

    def window_frames(self, hop_s: float) -> int:
        """The LSTM window in frames of ``hop_s`` seconds (0: the whole recording; else at least 2)."""
        return 0 if self.lstm_window_s == 0 else max(2, int(round(self.lstm_window_s / hop_s)))


@dataclass(frozen=True)
class GenreSegment:
    """One stretch of a recording given to one genre.

    Attributes
    ----------
    start_s, end_s : float
        Boundaries in seconds from the start of the file (frame boundaries: half a
        hop either side of the frame centres).
    genre : str
    confidence : float
        Mean posterior of ``genre`` over the segment's frames, in [0, 1].
    """

    start_s: float
    end_s: float
    genre: str
    confidence: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "genre": self.genre,
                "confidence": round(self.confidence, 4)}


@dataclass
class Timeline:
    """Frame posteriors of one file and the segments decoded from them.

    Attributes
    ----------
    path : str
    duration_s : float
    times : np.ndarray, shape (T,)
        Frame centres in seconds.
    posteriors : np.ndarray, shape (T, C)
    label_names : list of str
    segments : list of GenreSegment
    config : TimelineConfig
    info : dict
        Provenance (model, decoder config and hash, frame model kind).
    """

    path: str
    duration_s: float
    times: np.ndarray
    posteriors: np.ndarray
    label_names: list
    segments: list
    config: TimelineConfig = field(default_factory=TimelineConfig)
    info: dict = field(default_factory=dict)

    def to_dict(self, frames: bool = False) -> dict:
        """JSON-able summary; ``frames=True`` adds the per-frame posteriors."""
        d = {"path": self.path, "duration_s": round(self.duration_s, 3), "label_names": list(self.label_names),
             "decoder": {**self.config.to_dict(), "hash": self.config.hash}, **self.info,
             "segments": [s.to_dict() for s in self.segments]}
        if frames:
            d["frames"] = {"times": np.round(self.times, 3).tolist(),
                           "posteriors": np.round(self.posteriors, 5).tolist()}
        return d


# --------------------------------------------------------------------------- decoder
def transition_matrix(n_genres: int, min_frames: int, switch_penalty: float) -> np.ndarray:
    """Row-stochastic transitions of the expanded HMM, states ``g * min_frames + k`` and a null state.

    State ``(g, k)`` means "genre g, k + 1 frames into the segment" (the last state
    of a chain means "at least ``min_frames``"). From the last state of a chain the
    path stays with probability ``1 / Z`` or enters the first state of each other
    genre with ``exp(-switch_penalty) / Z`` (``Z`` normalises the row). Within a
    chain it moves on with ``1 / Z`` too, the rest of the row going to an absorbing
    null state (the last one) that emits nothing: so every frame pays the same
    ``log Z``, a genre change costs exactly ``switch_penalty`` more than staying, and
    short segments are not favoured for the frames they spend inside their chains.
    """
    C, D = n_genres, min_frames
    switch = float(np.exp(-switch_penalty))
    z = 1.0 + (C - 1) * switch
    A = np.zeros((C * D + 1, C * D + 1))
    for g in range(C):
        last = g * D + D - 1
        for k in range(D - 1):
            A[g * D + k, g * D + k + 1] = 1.0 / z
            A[g * D + k, -1] = 1.0 - 1.0 / z
        for h in range(C):
            A[last, h * D if h != g else last] = (switch if h != g else 1.0) / z
    A[-1, -1] = 1.0
    return A


def frame_path(posteriors: np.ndarray, min_frames: int, switch_penalty: float) -> np.ndarray:
    """The most likely genre of each frame under the sticky, minimum-duration HMM.

    The HMM is the one of :func:`transition_matrix`. Its best path maximises the
    summed log posteriors minus ``switch_penalty`` per genre change, every segment
    but the last at least ``min_frames`` long; this computes it directly as a
    segment-level dynamic programme in O(T·C²) time and O(T·C) memory. (Feeding the
    expanded ``C·D``-state HMM to :func:`librosa.sequence.viterbi` gives the same
    path, tested, at O(T·(C·D)²) time and a ~120 MB numba/librosa import, a fifth of
    the memory budget of a 60-minute file.)

    Parameters
    ----------
    posteriors : np.ndarray, shape (T, C)
    min_frames : int
        Shortest segment in frames (1: no minimum).
    switch_penalty : float
        See :class:`TimelineConfig`.

    Returns
    -------
    np.ndarray of int, shape (T,)
    """
    T, C = posteriors.shape
    D = max(1, int(min_frames))
    logp = np.log(np.clip(posteriors.astype(np.float64), POSTERIOR_FLOOR, 1.0))
    cum = np.vstack([np.zeros((1, C)), np.cumsum(logp, axis=0)])  # cum[t] = sum of frames < t
    other = ~np.eye(C, dtype=bool)
    # best[t, g]: best score of frames 0..t with frame t in a run of g at least D long;
    # came[t, g]: -1 = the run went on from t - 1, else the genre before a run that
    # started at t - D + 1 (C = the file's start).
    best = np.full((T, C), -np.inf)
    came = np.full((T, C), -1, dtype=np.int16)

    def entry(a):
        """Best score before a run starting at frame a, per genre of that run, and the genre before it."""
        if a == 0:
            return np.zeros(C), np.full(C, C)
        prev = np.where(other, best[a - 1][:, None], -np.inf)  # prev[h, g]: from h into g != h
        h = prev.argmax(axis=0)
        return prev[h, np.arange(C)] - switch_penalty, h

    for t in range(D - 1, T):
        a = t - D + 1
        enter, h = entry(a)
        fresh = enter + cum[t + 1] - cum[a]
        stay = best[t - 1] + logp[t] if t >= D else np.full(C, -np.inf)
        take = fresh > stay
        best[t] = np.where(take, fresh, stay)
        came[t] = np.where(take, h, -1)
    # The last run may be shorter than D: it can start anywhere in the last D frames.
    end_score, end_start, end_genre = -np.inf, None, None
    if T >= D and best[T - 1].max() > end_score:
        end_score, end_start, end_genre = best[T - 1].max(), None, int(best[T - 1].argmax())
    for a in range(max(0, T - D + 1), T):
        enter, h = entry(a)
        score = enter + cum[T] - cum[a]
        g = int(score.argmax())
        if score[g] > end_score:
            end_score, end_start, end_genre, end_prev = score[g], a, g, int(h[g])
    path = np.empty(T, dtype=np.int64)
    t, g = T - 1, end_genre
    if end_start is not None:  # a short last run
        path[end_start:] = g
        t, g = end_start - 1, end_prev
    while t >= 0:
        if came[t, g] == -1:
            path[t] = g
            t -= 1
        else:
            a = t - D + 1
            path[a:t + 1] = g
            t, g = a - 1, int(came[t, g])
    return path


def runs_to_segments(path: np.ndarray, posteriors: np.ndarray, times: np.ndarray, label_names,
                     end_s: float) -> list:
    """Consecutive frames of one genre, as :class:`GenreSegment` objects.

    Boundaries lie halfway between the last frame of one run and the first of the
    next; the first segment starts at 0 and the last ends at ``end_s``.
    """
    path = np.asarray(path)
    starts = np.flatnonzero(np.r_[True, path[1:] != path[:-1]])
    stops = np.r_[starts[1:], len(path)]
    edges = np.r_[0.0, (times[starts[1:] - 1] + times[starts[1:]]) / 2, end_s]
    return [GenreSegment(start_s=float(edges[i]), end_s=float(edges[i + 1]), genre=str(label_names[path[a]]),
                         confidence=float(posteriors[a:b, path[a]].mean()))
            for i, (a, b) in enumerate(zip(starts, stops))]


def hop_of(times: np.ndarray) -> float:
    """Seconds between frames (0 for a single frame)."""
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.0


def _check_inputs(posteriors, times, label_names) -> tuple[np.ndarray, np.ndarray]:
    posteriors = np.asarray(posteriors, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if posteriors.ndim != 2 or posteriors.shape[0] == 0:
        raise ValueError(f"posteriors must be a non-empty (T, C) array, got shape {posteriors.shape}")
    if times.shape != (posteriors.shape[0],):
        raise ValueError(f"times must have shape ({posteriors.shape[0]},), got {times.shape}")
    if posteriors.shape[1] != len(label_names):
        raise ValueError(f"{posteriors.shape[1]} posterior columns but {len(label_names)} label names")
    if not np.isfinite(posteriors).all() or posteriors.min() < 0 or posteriors.max() > 1 + 1e-6:
        raise ValueError("posteriors must be finite probabilities in [0, 1]")
    if len(times) > 1 and not (np.diff(times) > 0).all():
        raise ValueError("times must increase strictly")
    return posteriors, times


def decode_segments(posteriors: np.ndarray, times: np.ndarray, label_names, config: TimelineConfig | None = None,
                    duration_s: float | None = None) -> list:
    """Genre segments of a recording from its frame posteriors.

    Parameters
    ----------
    posteriors : np.ndarray, shape (T, C)
        Per-frame genre posteriors (rows sum to 1), e.g. from the LSTM.
    times : np.ndarray, shape (T,)
        Frame centres in seconds, evenly spaced.
    label_names : list of str
        Genre of each column.
    config : TimelineConfig, optional
    duration_s : float, optional
        Length of the recording (end of the last segment); default half a hop
        after the last frame.

    Returns
    -------
    list of GenreSegment
        In time order, contiguous, covering ``[0, duration_s]``.

    Examples
    --------
    >>> post = np.array([[0.9, 0.1]] * 40 + [[0.2, 0.8]] * 40)
    >>> segs = decode_segments(post, np.arange(80) * 0.5, ["rock", "jazz"], TimelineConfig(min_duration_s=5))
    >>> [(s.start_s, s.end_s, s.genre) for s in segs]
    [(0.0, 19.75, 'rock'), (19.75, 39.75, 'jazz')]
    """
    config = config or TimelineConfig()
    posteriors, times = _check_inputs(posteriors, times, label_names)
    hop = hop_of(times)
    path = frame_path(posteriors, config.min_frames(hop) if hop else 1, config.switch_penalty)
    end = float(duration_s) if duration_s is not None else float(times[-1]) + hop / 2
    return runs_to_segments(path, posteriors, times, label_names, end)
