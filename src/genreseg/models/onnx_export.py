"""Export a trained frame model to ONNX: normaliser, network and softmax in one graph.

The file runs with :class:`genreseg.onnx_engine.OnnxFrameModel` (onnxruntime, no torch).

Graph
-----
``frames`` float32 ``[T, D]`` (raw features of one sequence, ``T`` dynamic) →
``Cast(double) → Sub(mean) → Div(std) → Cast(float)`` (the :class:`~.state.Normalizer`
computes in float64 and rounds once to float32; doing the same here makes the
normalised frames bit-identical to torch's input) → the network → ``Softmax`` →
``posteriors`` float32 ``[T, C]``.

* DNN: ``Gemm`` + ``Sigmoid``/``Relu``/``Tanh`` per hidden layer, ``Gemm`` output.
* LSTM: one ONNX ``LSTM`` node per layer (batch of one: ``[T, 1, ·]``). A
  unidirectional stack also takes the initial state of every layer, ``h0_<k>`` and
  ``c0_<k>`` float32 ``[1, H_k]``, and returns the final one, ``hn_<k>``/``cn_<k>``,
  so a caller can carry it from chunk to chunk. A bidirectional stack has no state
  inputs or outputs: each frame depends on the whole sequence.

Why one hand-built graph (``onnx.helper``) and not ``torch.onnx.export``
------------------------------------------------------------------------
* The peephole cell is a Python loop over time steps; tracing it unrolls the loop
  into a graph of fixed ``T``. ONNX's own ``LSTM`` operator has the paper's
  peepholes (its ``P`` input, the output gate looking at the new cell ``C_t``
  exactly as :class:`~.lstm.PeepholeLSTM` does), so the weights map onto it directly.
* One builder for all three networks keeps names, inputs and metadata uniform, and
  the bytes depend on the weights only (the exporter of torch 2.x goes through
  dynamo/onnxscript, whose node names and versions change between releases).
* Nothing but ``onnx`` and NumPy is needed to write the file.

Gate orders: ONNX stacks W/R/B as (i, o, f, c) and the peepholes P as (i, o, f);
``nn.LSTM`` stacks (i, f, g, o) and :class:`~.lstm.PeepholeLSTM` (i, f, c, o) plus
``peephole_i/f/o``. ``nn.LSTM`` has two biases (input and recurrent), which are ONNX's
``Wb`` and ``Rb``; the peephole cell has one (``Rb`` = 0).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from .. import __version__
from ..onnx_engine import FORMAT_VERSION, META_PREFIX, OPSET
from .lstm import LSTMFrameClassifier, PeepholeLSTM
from .state import TrainedFrameModel

__all__ = ["build_onnx", "export_onnx", "lstm_onnx_weights"]

#: ONNX op of each hidden activation module of the DNN.
_ACTIVATION_OPS = {nn.Sigmoid: "Sigmoid", nn.ReLU: "Relu", nn.Tanh: "Tanh"}

#: Row blocks of (i, f, g/c, o) gate stacks in ONNX's (i, o, f, c) order.
_IOFC = (0, 3, 1, 2)


class _Graph:
    """Collects nodes and initialisers; names are generated in a fixed order, so the
    same weights always give the same bytes."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, outputs: list[str] | None = None,
           **attrs) -> list[str]:
        """Append a node; returns its output names (generated unless given)."""
        self._count += 1
        outputs = outputs or [f"{op_type.lower()}_{self._count}_{k}" for k in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{self._count}", **attrs))
        return outputs


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _gates_iofc(w: np.ndarray) -> np.ndarray:
    """Reorder a ``(4H, ...)`` gate stack from (i, f, g, o) to ONNX's (i, o, f, c)."""
    blocks = np.split(w, 4, axis=0)
    return np.concatenate([blocks[k] for k in _IOFC], axis=0)


def lstm_onnx_weights(layer: nn.Module) -> dict[str, np.ndarray]:
    """ONNX ``LSTM`` inputs ``W, R, B`` (and ``P``) of one layer.

    Parameters
    ----------
    layer : nn.LSTM (one layer, batch first, uni- or bidirectional) or PeepholeLSTM

    Returns
    -------
    dict with ``W`` ``[dirs, 4H, D]``, ``R`` ``[dirs, 4H, H]``, ``B`` ``[dirs, 8H]``
    and, for the peephole cell, ``P`` ``[1, 3H]``; all float32.
    """
    if isinstance(layer, PeepholeLSTM):
        H = layer.hidden_size
        peep = [_numpy(layer.peephole_i), _numpy(layer.peephole_o), _numpy(layer.peephole_f)]
        return {"W": _gates_iofc(_numpy(layer.weight_x))[None],
                "R": _gates_iofc(_numpy(layer.weight_m))[None],
                "B": np.concatenate([_gates_iofc(_numpy(layer.bias)), np.zeros(4 * H, np.float32)])[None],
                "P": np.concatenate(peep)[None]}
    if not isinstance(layer, nn.LSTM) or layer.num_layers != 1 or not layer.bias or layer.proj_size:
        raise ValueError(f"cannot export LSTM layer {layer!r}")
    suffixes = ["_l0", "_l0_reverse"] if layer.bidirectional else ["_l0"]
    p = {name: _numpy(t) for name, t in layer.named_parameters()}
    return {"W": np.stack([_gates_iofc(p["weight_ih" + s]) for s in suffixes]),
            "R": np.stack([_gates_iofc(p["weight_hh" + s]) for s in suffixes]),
            "B": np.stack([np.concatenate([_gates_iofc(p["bias_ih" + s]), _gates_iofc(p["bias_hh" + s])])
                           for s in suffixes])}


def _normalizer(g: _Graph, x: str, trained: TrainedFrameModel) -> str:
    mean = np.asarray(trained.normalizer.mean, dtype=np.float64)
    std = np.asarray(trained.normalizer.std, dtype=np.float64)
    (x,) = g.op("Cast", [x], to=TensorProto.DOUBLE)
    (x,) = g.op("Sub", [x, g.const("normalizer_mean", mean)])
    (x,) = g.op("Div", [x, g.const("normalizer_std", std)])
    return g.op("Cast", [x], to=TensorProto.FLOAT)[0]


def _linear(g: _Graph, x: str, layer: nn.Linear, name: str) -> str:
    w, b = g.const(f"{name}_weight", _numpy(layer.weight)), g.const(f"{name}_bias", _numpy(layer.bias))
    return g.op("Gemm", [x, w, b], transB=1)[0]


def _dnn_body(g: _Graph, x: str, module: nn.Module) -> str:
    """``[T, D] → [T, width]``: the hidden layers (dropout is the identity at inference)."""
    for k, layer in enumerate(module.body):
        if isinstance(layer, nn.Linear):
            x = _linear(g, x, layer, f"hidden{k}")
        elif type(layer) in _ACTIVATION_OPS:
            (x,) = g.op(_ACTIVATION_OPS[type(layer)], [x])
        elif not isinstance(layer, nn.Dropout):
            raise ValueError(f"cannot export DNN layer {layer!r}")
    return x


def _lstm_body(g: _Graph, x: str, module: LSTMFrameClassifier) -> tuple[str, list, list]:
    """``[T, D] → [T, width]`` through the LSTM stack; returns the state inputs and outputs."""
    axis0, axis1 = g.const("axis0", np.array([0], np.int64)), g.const("axis1", np.array([1], np.int64))
    (x,) = g.op("Unsqueeze", [x, axis1])  # [T, 1, D]: a batch of one
    state_in, state_out = [], []
    for k, layer in enumerate(module.layers):
        w = lstm_onnx_weights(layer)
        H = layer.hidden_size
        inputs = [x] + [g.const(f"lstm{k}_{n}", w[n]) for n in ("W", "R", "B")]
        if module.bidirectional:
            (y,) = g.op("LSTM", inputs, hidden_size=H, direction="bidirectional")
            # Y [T, 2, 1, H] → [T, 1, 2H]: forward then backward half, as nn.LSTM concatenates.
            (y,) = g.op("Transpose", [y], perm=[0, 2, 1, 3])
            (x,) = g.op("Reshape", [y, g.const(f"shape{k}", np.array([0, 1, 2 * H], np.int64))])
            continue
        h0, c0 = f"h0_{k}", f"c0_{k}"
        state_in += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, H]) for n in (h0, c0)]
        (h0x,) = g.op("Unsqueeze", [h0, axis0])  # the op wants [dirs, batch, H]
        (c0x,) = g.op("Unsqueeze", [c0, axis0])
        inputs += ["", h0x, c0x] + ([g.const(f"lstm{k}_P", w["P"])] if "P" in w else [])
        y, hn, cn = g.op("LSTM", inputs, n_out=3, hidden_size=H, direction="forward")
        g.op("Squeeze", [hn, axis0], outputs=[f"hn_{k}"])
        g.op("Squeeze", [cn, axis0], outputs=[f"cn_{k}"])
        state_out += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, H]) for n in (f"hn_{k}", f"cn_{k}")]
        (x,) = g.op("Squeeze", [y, axis1])  # Y [T, 1, 1, H] → [T, 1, H]
    (x,) = g.op("Squeeze", [x, axis1])  # [T, width]
    return x, state_in, state_out


