"""The segment stage over one track whose frames arrive in chunks (the last stage of :mod:`genreseg.pipeline`)."""

from __future__ import annotations

import numpy as np

from ..models.inference import PosteriorStream
from .stage import SegmentModels, inputs_from_posteriors, uses_inner_models

__all__ = ["TrackStream"]


class TrackStream:
    """Frame posteriors, segment statistics and a timeline of one track, from one pass.

    Each frame chunk is pushed once and read by every posterior stream that an answer
    needs: the full frame model over the whole track (the track decision's Seg_acc
    vote and statistics, as :func:`~genreseg.segments.segment_inputs` computes them
    from the whole sequence), the inner models where ``test_posteriors`` reads them,
    and the timeline's (the full model again, restarted on windows when it is an LSTM
    and ``timeline_window_frames > 0``; else the decision's posteriors serve both).
    The frames themselves are not kept: only their running sum (the initial segment
    feature) and the ``(T, C)`` posteriors.

    Parameters
    ----------
    models : SegmentModels
    decide : callable or None
        ``decide(inputs) -> probabilities`` of the track from the dict
        :func:`~genreseg.segments.inputs_from_posteriors` returns; ``None``: no decision.
    timeline_window_frames : int or None
        The timeline's LSTM window (``None``: no timeline).
    """

    def __init__(self, models: SegmentModels, decide=None, timeline_window_frames: int | None = None):
        self.models, self.decide = models, decide
        self.streams: dict = {}
        if decide is not None:
            self.streams["full"] = PosteriorStream(models.frame_model)
            if uses_inner_models(models):
                for i, m in enumerate(models.inner_models):
                    self.streams[f"inner{i}"] = PosteriorStream(m)
        window = timeline_window_frames
        if window is not None and ("full" not in self.streams or _differs(models.frame_model, window)):
            self.streams["timeline"] = PosteriorStream(models.frame_model, window)
        self.wants_timeline = window is not None
        self.parts = {name: [] for name in self.streams}
        self.frame_sum, self.n_frames = None, 0

    def push(self, frames: np.ndarray) -> None:
        """Feed the next chunk of frames to every stream."""
        frames = np.asarray(frames, dtype=np.float32)
        if self.decide is not None and len(frames):
            total = frames.sum(axis=0, dtype=np.float64)
            self.frame_sum = total if self.frame_sum is None else self.frame_sum + total
            self.n_frames += len(frames)
        for name, stream in self.streams.items():
            self.parts[name].append(stream.push(frames))

    def finish(self):
        """The :class:`genreseg.pipeline.TrackAnswer` of the track."""
        from ..pipeline import TrackAnswer

        post = {}
        for name, stream in self.streams.items():
            self.parts[name].append(stream.finish())
            post[name] = np.concatenate(self.parts[name])
        answer = TrackAnswer(info={"frame_model": self.models.frame_model.config.kind})
        if self.decide is not None:
            full = post["full"]
            inner = [[post[f"inner{i}"]] for i in range(len(self.models.inner_models)) if f"inner{i}" in post]
            init = (self.frame_sum / max(self.n_frames, 1))[None, :]
            answer.probabilities = self.decide(inputs_from_posteriors(self.models, [full], inner, init))[0]
            answer.frame_posteriors = full
        if self.wants_timeline:
            answer.timeline_posteriors = post.get("timeline", answer.frame_posteriors)
        return answer


def _differs(frame_model, window_frames: int) -> bool:
    """True when the timeline's posteriors are not the whole-track ones (a windowed LSTM)."""
    return frame_model.config.kind == "lstm" and window_frames > 0 and not frame_model.config.bidirectional
