"""LSTM frame classifier over whole sequences (or long windows of them).

Two recurrent cells share one interface, chosen by ``cell``:

* ``"torch"`` — :class:`torch.nn.LSTM` (cuDNN / fused kernels; no peepholes). Fast.
* ``"peephole"`` — :class:`PeepholeLSTM`, the paper's cell, written out step by step:

  .. math::

     i_t &= σ(W_{ix} x_t + W_{im} m_{t-1} + w_{ic} ⊙ c_{t-1} + b_i) \\
     f_t &= σ(W_{fx} x_t + W_{fm} m_{t-1} + w_{fc} ⊙ c_{t-1} + b_f) \\
     c_t &= f_t ⊙ c_{t-1} + i_t ⊙ \\tanh(W_{cx} x_t + W_{cm} m_{t-1} + b_c) \\
     o_t &= σ(W_{ox} x_t + W_{om} m_{t-1} + w_{oc} ⊙ c_t + b_o) \\
     m_t &= o_t ⊙ \\tanh(c_t)

  with diagonal (vector) peephole weights ``w_ic, w_fc, w_oc``. Note the output gate
  peeks at the *new* cell ``c_t``, the input and forget gates at ``c_{t-1}``.

Variable-length batches are right-padded ``(B, T, D)`` with ``lengths (B,)``. The
recurrence is causal, so padding after a sequence's end cannot reach its real
frames; the peephole cell additionally freezes the state past the end and both
cells output zeros there (the loss masks those positions anyway).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["CELLS", "LSTMFrameClassifier", "PeepholeLSTM"]

CELLS = ("torch", "peephole")


class PeepholeLSTM(nn.Module):
    """One unidirectional LSTM layer with diagonal peephole connections (batch first).

    Parameters
    ----------
    input_size, hidden_size : int

    Attributes
    ----------
    weight_x : Parameter, shape (4H, D)
        Input weights, gate blocks in the order (i, f, c, o): rows ``0:H`` are
        ``W_ix``, ``H:2H`` ``W_fx``, ``2H:3H`` ``W_cx``, ``3H:4H`` ``W_ox``.
    weight_m : Parameter, shape (4H, H)
        Recurrent weights on ``m_{t-1}``, same block order.
    bias : Parameter, shape (4H,)
        ``(b_i, b_f, b_c, b_o)``.
    peephole_i, peephole_f, peephole_o : Parameter, shape (H,)
        Diagonal peephole weights ``w_ic, w_fc, w_oc``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        H = hidden_size
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_x = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_m = nn.Parameter(torch.empty(4 * H, H))
        self.bias = nn.Parameter(torch.empty(4 * H))
        self.peephole_i = nn.Parameter(torch.empty(H))
        self.peephole_f = nn.Parameter(torch.empty(H))
        self.peephole_o = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scheme as torch.nn.LSTM (U(-1/sqrt(H), 1/sqrt(H)) for everything), so the
        # two cells start from comparable scales.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the layer over a padded batch.

        Parameters
        ----------
        x : Tensor, shape (B, T, D)
        lengths : Tensor of int, shape (B,), optional
            Real length of each sequence; ``None`` means all are ``T`` long.
        state : (m_0, c_0), each (B, H), optional
            Initial state; zeros by default.

        Returns
        -------
        m : Tensor, shape (B, T, H)
            Outputs ``m_t`` (zero past each sequence's end).
        (m_T, c_T) : the state after each sequence's last real frame.
        """
        B, T, _ = x.shape
        H = self.hidden_size
        if state is None:
            m = x.new_zeros(B, H)
            c = x.new_zeros(B, H)
        else:
            m, c = state
        # The input projection of all time steps at once: one large matmul instead of T.
        zx = torch.nn.functional.linear(x, self.weight_x, self.bias)
        valid = None
        if lengths is not None:
            steps = torch.arange(T, device=x.device)
            valid = (steps[None, :] < lengths.to(x.device)[:, None]).to(x.dtype).unsqueeze(-1)
        outputs = []
        for t in range(T):
            z = zx[:, t] + m @ self.weight_m.t()
            zi, zf, zc, zo = z.chunk(4, dim=1)
            i = torch.sigmoid(zi + self.peephole_i * c)
            f = torch.sigmoid(zf + self.peephole_f * c)
            c_new = f * c + i * torch.tanh(zc)
            o = torch.sigmoid(zo + self.peephole_o * c_new)
            m_new = o * torch.tanh(c_new)
            if valid is not None:
                v = valid[:, t]
                # Past a sequence's end keep its state, emit zeros.
                c = v * c_new + (1 - v) * c
                m = v * m_new + (1 - v) * m
                outputs.append(v * m_new)
            else:
                c, m = c_new, m_new
                outputs.append(m_new)
        return torch.stack(outputs, dim=1), (m, c)


class LSTMFrameClassifier(nn.Module):
    """Stack of LSTM layers with a linear output layer applied to every frame.

    Parameters
    ----------
    n_in : int
        Feature dimension D.
    n_classes : int
        Number of output classes C.
    hidden : tuple of int
        Cells per layer, e.g. ``(512,)`` or ``(1024, 1024)``; layers may differ.
    cell : {"torch", "peephole"}
        Recurrent cell (see module docstring).
    dropout : float
        Dropout on each layer's output (before the next layer / the output layer).
    bidirectional : bool
        ``cell="torch"`` only: each layer of width ``h`` is a bidirectional
        :class:`torch.nn.LSTM` of ``h // 2`` cells per direction (outputs concatenated,
        ``2 * (h // 2)`` wide), so a frame's posterior sees the whole track. Not the
        paper's (unidirectional) model; an option beside it.

    Notes
    -----
    ``forward(x, lengths)`` maps a right-padded batch ``(B, T, D)`` to per-frame logits
    ``(B, T, C)``; rows past ``lengths[b]`` are the output layer's bias only and must be
    masked by the caller. A 2-D input ``(T, D)`` is treated as one sequence.
    """

    def __init__(self, n_in: int, n_classes: int, hidden: tuple[int, ...] = (512,),
                 cell: str = "torch", dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        if not hidden:
            raise ValueError("an LSTM needs at least one layer")
        if bidirectional and cell != "torch":
            raise ValueError("bidirectional needs cell='torch'")
        self.cell = cell
        self.bidirectional = bool(bidirectional)
        self.n_in, self.n_classes = n_in, n_classes
        layers = []
        width = n_in
        for h in hidden:
            if bidirectional:
                half = max(1, h // 2)
                layers.append(nn.LSTM(width, half, batch_first=True, bidirectional=True))
                width = 2 * half
                continue
            layers.append(nn.LSTM(width, h, batch_first=True) if cell == "torch" else PeepholeLSTM(width, h))
            width = h
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        squeeze = x.dim() == 2
        if squeeze:
            x = x.unsqueeze(0)
        B, T, _ = x.shape
        h = x
        for layer in self.layers:
            if self.cell == "torch":
                if lengths is None:
                    h, _ = layer(h)
                else:
                    # Packing makes nn.LSTM stop at each sequence's end (no padding in the state).
                    packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
                    h, _ = layer(packed)
                    h, _ = pad_packed_sequence(h, batch_first=True, total_length=T)
            else:
                h, _ = layer(h, lengths)
            h = self.dropout(h)
        logits = self.output(h)
        return logits[0] if squeeze else logits

    def forward_chunk(self, x: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        """Logits ``(T, C)`` of the next ``T`` frames ``(T, D)`` of one long sequence.

        ``state`` is what the previous chunk returned (``None`` at the start), so a
        sequence fed chunk by chunk gets exactly the logits of one :meth:`forward` over
        all of it, while only a chunk of it is ever in memory. Unidirectional only: a
        bidirectional layer needs the whole sequence (use :meth:`forward`).
        """
        if self.bidirectional:
            raise ValueError("a bidirectional LSTM cannot run chunk by chunk; use forward() on the whole track")
        h = x.unsqueeze(0)
        state = state or [None] * len(self.layers)
        new_state = []
        for layer, s in zip(self.layers, state):
            h, s = layer(h, s) if self.cell == "torch" else layer(h, None, s)
            new_state.append(s)
            h = self.dropout(h)
        return self.output(h)[0], new_state
