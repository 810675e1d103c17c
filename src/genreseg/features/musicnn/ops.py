"""Fast, exact building blocks of the musicnn front end and mid end (time-major tensors).

The front end's convolutions are followed by ReLU, batch norm and a max over all mel
positions. :func:`conv_max_over_mel` computes only that max, reordered so that the
big intermediate (every mel position of every filter) stays small and in cache:

* ReLU is nondecreasing and batch norm is ``a * (x - mean) + beta`` with a constant
  ``a`` per channel, so ``max_f BN(ReLU(z_f))`` is ``BN(ReLU(max_f z_f))`` when
  ``a >= 0`` and ``BN(ReLU(min_f z_f))`` when ``a < 0`` -- *exactly*, because rounding is
  monotone too. Most timbral channels of the trained models have ``a < 0``; rather than
  a second reduction, their filters are negated (``min z = -max(-z)``, and negating a
  dot product's terms negates its rounded sum exactly).
* the bias is added after the max (``fl(z + b)`` is monotone in ``z``).
* the convolution is an im2col GEMM over a block of frames (several mel positions
  per row against a banded weight matrix), with the mel positions as the *outer* row
  index so that the max is a reduction over the leading axis.

:func:`inactive_channels` finds the channels whose pre-activation is provably <= 0 on
the given input (most timbral channels of ``MSD_musicnn`` are dead): their ReLU output
is exactly 0, so they need no convolution at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "conv_max_over_mel",
    "conv_over_time",
    "inactive_channels",
    "mel_block",
    "pad_time",
    "same_padding",
    "temporal_max_over_mel",
]

#: Rows of one im2col GEMM: large enough for BLAS to run near peak, small enough that
#: patches and products stay in cache (benchmarked 1024-16384).
GEMM_ROWS = 1024
#: GEMM columns aimed at by :func:`mel_block` (benchmarked: 2-8 blocks of 21-159
#: live channels).
BLOCK_COLUMNS = 160
#: GEMM rows of the temporal convolutions.
TEMPORAL_ROWS = 2048
#: Output frames per row of the temporal convolutions' Toeplitz GEMM (see
#: :func:`temporal_max_over_mel`); 16 was fastest of 1-16.
TEMPORAL_PHASES = 16
#: Safety margin of :func:`inactive_channels`, relative to the largest possible
#: magnitude of the sum; float32 rounding of a 469-term dot product is < 3e-5 of it.
INACTIVE_MARGIN = 1e-3


def same_padding(kernel: int) -> tuple[int, int]:
    """TF's ``padding="same"`` for stride 1: ``(before, after)``; extra goes after.

    ``pad_total = kernel - 1`` and ``before = pad_total // 2``: a 128-tap kernel gets
    63 frames before and 64 after.
    """
    before = (kernel - 1) // 2
    return before, kernel - 1 - before


def pad_time(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Zero-pad axis 1 (time) of a ``(B, T, C)`` tensor."""
    return F.pad(x, (0, 0, before, after))