def _metadata(trained: TrainedFrameModel) -> dict[str, str]:
    """The ``metadata_props`` (JSON values) the runner checks against the graph."""
    config, module = trained.config, trained.module
    lstm = config.kind == "lstm"
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": config.kind,
        "cell": config.cell if lstm else None,
        "activation": None if lstm else config.activation,
        "bidirectional": bool(lstm and config.bidirectional),
        "n_in": int(trained.n_in),
        "n_classes": int(trained.n_classes),
        "hidden": list(config.hidden),
        # The cells per direction of each layer (a bidirectional layer of width h has h // 2).
        "state_sizes": [int(layer.hidden_size) for layer in module.layers] if lstm else [],
        "genreseg_version": __version__,
        "config": config.to_dict(),
    }
    return {META_PREFIX + k: json.dumps(v, sort_keys=True) for k, v in meta.items()}


def build_onnx(trained: TrainedFrameModel) -> onnx.ModelProto:
    """The ONNX model of ``trained`` (see the module docstring); checked, not written."""
    module = trained.module
    g = _Graph()
    x = _normalizer(g, "frames", trained)
    if trained.config.kind == "dnn":
        x, state_in, state_out = _dnn_body(g, x, module), [], []
    elif isinstance(module, LSTMFrameClassifier):
        x, state_in, state_out = _lstm_body(g, x, module)
    else:
        raise ValueError(f"cannot export a {type(module).__name__} as kind {trained.config.kind!r}")
    x = _linear(g, x, module.output, "output")
    g.op("Softmax", [x], outputs=["posteriors"], axis=-1)
    inputs = [helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["T", trained.n_in])] + state_in
    outputs = [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, ["T", trained.n_classes])]
    graph = helper.make_graph(g.nodes, f"genreseg_{trained.config.kind}", inputs, outputs + state_out,
                              initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="genreseg", producer_version=__version__)
    model.ir_version = 8  # opset 17's IR; readable by any onnxruntime since 1.11
    helper.set_model_props(model, _metadata(trained))
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(trained: TrainedFrameModel, path) -> Path:
    """Write the ONNX model of a trained frame model.

    Parameters
    ----------
    trained : TrainedFrameModel
        DNN (any activation), or LSTM with ``cell="torch"`` (uni- or bidirectional)
        or ``cell="peephole"``; any device (weights are copied to the CPU).
    path : str or Path
        Destination ``.onnx`` file (parent folders are created).

    Returns
    -------
    Path
        ``path``. The same weights always give the same bytes.
    """
    path = Path(path)
    data = build_onnx(trained).SerializeToString(deterministic=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
