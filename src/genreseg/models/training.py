"""Training of the frame classifiers: every frame carries its track's label.

The recipe options of :class:`~genreseg.models.FrameModelConfig` (random crops, input
noise, channel dropout, early stopping on a split of the training tracks) act here and
only here: inference (:mod:`genreseg.models.inference`) never sees them.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ..runtime import resolve_device
from .config import FrameModelConfig, default_preset
from .inference import _pad, _posteriors_normalized
from .state import Normalizer, TrainedFrameModel, build_module

__all__ = ["frame_loss", "train_frame_model"]


# --------------------------------------------------------------------------- training
def _check_data(sequences, labels, n_classes: int) -> tuple[list[np.ndarray], np.ndarray]:
    if len(sequences) == 0:
        raise ValueError("no training sequences")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(sequences),):
        raise ValueError(f"got {len(sequences)} sequences but labels of shape {labels.shape}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    seqs = [np.asarray(s, dtype=np.float32) for s in sequences]
    dims = {s.shape[1] if s.ndim == 2 else -1 for s in seqs}
    if len(dims) != 1 or -1 in dims or any(len(s) == 0 for s in seqs):
        raise ValueError("every sequence must be a non-empty (T_i, D) array with one common D")
    return seqs, labels


def frame_loss(module: nn.Module, x: torch.Tensor, lengths: torch.Tensor, track_labels: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy of a right-padded batch, summed over the real frames only.

    Parameters
    ----------
    module : nn.Module
        Maps ``(B, T, D)`` and ``lengths`` to logits ``(B, T, C)``.
    x : Tensor, shape (B, T, D)
    lengths : Tensor of int, shape (B,)
    track_labels : Tensor of int, shape (B,)
        Every frame of sequence b has label ``track_labels[b]``.

    Returns
    -------
    loss : Tensor, scalar
        Summed (not averaged) over the ``lengths.sum()`` real frames; padded
        positions are dropped before the loss, so they add neither value nor gradient.
    logits : Tensor, shape (lengths.sum(), C)
        The real frames' logits.
    labels : Tensor, shape (lengths.sum(),)
    """
    out = module(x, lengths)
    mask = (torch.arange(x.shape[1])[None, :] < lengths.cpu()[:, None]).to(x.device)
    labels = track_labels[:, None].expand(-1, x.shape[1])[mask]
    logits = out[mask]
    return nn.functional.cross_entropy(logits, labels, reduction="sum"), logits, labels


