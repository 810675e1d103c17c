"""Frame posteriors of a trained model: whole tracks in batches, or a stream chunk by chunk."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .state import TrainedFrameModel

__all__ = ["frame_posteriors", "iter_frame_posteriors"]


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


def iter_frame_posteriors(trained: TrainedFrameModel, chunks, window_frames: int = 0):
    """Per-frame posteriors of one long sequence that arrives in chunks.

    Parameters
    ----------
    trained : TrainedFrameModel
    chunks : iterable of np.ndarray, each (T_k, D)
        Consecutive raw frame features of one track (e.g.
        :func:`genreseg.features.iter_features`).
    window_frames : int
        LSTM only. 0: the LSTM runs over the whole sequence, carrying its state from
        chunk to chunk (equal, to float rounding, to :func:`frame_posteriors` of the
        concatenated track). ``W > 0``: the LSTM restarts every ``H = W // 2``
        frames on a window of ``W`` frames, and each frame's posterior comes from
        the window that saw ``W - H`` frames or more before it (the first window
        gives its first frames too). An LSTM trained on whole single-genre tracks
        never learnt to forget the previous genre; restarting it bounds how long an
        old genre lingers after a change (see ``benchmarks/segment.py``).

    Yields
    ------
    np.ndarray, shape (T_k', C), float32
        Posteriors of consecutive frames (chunk sizes need not match the input's);
        memory stays at a chunk or two however long the track is.
    """
    if trained.config.kind == "lstm" and window_frames > 0:
        yield from _windowed_posteriors(trained, chunks, int(window_frames))
        return
    if trained.config.kind == "lstm" and trained.config.bidirectional:
        # Each frame depends on the whole track: gather it, then one pass.
        parts = [np.asarray(c, dtype=np.float32) for c in chunks]
        if parts:
            yield frame_posteriors(trained, [np.concatenate(parts)])[0]
        return
    device = next(trained.module.parameters()).device
    state = None
    with torch.no_grad():
        for chunk in chunks:
            x = trained.normalizer.transform(np.asarray(chunk, dtype=np.float32))
            if x.ndim != 2 or x.shape[1] != trained.n_in:
                raise ValueError(f"expected (T, {trained.n_in}) frames, got {x.shape}")
            x = torch.from_numpy(x).to(device)
            if trained.config.kind == "lstm":
                logits, state = trained.module.forward_chunk(x, state)
            else:
                logits = trained.module(x)
            yield torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float32)


def _windowed_posteriors(trained: TrainedFrameModel, chunks, W: int):
    """Restarted-LSTM posteriors (see :func:`iter_frame_posteriors`): window ``k`` covers
    frames ``[kH, kH + W)`` and gives ``[kH + W - H, kH + W)`` (window 0: ``[0, W)``)."""
    H = max(1, W // 2)
    buf, base, k = None, 0, 0  # buf holds frames base.. of the track; k: next window

    def run(windows, n):
        seqs = [buf[w * H - base:min(w * H + W, n) - base] for w in windows]
        post = frame_posteriors(trained, seqs)
        return np.concatenate([p[0 if w == 0 else W - H:] for w, p in zip(windows, post)])

    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float32)
        buf = chunk if buf is None else np.concatenate([buf, chunk])
        n = base + len(buf)
        ready = []
        while k * H + W <= n:
            ready.append(k)
            k += 1
        if ready:
            yield run(ready, n)
            buf, base = buf[k * H - base:], k * H  # later windows start at k*H or after
    if buf is None:
        return
    n, rest = base + len(buf), []
    while (0 if k == 0 else k * H + W - H) < n:  # truncated windows at the end
        rest.append(k)
        k += 1
    if rest:
        yield run(rest, n)
