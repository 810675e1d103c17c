"""Training and inference of the frame classifiers, their config and their state.

Learning rates of the paper
---------------------------
The paper trains with Kaldi, whose nnet1 SGD applies the gradient of the
cross-entropy *summed* over the frames of a minibatch, not averaged. For an update
``Δθ = -lr_sum · Σ_frames ∇ℓ = -(lr_sum · N) · mean_frames ∇ℓ`` the equivalent
averaged-loss rate is ``lr_mean = lr_sum × N`` with N the frames per minibatch.
:func:`paper_preset` therefore keeps the paper's numbers (LSTM 2e-5, DNN 8e-6) and sets
``loss_reduction="sum"``: with 60 tracks of ~81 frames per LSTM batch that is an
averaged-loss rate of ≈ 0.1, with 256-frame DNN batches ≈ 2e-3. (Momentum acts
the same on both, so the mapping is exact.)

Nothing here pickles: a trained model leaves as :meth:`TrainedFrameModel.state_arrays`
(a flat dict of NumPy arrays, safetensors-ready) and :meth:`TrainedFrameModel.metadata`
(a JSON-able dict), and comes back with :meth:`TrainedFrameModel.from_state`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..configs import ConfigMixin
from ..runtime import resolve_device
from .dnn import ACTIVATIONS, DNNFrameClassifier
from .lstm import CELLS, LSTMFrameClassifier

__all__ = [
    "FrameModelConfig",
    "Normalizer",
    "TrainedFrameModel",
    "build_module",
    "default_preset",
    "frame_loss",
    "frame_posteriors",
    "iter_frame_posteriors",
    "load_state_arrays",
    "paper_preset",
    "state_arrays",
    "train_frame_model",
]

KINDS = ("dnn", "lstm")
OPTIMIZERS = ("sgd", "adam", "adamw")
REDUCTIONS = ("sum", "mean")


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class FrameModelConfig(ConfigMixin):
    """Architecture and training settings of a frame classifier.

    Parameters
    ----------
    kind : {"dnn", "lstm"}
    hidden : tuple of int
        Hidden layer widths (DNN) or cells per LSTM layer.
    cell : {"torch", "peephole"}
        LSTM cell (ignored by the DNN): :class:`torch.nn.LSTM` or the paper's
        :class:`~genreseg.models.lstm.PeepholeLSTM`.
    activation : {"sigmoid", "relu", "tanh"}
        DNN hidden nonlinearity (ignored by the LSTM).
    dropout : float
        Dropout after hidden layers (0 disables it).
    epochs : int
    batch_size : int
        Frames per minibatch for the DNN, sequences (or windows) for the LSTM.
    lr : float
        Learning rate, meant for the loss reduction below (see module docstring).
    momentum : float
        SGD momentum (ignored by Adam).
    lr_decay : float
        Multiplicative learning-rate decay applied after every epoch (1 = none).
    optimizer : {"sgd", "adam", "adamw"}
    loss_reduction : {"sum", "mean"}
        Cross-entropy summed (Kaldi-style) or averaged over the frames of a batch.
    max_seq_frames : int
        LSTM training window: tracks are cut into consecutive windows of at most this
        many frames, each a training sequence; 0 trains on whole tracks. Inference
        always runs on whole tracks.
    weight_decay : float
    grad_clip : float
        Clip the global gradient norm to this value (0 disables clipping).
    seed : int
        Seeds the initialisation, dropout and the shuffling.
    device : str
        "cpu", "cuda", or "auto" (CUDA when available).
    preset : str
        Name of the preset this config came from ("custom" otherwise); informative.
    bidirectional : bool
        LSTM only, ``cell="torch"`` only: a bidirectional layer stack (each layer's
        width is split in two halves, one per direction, so the parameter count stays
        close to the unidirectional one of the same ``hidden``). Inference then needs a
        whole track at once; :func:`iter_frame_posteriors` gathers the chunks first.
    crop_frames : int
        LSTM only. 0: every epoch sees the training units of ``max_seq_frames``.
        ``L > 0``: every epoch, each training track gives ``max(1, round(T / L))``
        random sub-sequences of ``min(L, T)`` frames at uniformly drawn starts (so an
        epoch sees about as many frames as before, each time cut differently, and the
        network learns to decide from any starting point). Training only.
    input_noise : float
        Standard deviation of Gaussian noise added to the (standardised) input frames
        in training; 0 disables it. Never applied at inference.
    input_dropout : float
        Channel dropout on the input in training: each feature channel of each training
        sequence (DNN: each frame) is zeroed with this probability (the rest scaled by
        ``1 / (1 - p)``); the same channels are dropped at every frame of a sequence.
        Never applied at inference.
    valid_fraction : float
        Early stopping. 0: train for ``epochs`` and keep the last weights. ``f > 0``: a
        stratified ``f`` of the *training* tracks (seeded by ``seed``) is held out,
        the network trains on the rest, the held-out tracks' frame accuracy (ties: the
        lower frame cross-entropy) is measured after every epoch, and the weights of
        the best epoch are restored at the end. The held-out tracks' normaliser is the
        training part's. Nothing outside the training tracks is looked at.
    patience : int
        With ``valid_fraction > 0``: stop after this many epochs without a better
        held-out score (0: run all ``epochs``).
    """

    kind: str = "lstm"
    hidden: tuple[int, ...] = (512,)
    cell: str = "torch"
    activation: str = "relu"
    dropout: float = 0.0
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    momentum: float = 0.0
    lr_decay: float = 1.0
    optimizer: str = "adam"
    loss_reduction: str = "mean"
    max_seq_frames: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    seed: int = 0
    device: str = "auto"
    preset: str = "custom"
    bidirectional: bool = False
    crop_frames: int = 0
    input_noise: float = 0.0
    input_dropout: float = 0.0
    valid_fraction: float = 0.0
    patience: int = 0

    def __post_init__(self):
        # Accept lists (e.g. from JSON) but store a tuple so the config stays hashable.
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.loss_reduction not in REDUCTIONS:
            raise ValueError(f"loss_reduction must be one of {REDUCTIONS}, got {self.loss_reduction!r}")
        if any(h < 1 for h in self.hidden) or (self.kind == "lstm" and not self.hidden):
            raise ValueError(f"hidden widths must be >= 1 (and an LSTM needs a layer), got {self.hidden}")
        if self.epochs < 0 or self.batch_size < 1 or self.max_seq_frames < 0:
            raise ValueError("epochs must be >= 0, batch_size >= 1, max_seq_frames >= 0")
        if self.lr <= 0 or not 0 < self.lr_decay <= 1 or not 0 <= self.dropout < 1:
            raise ValueError("lr must be > 0, lr_decay in (0, 1], dropout in [0, 1)")
        if self.bidirectional and (self.kind != "lstm" or self.cell != "torch"):
            raise ValueError("bidirectional needs kind='lstm' and cell='torch'")
        if self.bidirectional and any(h < 2 for h in self.hidden):
            raise ValueError(f"a bidirectional layer needs >= 2 cells (one half per direction), got {self.hidden}")
        if self.crop_frames < 0 or self.patience < 0:
            raise ValueError("crop_frames and patience must be >= 0")
        if self.input_noise < 0 or not 0 <= self.input_dropout < 1 or not 0 <= self.valid_fraction < 1:
            raise ValueError("input_noise must be >= 0, input_dropout and valid_fraction in [0, 1)")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay and grad_clip must be >= 0")


def _default_hidden(kind: str) -> tuple[int, ...]:
    return (1024,) if kind == "dnn" else (512,)


def paper_preset(kind: str, hidden: tuple[int, ...] | None = None) -> FrameModelConfig:
    """The paper's training recipe, mapped faithfully to PyTorch.

    Momentum SGD (0.8), learning rate 2e-5 (LSTM) / 8e-6 (DNN) on a cross-entropy
    *summed* over the frames of each minibatch (Kaldi's convention, see the module
    docstring), decayed by 0.9 after every epoch, 100 epochs, minibatches of 60
    sequences for the LSTM. The DNN minibatch is 256 frames, Kaldi nnet1's default
    ``--minibatch-size`` (the paper gives no number for it). Sigmoid hidden units
    (Kaldi nnet1's DNN) and the peephole cell of the paper's equations.

    Parameters
    ----------
    kind : {"dnn", "lstm"}
    hidden : tuple of int, optional
        Default ``(1024,)`` for the DNN, ``(512,)`` for the LSTM.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return FrameModelConfig(
        kind=kind, hidden=tuple(hidden or _default_hidden(kind)), cell="peephole", activation="sigmoid",
        dropout=0.0, epochs=100, batch_size=60 if kind == "lstm" else 256,
        lr=2e-5 if kind == "lstm" else 8e-6, momentum=0.8, lr_decay=0.9, optimizer="sgd",
        loss_reduction="sum", max_seq_frames=0, weight_decay=0.0, grad_clip=0.0, preset="paper",
    )


def default_preset(kind: str, hidden: tuple[int, ...] | None = None) -> FrameModelConfig:
    """A recipe that converges in little CPU time on GTZAN-sized data.

    Adam (lr 1e-3, frame-averaged loss). DNN: sigmoid units (the paper's, Kaldi
    nnet1) with dropout 0.5, 256-frame batches, 8 epochs. LSTM: ``nn.LSTM`` with dropout
    0.3 and gradient-norm clipping at 5, batches of 8 whole tracks, 12 epochs.

    Measured on one stratified gtzan_mini split (80 training / 20 held-out clips, one
    CPU thread): the DNN(1024) fits its training frames within 3 epochs (0.6-3 s
    each, depending on machine load) and held-out frame accuracy levels off at
    0.835 with sigmoid units vs 0.81 with ReLU (both converge; sigmoid kept, as in
    the paper); the LSTM(512) takes ~2.7 s an epoch and is still gaining slowly at
    10 epochs (0.865). Cross-validated figures: ``benchmarks/segment_choices.py``.

    Parameters
    ----------
    kind : {"dnn", "lstm"}
    hidden : tuple of int, optional
        Default ``(1024,)`` for the DNN, ``(512,)`` for the LSTM.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    hidden = tuple(hidden or _default_hidden(kind))
    if kind == "dnn":
        return FrameModelConfig(kind="dnn", hidden=hidden, activation="sigmoid", dropout=0.5, epochs=8,
                                batch_size=256, lr=1e-3, optimizer="adam", loss_reduction="mean",
                                preset="default")
    return FrameModelConfig(kind="lstm", hidden=hidden, cell="torch", dropout=0.3, epochs=12, batch_size=8,
                            lr=1e-3, optimizer="adam", loss_reduction="mean", grad_clip=5.0, preset="default")


# --------------------------------------------------------------------------- normaliser
@dataclass
class Normalizer:
    """Per-channel standardisation learnt on training frames.

    Attributes
    ----------
    mean, std : np.ndarray, shape (D,), float64
        ``std`` is floored at ``rel_floor × median(std)``: a channel that is constant
        on the training set (e.g. pinned at the log floor in a band the recordings
        lack) holds only rounding noise, and dividing by its ~0 deviation would blow
        that noise up to the loudness of real channels, or to inf. Relative to the
        median, so the floor does not assume the features' units.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, sequences, rel_floor: float = 1e-3) -> "Normalizer":
        """Learn the statistics from a list of ``(T_i, D)`` arrays (all frames pooled)."""
        frames = np.concatenate([np.asarray(s, dtype=np.float64) for s in sequences], axis=0)
        mean = frames.mean(axis=0)
        std = frames.std(axis=0)
        floor = max(rel_floor * float(np.median(std)), np.finfo(np.float32).tiny)
        return cls(mean=mean, std=np.maximum(std, floor))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Standardise ``(..., D)`` frames; returns float32."""
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean.copy(), "std": self.std.copy()}

    @classmethod
    def from_arrays(cls, arrays: dict) -> "Normalizer":
        return cls(mean=np.asarray(arrays["mean"], dtype=np.float64),
                   std=np.asarray(arrays["std"], dtype=np.float64))

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        return cls.from_arrays(d)


# --------------------------------------------------------------------------- modules
def build_module(config: FrameModelConfig, n_in: int, n_classes: int) -> nn.Module:
    """The (untrained) network described by ``config``; a loader then loads its state."""
    if config.kind == "dnn":
        return DNNFrameClassifier(n_in, n_classes, config.hidden, config.activation, config.dropout)
    return LSTMFrameClassifier(n_in, n_classes, config.hidden, config.cell, config.dropout,
                               bidirectional=config.bidirectional)


def state_arrays(module: nn.Module) -> dict[str, np.ndarray]:
    """The module's state dict as contiguous NumPy arrays (safetensors-ready copies)."""
    return {k: np.ascontiguousarray(v.detach().cpu().numpy()).copy() for k, v in module.state_dict().items()}


def load_state_arrays(module: nn.Module, arrays: dict) -> nn.Module:
    """Load a dict of arrays from :func:`state_arrays` into ``module`` (strict); returns it."""
    ref = module.state_dict()
    tensors = {k: torch.as_tensor(np.asarray(v)).to(dtype=ref[k].dtype if k in ref else None)
               for k, v in arrays.items()}
    module.load_state_dict(tensors, strict=True)
    return module


@dataclass
class TrainedFrameModel:
    """A trained frame classifier with everything needed to apply it.

    Attributes
    ----------
    module : nn.Module
    normalizer : Normalizer
    config : FrameModelConfig
    n_in, n_classes : int
    history : dict of list
        Per epoch: ``loss`` (mean per-frame cross-entropy of the training pass),
        ``frame_acc`` (training frames, in train mode), ``lr``, ``seconds``, and
        ``valid_frame_acc`` when validation data was given.
    """

    module: nn.Module
    normalizer: Normalizer
    config: FrameModelConfig
    n_in: int
    n_classes: int
    history: dict = field(default_factory=dict)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Weights and normaliser as a flat dict of arrays (``module.*``, ``normalizer.*``)."""
        out = {f"module.{k}": v for k, v in state_arrays(self.module).items()}
        out.update({f"normalizer.{k}": v for k, v in self.normalizer.state_arrays().items()})
        return out

    def metadata(self) -> dict:
        """Everything else, JSON-able."""
        return {"config": self.config.to_dict(), "n_in": self.n_in, "n_classes": self.n_classes,
                "history": {k: list(v) for k, v in self.history.items()}}

    @classmethod
    def from_state(cls, arrays: dict, metadata: dict, device: str | None = None) -> "TrainedFrameModel":
        """Rebuild from :meth:`state_arrays` and :meth:`metadata`."""
        config = FrameModelConfig.from_dict(metadata["config"])
        module = build_module(config, int(metadata["n_in"]), int(metadata["n_classes"]))
        load_state_arrays(module, {k[len("module."):]: v for k, v in arrays.items() if k.startswith("module.")})
        normalizer = Normalizer.from_arrays({k[len("normalizer."):]: v for k, v in arrays.items()
                                             if k.startswith("normalizer.")})
        module.to(torch.device(resolve_device(device or config.device))).eval()
        return cls(module=module, normalizer=normalizer, config=config, n_in=int(metadata["n_in"]),
                   n_classes=int(metadata["n_classes"]), history=dict(metadata.get("history", {})))


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


def _pad(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    return nn.utils.rnn.pad_sequence(seqs, batch_first=True), lengths


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
