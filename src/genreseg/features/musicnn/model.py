"""PyTorch port of the musicnn tagger (Pons & Serra, musicnn 0.1.0, ``models.build_musicnn``).

The network, for log-mel patches ``(B, T, 96)`` (T = 187 in training, 3 s):

* **front end** (``frontend(..., type="7774timbraltemporal", num_filt=1.6)``): batch
  norm of the input; two *timbral* convolutions, 7x38 and 7x67 (time x mel;
  ``int(0.4 * 96)``, ``int(0.7 * 96)``) with 204 maps each, time zero-padded 3/3 and
  "valid" in mel; three *temporal* convolutions 128x1, 64x1, 32x1 with 51 maps each
  and TF's "same" padding. Each is ReLU -> batch norm -> max over all mel positions;
  concatenated: 2 * 204 + 3 * 51 = 561 features per frame.
* **mid end**: 7-tap convolution 561 -> 64 (zero-padded 3/3), ReLU, batch norm; then
  two residual 7-tap convolutions 64 -> 64 (ReLU -> batch norm, plus their input).
  The front end and the three mid-end outputs are concatenated: 753 per frame.
* **back end**: max and mean over time, *interleaved per channel* (TF concatenates
  ``[max, mean]`` on a trailing axis of size 1 and flattens: ``max_0, mean_0, max_1,
  ...``), batch norm, dense 200 + ReLU, batch norm (the *penultimate* features),
  dense 50 (logits), sigmoid (the taggram).

Every batch norm is TF's inference form with TF's default epsilon, 1e-3 (not torch's
1e-5: many trained channels are dead, with variance ~1e-36, where the epsilon *is* the
normaliser). Dropout is inactive at inference and absent here.

The front end runs through :mod:`.ops` (exact reordering of ReLU/BN/max, GEMM-based
convolutions); the weights are the TF checkpoints converted by :mod:`.convert`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from .ops import (
    conv_max_over_mel,
    conv_over_time,
    inactive_channels,
    pad_time,
    same_padding,
    temporal_max_over_mel,
)

__all__ = [
    "BACKEND_UNITS",
    "FRONTEND_DIM",
    "MIDEND_DIM",
    "MODEL_NAMES",
    "Musicnn",
    "N_TAGS",
    "PATCH_FRAMES",
    "TF_BN_EPSILON",
    "FrozenBatchNorm",
    "load_musicnn",
    "pool_over_time",
    "weights_path",
]

#: Frames of a training patch: ``librosa.time_to_frames(3 s) + 1`` at hop 256, 16 kHz.
PATCH_FRAMES = 187
#: TF ``batch_normalization``'s default epsilon.
TF_BN_EPSILON = 1e-3
N_MELS = 96
#: Front-end widths for ``num_filt = 1.6``: ``int(1.6 * 128)``, ``int(1.6 * 32)``.
N_TIMBRAL, N_TEMPORAL = 204, 51
#: (time, mel) kernels of the timbral convolutions: ``int(0.4 * 96)``, ``int(0.7 * 96)``.
TIMBRAL_KERNELS = ((7, 38), (7, 67))
#: Time kernels of the temporal convolutions (mel width 1).
TEMPORAL_KERNELS = (128, 64, 32)
#: Taps of the timbral and mid-end convolutions in time (padded 3/3).
TIME_TAPS = 7
N_MIDEND = 64
BACKEND_UNITS = 200
N_TAGS = 50
FRONTEND_DIM = 2 * N_TIMBRAL + 3 * N_TEMPORAL  # 561
MIDEND_DIM = FRONTEND_DIM + 3 * N_MIDEND  # 753
#: The pretrained models shipped (``weights/<name>.safetensors``).
MODEL_NAMES = ("MSD_musicnn", "MTT_musicnn")


class FrozenBatchNorm(nn.Module):
    """TF inference batch norm over the last axis, from moving statistics.

    Parameters
    ----------
    n_features : int
    eps : float
        TF's default 1e-3.
    fused : bool
        Follow TF's fused kernel, ``(x - mean) * a + beta`` (used for 4-D inputs: the
        convolution layers), or ``tf.nn.batch_normalization``, ``x * a + (beta - mean
        * a)`` (2-D inputs: the back end). ``a = gamma * rsqrt(var + eps)``.
    """

    def __init__(self, n_features: int, eps: float = TF_BN_EPSILON, fused: bool = True):
        super().__init__()
        self.eps, self.fused = eps, fused
        self.register_buffer("weight", torch.ones(n_features))  # gamma
        self.register_buffer("bias", torch.zeros(n_features))  # beta
        self.register_buffer("running_mean", torch.zeros(n_features))
        self.register_buffer("running_var", torch.ones(n_features))

    def scale(self) -> torch.Tensor:
        """Per-feature multiplier ``gamma / sqrt(var + eps)``."""
        return self.weight * torch.rsqrt(self.running_var + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale()
        if self.fused:
            return (x - self.running_mean) * scale + self.bias
        return x * scale + (self.bias - self.running_mean * scale)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}, fused={self.fused}"


class ConvBlock(nn.Module):
    """A convolution (ReLU inside, as TF's ``activation=``) and its batch norm."""

    def __init__(self, out_channels: int, kernel: tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(1, out_channels, kernel)  # weight (C, 1, time, mel)
        self.bn = FrozenBatchNorm(out_channels)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``max over mel of BN(ReLU(conv(x)))`` for a time-padded ``(B, T', F)`` input."""
        weight, bias = self.conv.weight[:, 0], self.conv.bias
        # channels provably <= 0 on this input stay 0 after ReLU: skip their convolution
        live = ~inactive_channels(weight, bias, x)
        z = x.new_zeros((x.shape[0], x.shape[1] - weight.shape[1] + 1, weight.shape[0]))
        if live.any():
            weight, bias = weight[live], bias[live]
            # a negative BN scale turns the max into a min of the pre-activation (ops.py)
            sign = torch.where(self.bn.weight[live] < 0, -1.0, 1.0).to(weight.dtype)
            if weight.shape[-1] == 1:  # temporal: time-only kernel
                pooled = temporal_max_over_mel(x, weight[..., 0], sign)
            else:
                pooled = conv_max_over_mel(x, weight, sign)
            z[..., live] = pooled + bias
        return self.bn(torch.relu(z))

    def over_time(self, x: torch.Tensor) -> torch.Tensor:
        """``BN(ReLU(conv(x)))`` for a mid-end layer whose kernel spans all features."""
        z = conv_over_time(x, self.conv.weight[:, 0], self.conv.bias)
        return self.bn(torch.relu(z))


class Musicnn(nn.Module):
    """musicnn (``build_musicnn`` with 64 mid-end filters and 200 back-end units).

    Use :func:`load_musicnn` for the pretrained models. Input tensors are time-major
    log-mel spectrograms ``(B, T, 96)`` from :func:`genreseg.features.musicnn.log_mel`.
    """

    def __init__(self, n_tags: int = N_TAGS):
        super().__init__()
        self.input_bn = FrozenBatchNorm(1)
        self.timbral = nn.ModuleList(ConvBlock(N_TIMBRAL, k) for k in TIMBRAL_KERNELS)
        self.temporal = nn.ModuleList(
            ConvBlock(N_TEMPORAL, (k, 1)) for k in TEMPORAL_KERNELS
        )
        self.mid = nn.ModuleList(
            ConvBlock(N_MIDEND, (TIME_TAPS, width))
            for width in (FRONTEND_DIM, N_MIDEND, N_MIDEND)
        )
        self.pool_bn = FrozenBatchNorm(2 * MIDEND_DIM, fused=False)
        self.dense = nn.Linear(2 * MIDEND_DIM, BACKEND_UNITS)
        self.dense_bn = FrozenBatchNorm(BACKEND_UNITS, fused=False)
        self.output = nn.Linear(BACKEND_UNITS, n_tags)

    def frontend(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``(B, T, 96)`` -> ``(B, T, 561)``: [timbral 7x38, 7x67, temporal 128, 64, 32]."""
        if log_mel.ndim != 3 or log_mel.shape[-1] != N_MELS:
            raise ValueError(f"expected (batch, frames, {N_MELS}), got {tuple(log_mel.shape)}")
        x = self.input_bn(log_mel.to(self.input_bn.weight.dtype))
        half = TIME_TAPS // 2
        padded = pad_time(x, half, half)
        features = [block.pooled(padded) for block in self.timbral]
        for block, taps in zip(self.temporal, TEMPORAL_KERNELS):
            features.append(block.pooled(pad_time(x, *same_padding(taps))))
        return torch.cat(features, dim=-1)

    def midend(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``(B, T, 96)`` -> ``(B, T, 753)``, for any ``T >= 1``.

        Fully convolutional in time (zero padding at both ends, as TF pads each
        patch); on a 187-frame patch it is the TF model's ``midend_features``.
        """
        front = self.frontend(log_mel)
        layers, h = [front], front
        for i, block in enumerate(self.mid):
            y = block.over_time(h)
            h = y if i == 0 else y + h  # layers 2 and 3 are residual
            layers.append(h)
        return torch.cat(layers, dim=-1)

    def head(
        self, max_pool: torch.Tensor, mean_pool: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Back end after the temporal pooling: ``(N, 753)`` twice -> logits, penultimate.

        Returns
        -------
        logits : torch.Tensor, shape (N, 50)
        penultimate : torch.Tensor, shape (N, 200)
        """
        # TF: concat([max, mean], axis=2) of (N, 753, 1) tensors, then flatten
        pooled = torch.stack([max_pool, mean_pool], dim=-1).flatten(1)
        hidden = torch.relu(self.dense(self.pool_bn(pooled)))
        penultimate = self.dense_bn(hidden)
        return self.output(penultimate), penultimate

    def backend(self, midend: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, 753)`` pooled over all of its ``T`` frames -> ``(logits, penultimate)``."""
        max_pool, mean_pool = pool_over_time(midend, midend.shape[1], midend.shape[1])
        return self.head(max_pool.flatten(0, 1), mean_pool.flatten(0, 1))

    def forward(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tag ``(B, 187, 96)`` log-mel patches.

        Returns
        -------
        dict
            ``taggram`` (B, 50) sigmoid outputs, ``logits`` (B, 50), ``penultimate``
            (B, 200), ``midend`` (B, T, 753).
        """
        midend = self.midend(patches)
        logits, penultimate = self.backend(midend)
        return {
            "taggram": torch.sigmoid(logits),
            "penultimate": penultimate,
            "logits": logits,
            "midend": midend,
        }


def pool_over_time(
    midend: torch.Tensor, window: int, hop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max and mean of ``(B, T, C)`` over windows of ``window`` frames every ``hop``.

    Returns two ``(B, N, C)`` tensors, ``N = 1 + (T - window) // hop``. The windows
    are a strided view, never copied (10x faster than ``max_pool1d`` on this layout).
    :meth:`Musicnn.backend` uses it too, so that windowed and whole-patch outputs are
    computed identically.
    """
    windows = midend.unfold(1, window, hop)  # (B, N, C, window)
    return windows.amax(dim=-1), windows.mean(dim=-1)


def weights_path(name: str) -> Path:
    """Path of a shipped model's safetensors file; ``ValueError`` for an unknown name."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown musicnn model {name!r}; choose one of {list(MODEL_NAMES)}")
    return Path(__file__).resolve().parent / "weights" / f"{name}.safetensors"


def load_musicnn(name: str = "MSD_musicnn") -> Musicnn:
    """The pretrained model ``name`` (``"MSD_musicnn"`` or ``"MTT_musicnn"``).

    Returned in eval mode without gradients, and cached: every call with the same name
    returns the same module (do not modify it).
    """
    return _load(name)


@lru_cache(maxsize=None)
def _load(name: str) -> Musicnn:
    from safetensors.torch import load_file

    path = weights_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run scripts/convert_musicnn.py")
    model = Musicnn()
    model.load_state_dict(load_file(str(path)), strict=True)
    model.eval()
    model.requires_grad_(False)
    return model
