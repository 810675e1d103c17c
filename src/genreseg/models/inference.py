"""Frame posteriors of a trained model: whole tracks in batches, or a stream chunk by chunk."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..streaming import iter_stream
from .state import TrainedFrameModel

__all__ = ["PosteriorStream", "frame_posteriors", "iter_frame_posteriors"]


def _pad(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    return nn.utils.rnn.pad_sequence(seqs, batch_first=True), lengths


def _posteriors_normalized(module: nn.Module, kind: str, seqs: list[np.ndarray], device: torch.device,
                           batch_size: int) -> list[np.ndarray]:
    """Softmax outputs of already-normalised sequences, in eval mode, batched."""
    was_training = module.training
    module.eval()
    out: list[np.ndarray | None] = [None] * len(seqs)
    with torch.no_grad():
        if kind == "dnn":
            frames = torch.from_numpy(np.concatenate(seqs, axis=0))
            probs = torch.cat([torch.softmax(module(frames[a:a + batch_size].to(device)), dim=-1).cpu()
                               for a in range(0, len(frames), batch_size)]).numpy()
            bounds = np.cumsum([0] + [len(s) for s in seqs])
            out = [probs[bounds[i]:bounds[i + 1]] for i in range(len(seqs))]
        else:
            # Similar lengths together keeps padding (wasted work) small.
            order = np.argsort([len(s) for s in seqs], kind="stable")
            n_seq = max(1, batch_size // max(1, int(np.median([len(s) for s in seqs]))))
            for a in range(0, len(order), n_seq):
                idx = order[a:a + n_seq]
                x, lengths = _pad([torch.from_numpy(seqs[i]) for i in idx])
                probs = torch.softmax(module(x.to(device), lengths), dim=-1).cpu().numpy()
                for j, i in enumerate(idx):
                    out[i] = probs[j, :lengths[j]]
    module.train(was_training)
    return [np.ascontiguousarray(p, dtype=np.float32) for p in out]


def frame_posteriors(trained: TrainedFrameModel, sequences, batch_frames: int = 8192) -> list[np.ndarray]:
    """Per-frame class posteriors (softmax) of each track.

    Parameters
    ----------
    trained : TrainedFrameModel
    sequences : list of np.ndarray, each (T_i, D)
        Raw (unnormalised) frame features; the model's normaliser is applied here.
    batch_frames : int
        Roughly how many frames go through the network at once. LSTMs always see whole
        tracks (several per batch when they fit).

    Returns
    -------
    list of np.ndarray, each (T_i, C), float32
    """
    seqs = [trained.normalizer.transform(np.asarray(s, dtype=np.float32)) for s in sequences]
    if any(s.ndim != 2 or s.shape[1] != trained.n_in for s in seqs):
        raise ValueError(f"expected (T_i, {trained.n_in}) sequences")
    if not seqs:
        return []
    device = next(trained.module.parameters()).device
    return _posteriors_normalized(trained.module, trained.config.kind, seqs, device, batch_frames)


def iter_frame_posteriors(trained, chunks, window_frames: int = 0):
    """Per-frame posteriors of one long sequence that arrives in chunks.

    A generator over :class:`PosteriorStream` (see there for ``window_frames``).

    Parameters
    ----------
    trained : TrainedFrameModel or genreseg.onnx_engine.OnnxFrameModel
    chunks : iterable of np.ndarray, each (T_k, D)
        Consecutive raw frame features of one track (e.g.
        :func:`genreseg.features.iter_features`).
    window_frames : int

    Returns
    -------
    iterator of np.ndarray, shape (T_k', C), float32
        Posteriors of consecutive frames (chunk sizes need not match the input's);
        memory stays at a chunk or two however long the track is.
    """
    return iter_stream(PosteriorStream(trained, window_frames), chunks)


class PosteriorStream:
    """Frame posteriors of one long sequence, pushed chunk by chunk.

    The frame model's stage of :mod:`genreseg.pipeline`: several streams can read the
    same feature chunks (a track decision and a timeline from one pass over the file).

    Parameters
    ----------
    network : TrainedFrameModel or genreseg.onnx_engine.OnnxFrameModel
        Anything with ``posteriors(sequences)``, ``step(chunk, state)``, ``kind``,
        ``bidirectional``, ``n_in`` and ``n_classes`` (the torch and the ONNX engines).
    window_frames : int
        LSTM only. 0: the LSTM runs over the whole sequence, carrying its state from
        chunk to chunk (equal, to float rounding, to :func:`frame_posteriors` of the
        concatenated track). ``W > 0``: the LSTM restarts every ``H = W // 2``
        frames on a window of ``W`` frames, and each frame's posterior comes from
        the window that saw ``W - H`` frames or more before it (the first window
        gives its first frames too). An LSTM trained on whole single-genre tracks
        never learnt to forget the previous genre; restarting it bounds how long an
        old genre lingers after a change (see ``benchmarks/segment.py``). A
        bidirectional LSTM needs the whole track: it gathers the chunks and runs once
        at :meth:`finish`.

    Examples
    --------
    >>> stream = PosteriorStream(model)
    >>> parts = [stream.push(chunk) for chunk in chunks] + [stream.finish()]
    """

    def __init__(self, network, window_frames: int = 0):
        self.network = network
        lstm = network.kind == "lstm"
        self.mode = ("whole" if lstm and network.bidirectional else
                     "windowed" if lstm and window_frames > 0 else "step")
        self.W = int(window_frames)
        self.H = max(1, self.W // 2)
        self._state = None
        self._buf: list = []  # "whole": every chunk; "windowed": frames from self._base on
        self._base = 0  # "windowed": track index of the buffer's first frame
        self._next = 0  # "windowed": the next window to run

    def _check(self, chunk) -> np.ndarray:
        x = np.asarray(chunk, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.network.n_in:
            raise ValueError(f"expected (T, {self.network.n_in}) frames, got {x.shape}")
        return x

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.network.n_classes), np.float32)

    def push(self, chunk) -> np.ndarray:
        """Posteriors of the frames that ``chunk`` completes (possibly none yet)."""
        x = self._check(chunk)
        if self.mode == "step":
            if not len(x):
                return self._empty()
            out, self._state = self.network.step(x, self._state)
            return out
        self._buf.append(x)
        if self.mode == "whole":
            return self._empty()
        return self._windows(final=False)

    def finish(self) -> np.ndarray:
        """Posteriors of the frames still held (the end of the track)."""
        if self.mode == "whole":
            seq = np.concatenate(self._buf) if self._buf else np.zeros((0, self.network.n_in), np.float32)
            self._buf = []
            return self.network.posteriors([seq])[0] if len(seq) else self._empty()
        if self.mode == "windowed":
            return self._windows(final=True)
        return self._empty()

    def _windows(self, final: bool) -> np.ndarray:
        """Window ``k`` covers frames ``[kH, kH + W)`` and gives ``[kH + W - H, kH + W)``
        (window 0: ``[0, W)``); at the end, truncated windows give the rest."""
        W, H = self.W, self.H
        buf = np.concatenate(self._buf) if len(self._buf) > 1 else (self._buf[0] if self._buf else None)
        if buf is None:
            return self._empty()
        n, k, ready = self._base + len(buf), self._next, []
        while k * H + W <= n:
            ready.append(k)
            k += 1
        if final:
            while (0 if k == 0 else k * H + W - H) < n:
                ready.append(k)
                k += 1
        self._next = k
        if not ready:
            self._buf = [buf]
            return self._empty()
        seqs = [buf[w * H - self._base:min(w * H + W, n) - self._base] for w in ready]
        post = self.network.posteriors(seqs)
        out = np.concatenate([p[0 if w == 0 else W - H:] for w, p in zip(ready, post)])
        keep_from = min(k * H, n)  # later windows start at k*H or after
        self._buf, self._base = [buf[keep_from - self._base:]], keep_from
        return out