def inactive_channels(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Channels whose convolution of ``x`` is ``<= 0`` everywhere, by interval bounds.

    With every input value in ``[lo, hi]`` (the range of ``x``, widened to include the
    zero padding), a channel's pre-activation is at most ``b + sum_k max(w_k lo, w_k
    hi)``. Where that bound is below ``-INACTIVE_MARGIN`` times the largest possible
    magnitude of the sum, even the float32 sum is ``<= 0``: ReLU gives exactly 0.

    Parameters
    ----------
    weight : torch.Tensor, shape (C, ...)
    bias : torch.Tensor, shape (C,)
    x : torch.Tensor
        The input the convolution will see (any shape).

    Returns
    -------
    torch.Tensor, shape (C,), bool
    """
    lo = min(float(x.min()), 0.0) if x.numel() else 0.0
    hi = max(float(x.max()), 0.0) if x.numel() else 0.0
    w, b = weight.flatten(1).double(), bias.double()
    bound = b + torch.where(w > 0, w * hi, w * lo).sum(1)
    magnitude = b.abs() + w.abs().sum(1) * max(-lo, hi)
    return bound < -INACTIVE_MARGIN * magnitude


def mel_block(n_channels: int) -> int:
    """Mel positions per im2col row for ``n_channels`` filters (see :func:`conv_max_over_mel`).

    Aims at ~:data:`BLOCK_COLUMNS` GEMM columns, 2 to 8 positions: few live channels
    (most of ``MSD_musicnn``'s are dead) get wide blocks, where the im2col copy and not
    the multiply-adds would otherwise dominate.
    """
    return min(8, max(2, round(BLOCK_COLUMNS / max(n_channels, 1))))


def _banded(weight: torch.Tensor, block: int) -> torch.Tensor:
    """``(kt * (kf + block - 1), block * C)``: column ``(p, c)`` is filter ``c`` shifted by
    ``p`` mel bands, zeros elsewhere."""
    n_out, kt, kf = weight.shape
    banded = weight.new_zeros((kt, kf + block - 1, block, n_out))
    for shift in range(block):
        banded[:, shift : shift + kf, shift] = weight.permute(1, 2, 0)
    return banded.reshape(kt * (kf + block - 1), block * n_out)


def conv_max_over_mel(
    x: torch.Tensor, weight: torch.Tensor, sign: torch.Tensor, block: int | None = None
) -> torch.Tensor:
    """``sign * max over mel positions of (sign * valid 2-D correlation)``, bias-free.

    Parameters
    ----------
    x : torch.Tensor, shape (B, T + kt - 1, F)
        Input, already padded in time (the time axis is "valid" here).
    weight : torch.Tensor, shape (C, kt, kf)
        Filters: time x mel taps (torch/TF correlation, no flip).
    sign : torch.Tensor, shape (C,)
        +1 or -1 per channel: -1 turns the max into a min (see the module docstring).
    block : int, optional
        Mel positions per im2col row; default :func:`mel_block`.

    Returns
    -------
    torch.Tensor, shape (B, T, C)
        For ``sign = +1`` the max, for ``-1`` the min, over the ``F - kf + 1`` mel
        positions of the correlation (without bias).

    Notes
    -----
    A plain im2col matrix holds a ``kt x kf`` patch per (frame, position): 266-469
    floats per output, whose copy costs as much as the GEMM when few channels are
    live. Here one row holds ``block`` neighbouring positions, ``kt x (kf + block -
    1)`` values, against a banded weight matrix with ``block * C`` columns: a few %
    more multiply-adds (the band's zeros, which add exact zeros) for a 2-7x smaller
    copy and a wider GEMM. The last block is shifted back to end at the last position
    (overlapping its neighbour: harmless for a max).
    """
    n_batch, padded, n_mel = x.shape
    n_out, kt, kf = weight.shape
    n_time, n_pos = padded - kt + 1, n_mel - kf + 1
    if n_time < 1 or n_pos < 1:
        raise ValueError(f"input {tuple(x.shape)} is smaller than the kernel {(kt, kf)}")
    block = min(block or mel_block(n_out), n_pos)
    width = kf + block - 1
    banded = _banded(weight * sign[:, None, None], block)
    n_full = (n_pos - block) // block + 1  # blocks at 0, block, 2 * block, ...
    n_rows = n_full + (n_full * block < n_pos)  # + one flush with the last position
    step = max(1, GEMM_ROWS // n_rows)
    buffer = x.new_empty(n_rows * step * kt * width)
    out = x.new_empty((n_batch, n_time, n_out))
    for b in range(n_batch):
        for start in range(0, n_time, step):
            stop = min(n_time, start + step)
            n = stop - start
            frames = x[b, start : stop + kt - 1].unfold(0, kt, 1)  # (n, F, kt)
            patches = buffer[: n_rows * n * kt * width].view(n_rows, n, kt, width)
            blocks = frames.unfold(1, width, block)[:, :n_full]  # (n, n_full, kt, width)
            patches[:n_full].copy_(blocks.permute(1, 0, 2, 3))
            if n_rows > n_full:
                patches[n_full].copy_(frames[:, n_pos - block : n_pos - block + width].transpose(1, 2))
            products = (patches.view(n_rows * n, -1) @ banded).view(n_rows, n, block, n_out)
            torch.amax(products.amax(dim=0), dim=1, out=out[b, start:stop])
    return out * sign


def temporal_max_over_mel(
    x: torch.Tensor, weight: torch.Tensor, sign: torch.Tensor, phases: int = TEMPORAL_PHASES
) -> torch.Tensor:
    """:func:`conv_max_over_mel` for a time-only kernel ``(C, kt)``, each mel band alone.

    A kt-tap filter on one band is a GEMM with only kt inputs and C outputs per row,
    too thin for BLAS. Here each row covers ``phases`` consecutive output frames: its
    ``phases + kt - 1`` input frames times a banded (Toeplitz) ``(phases + kt - 1,
    phases * C)`` matrix -- 12% more multiply-adds (the zeros) for kt = 128, but a
    GEMM shape that runs 2-3x faster. The zeros add exact zeros: the result is the
    plain convolution's, bit for bit.
    """
    n_batch, padded, n_mel = x.shape
    n_out, kt = weight.shape
    n_time = padded - kt + 1
    if n_time < 1:
        raise ValueError(f"input {tuple(x.shape)} is shorter than the kernel ({kt} frames)")
    n_rows = -(-n_time // phases)  # row r computes frames [r * phases, (r + 1) * phases)
    x = pad_time(x, 0, n_rows * phases + kt - 1 - padded)
    width = phases + kt - 1
    banded = weight.new_zeros((width, phases, n_out))
    signed = (weight * sign[:, None]).t()
    for phase in range(phases):
        banded[phase : phase + kt, phase] = signed
    banded = banded.reshape(width, phases * n_out)
    step = max(1, TEMPORAL_ROWS // n_mel)
    out = x.new_empty((n_batch, n_rows * phases, n_out))
    for b in range(n_batch):
        for start in range(0, n_rows, step):
            stop = min(n_rows, start + step)
            frames = x[b, start * phases : stop * phases + kt - 1]
            windows = frames.unfold(0, width, phases)  # (rows, mel, width)
            patches = windows.permute(1, 0, 2).reshape(-1, width)
            products = (patches @ banded).view(n_mel, stop - start, phases * n_out)
            target = out[b, start * phases : stop * phases].view(stop - start, -1)
            torch.amax(products, dim=0, out=target)
    return out[:, :n_time] * sign


def conv_over_time(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Zero-padded ("same", odd taps) convolution in time whose kernel spans all features.

    Parameters
    ----------
    x : torch.Tensor, shape (B, T, F)
    weight : torch.Tensor, shape (C, taps, F)
    bias : torch.Tensor, shape (C,)

    Returns
    -------
    torch.Tensor, shape (B, T, C)

    Notes
    -----
    One GEMM of every frame with all taps, ``(T + taps - 1, F) @ (F, taps * C)``, then
    a shifted sum over the taps. Not ``F.conv1d``: oneDNN's convolution is ~10x less
    accurate here (2.5e-6 vs 2.8e-7 relative on the mid end's 3927-term sums), enough
    to show after the batch norms' x30 gains.
    """
    n_batch, n_time, n_feat = x.shape
    n_out, taps, _ = weight.shape
    half = taps // 2
    padded = pad_time(x, half, taps - 1 - half)
    matrix = weight.permute(2, 1, 0).reshape(n_feat, taps * n_out)  # columns (tap, C)
    per_tap = (padded @ matrix).view(n_batch, n_time + taps - 1, taps, n_out)
    out = bias.expand(n_batch, n_time, n_out).clone()
    for tap in range(taps):
        out += per_tap[:, tap : tap + n_time, tap]
    return out