def _make_optimizer(config: FrameModelConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def _windows(seqs: list[np.ndarray], labels: np.ndarray, max_frames: int):
    """Training units: whole tracks, or consecutive windows of at most ``max_frames``."""
    units = []
    for s, y in zip(seqs, labels):
        step = max_frames if max_frames > 0 else len(s)
        units += [(torch.from_numpy(s[a:a + step]), int(y)) for a in range(0, len(s), step)]
    return units


def _crops(seqs: list[np.ndarray], labels: np.ndarray, length: int, rng: np.random.Generator):
    """One epoch's training units under ``crop_frames``: ``max(1, round(T / L))`` random
    sub-sequences of ``min(L, T)`` frames of every track (see :class:`FrameModelConfig`)."""
    units = []
    for s, y in zip(seqs, labels):
        T = len(s)
        L = min(length, T)
        n = max(1, int(round(T / length)))
        for a in rng.integers(0, T - L + 1, size=n):
            units.append((torch.from_numpy(s[a:a + L]), int(y)))
    return units


def _augment(x: torch.Tensor, config: FrameModelConfig, gen: torch.Generator) -> torch.Tensor:
    """Training-only input noise and channel dropout of a ``(B, T, D)`` or ``(N, D)`` batch."""
    if config.input_dropout > 0:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        keep = (torch.rand(shape, generator=gen) >= config.input_dropout).to(x.dtype)
        x = x * keep.to(x.device) / (1.0 - config.input_dropout)
    if config.input_noise > 0:
        x = x + config.input_noise * torch.randn(x.shape, generator=gen).to(x.device)
    return x


def _holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified ``(train, held-out)`` indices of the training tracks for early stopping.

    Every class keeps at least one training track; a class holds out
    ``round(fraction * n_c)`` tracks (at least one when it has two or more).
    """
    rng = np.random.default_rng(seed + 7919)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_out = min(len(idx) - 1, max(1, int(round(fraction * len(idx))))) if len(idx) > 1 else 0
        held += list(rng.permutation(idx)[:n_out])
    held = np.sort(np.asarray(held, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(labels)), held)
    return train, held


def train_frame_model(sequences, labels, n_classes: int, config: FrameModelConfig | None = None,
                      valid: tuple | None = None, progress: bool = True) -> TrainedFrameModel:
    """Train a DNN or LSTM frame classifier; every frame carries its track's label.

    Parameters
    ----------
    sequences : list of np.ndarray, each (T_i, D)
        Frame features of the training tracks (lengths may differ).
    labels : array of int, shape (n_tracks,)
    n_classes : int
    config : FrameModelConfig, optional
        Default: ``default_preset("lstm")``.
    valid : (sequences, labels), optional
        Monitoring tracks; their frame accuracy is recorded after every epoch
        (``history["valid_frame_acc"]``) and used for nothing else. Early stopping
        (``config.valid_fraction``) uses its own split of the *training* tracks.
    progress : bool
        Show a tqdm bar with the running loss and accuracy.

    Returns
    -------
    TrainedFrameModel
        With early stopping, ``history["stop_frame_acc"]`` and ``history["stop_loss"]``
        are the held-out split's curves, ``history["best_epoch"] == [e]`` the 0-based
        epoch whose weights were restored, ``history["epochs_run"]`` how many ran.

    Notes
    -----
    Reproducible: the initialisation, dropout and the input augmentation draw from
    ``torch.manual_seed(seed)`` (inside :func:`torch.random.fork_rng`, so the caller's
    global RNG is untouched) and the shuffling and crops from
    ``np.random.default_rng(seed)``; on the CPU the same seed gives bit-identical weights.
    """
    from tqdm.auto import tqdm

    config = config or default_preset("lstm")
    seqs, labels = _check_data(sequences, labels, n_classes)
    device = torch.device(resolve_device(config.device))
    stop_seqs = None
    if config.valid_fraction > 0:
        keep, held = _holdout(labels, config.valid_fraction, config.seed)
        if len(held):
            stop_seqs = [seqs[i] for i in held]
            stop_labels = labels[held]
            seqs, labels = [seqs[i] for i in keep], labels[keep]
    normalizer = Normalizer.fit(seqs)
    seqs = [normalizer.transform(s) for s in seqs]
    n_in = seqs[0].shape[1]
    if valid is not None:
        v_seqs, v_labels = _check_data(valid[0], valid[1], n_classes)
        v_seqs = [normalizer.transform(s) for s in v_seqs]
        v_frame_labels = np.concatenate([np.full(len(s), y) for s, y in zip(v_seqs, v_labels)])
    if stop_seqs is not None:
        stop_seqs = [normalizer.transform(s) for s in stop_seqs]
        stop_frame_labels = np.concatenate([np.full(len(s), y) for s, y in zip(stop_seqs, stop_labels)])
    rng = np.random.default_rng(config.seed)
    history: dict[str, list] = {"loss": [], "frame_acc": [], "lr": [], "seconds": []}
    if valid is not None:
        history["valid_frame_acc"] = []
    if stop_seqs is not None:
        history.update(stop_frame_acc=[], stop_loss=[], best_epoch=[], epochs_run=[])
    augment = config.input_noise > 0 or config.input_dropout > 0

    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        module = build_module(config, n_in, n_classes).to(device)
        gen = torch.Generator().manual_seed(config.seed + 1)
        optimizer = _make_optimizer(config, module.parameters())
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
        if config.kind == "dnn":
            frames = torch.from_numpy(np.concatenate(seqs, axis=0))
            frame_labels = torch.from_numpy(np.concatenate([np.full(len(s), y) for s, y in zip(seqs, labels)]))
            n_units = len(frames)
        elif config.crop_frames == 0:
            units = _windows(seqs, labels, config.max_seq_frames)
            n_units = len(units)
        best_key, best_state, since_best = None, None, 0

        bar = tqdm(range(config.epochs), desc=f"{config.kind} {config.hidden}", disable=not progress,
                   leave=False)
        for epoch in bar:
            t0 = time.perf_counter()
            module.train()
            if config.kind == "lstm" and config.crop_frames > 0:
                units = _crops(seqs, labels, config.crop_frames, rng)
                n_units = len(units)
            perm = rng.permutation(n_units)
            total_loss, correct, count = 0.0, 0, 0
            for a in range(0, n_units, config.batch_size):
                idx = perm[a:a + config.batch_size]
                if config.kind == "dnn":
                    y = frame_labels[idx].to(device)
                    xb = frames[idx]
                    if augment:
                        xb = _augment(xb, config, gen)
                    logits = module(xb.to(device))
                    loss = nn.functional.cross_entropy(logits, y, reduction="sum")
                else:
                    x, lengths = _pad([units[i][0] for i in idx])
                    if augment:
                        x = _augment(x, config, gen)
                    y_tracks = torch.tensor([units[i][1] for i in idx])
                    loss, logits, y = frame_loss(module, x.to(device), lengths, y_tracks.to(device))
                n = len(y)
                # Summed over frames (Kaldi's convention) or averaged: see the module docstring.
                objective = loss if config.loss_reduction == "sum" else loss / n
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                if config.grad_clip > 0:
                    nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
                optimizer.step()
                total_loss += float(loss.detach())
                correct += int((logits.detach().argmax(dim=-1) == y).sum())
                count += n
            history["lr"].append(float(optimizer.param_groups[0]["lr"]))
            scheduler.step()
            history["loss"].append(total_loss / count)
            history["frame_acc"].append(correct / count)
            postfix = {"loss": f"{total_loss / count:.3f}", "acc": f"{correct / count:.3f}"}
            if valid is not None:
                post = _posteriors_normalized(module, config.kind, v_seqs, device, 8192)
                acc = float(np.mean(np.concatenate(post).argmax(axis=1) == v_frame_labels))
                history["valid_frame_acc"].append(acc)
                postfix["val"] = f"{acc:.3f}"
            stop = False
            if stop_seqs is not None:
                p = np.concatenate(_posteriors_normalized(module, config.kind, stop_seqs, device, 8192))
                s_acc = float(np.mean(p.argmax(axis=1) == stop_frame_labels))
                s_loss = float(-np.mean(np.log(np.maximum(p[np.arange(len(p)), stop_frame_labels], 1e-12))))
                history["stop_frame_acc"].append(s_acc)
                history["stop_loss"].append(s_loss)
                key = (s_acc, -s_loss)
                if best_key is None or key > best_key:
                    best_key, since_best = key, 0
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                    history["best_epoch"] = [epoch]
                else:
                    since_best += 1
                    stop = config.patience > 0 and since_best >= config.patience
                postfix["stop"] = f"{s_acc:.3f}"
            history["seconds"].append(time.perf_counter() - t0)
            bar.set_postfix(postfix)
            if stop:
                break
        if stop_seqs is not None:
            history["epochs_run"] = [len(history["loss"])]
            if best_state is not None:
                module.load_state_dict(best_state)
    module.eval()
    return TrainedFrameModel(module=module, normalizer=normalizer, config=config, n_in=n_in,
                             n_classes=n_classes, history=history)
