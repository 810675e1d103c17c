"""A trained frame model as data: its input normaliser, its network, and their state arrays.

Nothing here pickles: a trained model leaves as :meth:`TrainedFrameModel.state_arrays`
(a flat dict of NumPy arrays, safetensors-ready) and :meth:`TrainedFrameModel.metadata`
(a JSON-able dict), and comes back with :meth:`TrainedFrameModel.from_state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..runtime import resolve_device
from .config import FrameModelConfig
from .dnn import DNNFrameClassifier
from .lstm import LSTMFrameClassifier

__all__ = ["Normalizer", "TrainedFrameModel", "build_module", "load_state_arrays", "state_arrays"]


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

    @property
    def kind(self) -> str:
        """"dnn" or "lstm" (as :class:`genreseg.onnx_engine.OnnxFrameModel` says it)."""
        return self.config.kind

    @property
    def bidirectional(self) -> bool:
        """True for a bidirectional LSTM (it needs whole tracks)."""
        return self.config.kind == "lstm" and bool(self.config.bidirectional)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Weights and normaliser as a flat dict of arrays (``module.*``, ``normalizer.*``)."""
        out = {f"module.{k}": v for k, v in state_arrays(self.module).items()}
        out.update({f"normalizer.{k}": v for k, v in self.normalizer.state_arrays().items()})
        return out

    def metadata(self) -> dict:
        """Everything else, JSON-able."""
        return {"config": self.config.to_dict(), "n_in": self.n_in, "n_classes": self.n_classes,
                "history": {k: list(v) for k, v in self.history.items()}}

    def posteriors(self, sequences) -> list[np.ndarray]:
        """Per-frame softmax of whole raw ``(T_i, D)`` sequences: :func:`~.inference.frame_posteriors`.

        The same call as :meth:`genreseg.onnx_engine.OnnxFrameModel.posteriors`.
        """
        from .inference import frame_posteriors  # inference imports this module

        return frame_posteriors(self, sequences)

    def step(self, chunk, state=None) -> tuple[np.ndarray, tuple | None]:
        """Posteriors of the next raw frames ``(T, D)`` of one sequence, continuing from ``state``.

        The same call as :meth:`genreseg.onnx_engine.OnnxFrameModel.step`: ``state`` is
        what the previous call returned (``None`` starts a sequence); the new one is a
        tuple of ``(h, c)`` float32 ``(1, H)`` arrays per LSTM layer, interchangeable
        between the engines (``None`` for a DNN). Returns float32 ``(T, C)`` posteriors
        equal to those of the whole sequence. A bidirectional LSTM raises ``ValueError``.
        """
        lstm = self.config.kind == "lstm"
        if lstm and self.config.bidirectional:
            raise ValueError("a bidirectional LSTM cannot run chunk by chunk; use posteriors() on the whole track")
        x = np.asarray(chunk, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"expected (T, {self.n_in}) frames, got shape {x.shape}")
        x = self.normalizer.transform(x)
        if len(x) == 0:  # nothing to run; the state stays as it is
            return np.zeros((0, self.n_classes), np.float32), (state if lstm else None)
        device = next(self.module.parameters()).device
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                xt = torch.from_numpy(x).to(device)
                if lstm:
                    if state is not None and len(state) != len(self.module.layers):
                        raise ValueError(f"state of {len(state)} layers for an LSTM of {len(self.module.layers)}")
                    logits, raw = self.module.forward_chunk(xt, _torch_state(state, self.config.cell, device))
                    state = tuple((_state_array(h), _state_array(c)) for h, c in raw)
                else:
                    logits, state = self.module(xt), None
                post = torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float32)
        finally:
            self.module.train(was_training)
        return post, state

    @classmethod
    def from_state(cls, arrays: dict, metadata: dict, device: str | None = None) -> "TrainedFrameModel":
        """Rebuild from :meth:`state_arrays` and :meth:`metadata`."""
        config = FrameModelConfig.from_dict(metadata["config"])
        module = build_module(config, int(metadata["n_in"]), int(metadata["n_classes"]))
        load_state_arrays(module, {k[len("module."):]: v for k, v in arrays.items() if k.startswith("module.")})
        normalizer = Normalizer.from_arrays({k[len("normalizer."):]: v for k, v in arrays.items()
                                             if k.startswith("normalizer.")})
        # The saved device is where training ran; a loaded model runs where it is loaded:
        # on the device asked for, else the best one here (a model trained on a GPU
        # loads and predicts on a machine without one).
        module.to(torch.device(resolve_device(device or "auto"))).eval()
        return cls(module=module, normalizer=normalizer, config=config, n_in=int(metadata["n_in"]),
                   n_classes=int(metadata["n_classes"]), history=dict(metadata.get("history", {})))


# --------------------------------------------------------------------------- LSTM state
def _state_array(t: torch.Tensor) -> np.ndarray:
    """One layer's h or c as float32 ``(1, H)`` (nn.LSTM keeps ``(1, 1, H)``)."""
    return np.ascontiguousarray(t.detach().cpu().numpy().reshape(1, -1), dtype=np.float32)


def _torch_state(state, cell: str, device: torch.device) -> list | None:
    """``(h, c)`` arrays per layer back to what ``forward_chunk`` takes (``None``: zeros)."""
    if state is None:
        return None
    # nn.LSTM wants (layers * directions, batch, H); PeepholeLSTM (batch, H).
    shape = (1, 1, -1) if cell == "torch" else (1, -1)
    return [tuple(torch.as_tensor(np.asarray(a, dtype=np.float32)).reshape(shape).to(device) for a in pair)
            for pair in state]
