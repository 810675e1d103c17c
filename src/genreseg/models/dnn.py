"""DNN frame classifier: a feed-forward network applied to every frame on its own.

The paper's DNN is a Kaldi nnet1 model (sigmoid hidden layers, softmax output,
frame-shuffled minibatch SGD). Here it is a plain :class:`torch.nn.Sequential` of
``Linear → activation (→ dropout)`` blocks and a linear output layer producing
logits (the softmax lives in the loss and in :func:`genreseg.models.frame_posteriors`).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "DNNFrameClassifier"]

#: Hidden-layer nonlinearities by config name.
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


class DNNFrameClassifier(nn.Module):
    """Per-frame feed-forward classifier.

    Parameters
    ----------
    n_in : int
        Feature dimension D.
    n_classes : int
        Number of output classes C.
    hidden : tuple of int
        Width of each hidden layer, e.g. ``(1024,)`` or ``(1024, 1024)``.
    activation : {"sigmoid", "relu", "tanh"}
        Hidden nonlinearity.
    dropout : float
        Dropout after each hidden activation (0 disables it).

    Notes
    -----
    ``forward`` accepts ``(..., D)`` — single frames ``(N, D)`` or padded batches of
    sequences ``(B, T, D)`` — and returns logits ``(..., C)``. ``lengths`` is accepted
    and ignored so that the DNN and LSTM share one calling convention: frames are
    processed independently, so padding cannot influence real frames.
    """

    def __init__(self, n_in: int, n_classes: int, hidden: tuple[int, ...] = (1024,),
                 activation: str = "sigmoid", dropout: float = 0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(width, n_classes)
        self.n_in, self.n_classes = n_in, n_classes

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.output(self.body(x))
