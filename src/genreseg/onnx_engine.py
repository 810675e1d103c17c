"""Frame posteriors from an exported ONNX model with onnxruntime: no torch, no sklearn.

A deployment that only classifies needs NumPy and onnxruntime; this module imports
nothing else (``genreseg`` itself and :mod:`genreseg.errors` are torch-free too). The
files come from :func:`genreseg.models.onnx_export.export_onnx`.

>>> model = OnnxFrameModel("frames.onnx")
>>> post = model.posteriors([feats])            # list of (T_i, C) softmax, float32
>>> p1, state = model.step(feats[:50])          # or chunk by chunk, carrying the state
>>> p2, state = model.step(feats[50:], state)

:class:`genreseg.models.TrainedFrameModel` has the same two methods, computed with
torch; the two engines agree to ~1e-6 and their LSTM states are interchangeable.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .errors import ModelError

__all__ = ["FORMAT_VERSION", "OnnxFrameModel"]

#: Version of the graph layout (inputs, outputs, metadata) this module reads; the
#: exporter writes it. Bump it whenever either side changes incompatibly.
FORMAT_VERSION = 1
#: Prefix of the model's ``metadata_props`` keys; each value is JSON.
META_PREFIX = "genreseg."
#: ONNX opset the exporter targets (LSTM-14, Softmax-13, Squeeze-13).
OPSET = 17

_REQUIRED = ("format_version", "kind", "cell", "bidirectional", "n_in", "n_classes", "hidden", "state_sizes")

#: A unidirectional LSTM's state: ``(h, c)`` per layer, each float32 ``(1, H_k)``.
State = tuple  # tuple[tuple[np.ndarray, np.ndarray], ...]


def _fail(path: Path, reason) -> ModelError:
    """A one-line :class:`ModelError` naming the file."""
    lines = str(reason).strip().splitlines() or ["unknown error"]
    return ModelError(f"{path}: {lines[0]}")


def _open_session(path: Path, threads: int) -> ort.InferenceSession:
    if not path.is_file():
        raise _fail(path, "no such ONNX model file")
    opts = ort.SessionOptions()
    # Small networks: a single thread avoids synchronisation that costs more than it saves.
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: no warnings on stderr at load time
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
        raise _fail(path, f"not a loadable ONNX model ({err})") from None


def _read_metadata(session: ort.InferenceSession, path: Path) -> dict:
    """The genreseg metadata of the model, decoded and version-checked."""
    raw = session.get_modelmeta().custom_metadata_map
    fields = {k[len(META_PREFIX):]: v for k, v in raw.items() if k.startswith(META_PREFIX)}
    if not fields:
        raise _fail(path, "an ONNX model without genreseg metadata (not exported by genreseg)")
    try:
        meta = {k: json.loads(v) for k, v in fields.items()}
    except ValueError as err:
        raise _fail(path, f"unreadable genreseg metadata ({err})") from None
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise _fail(path, f"genreseg metadata lacks {', '.join(missing)}")
    if meta["format_version"] != FORMAT_VERSION:
        raise _fail(path, f"ONNX format version {meta['format_version']!r}; this genreseg reads {FORMAT_VERSION}")
    return meta


def _expected_io(meta: dict) -> tuple[dict, dict]:
    """Names and shapes of the graph's inputs and outputs implied by the metadata."""
    inputs = {"frames": ["T", meta["n_in"]]}
    outputs = {"posteriors": ["T", meta["n_classes"]]}
    if meta["kind"] == "lstm" and not meta["bidirectional"]:
        for k, H in enumerate(meta["state_sizes"]):
            inputs.update({f"h0_{k}": [1, H], f"c0_{k}": [1, H]})
            outputs.update({f"hn_{k}": [1, H], f"cn_{k}": [1, H]})
    return inputs, outputs


def _check_model(session: ort.InferenceSession, meta: dict, path: Path) -> None:
    """Refuse a file whose metadata contradicts itself or its graph (e.g. edited by hand)."""
    kind, lstm = meta["kind"], meta["kind"] == "lstm"
    if kind not in ("dnn", "lstm"):
        raise _fail(path, f"metadata: unknown model kind {kind!r}")
    if lstm and (meta["cell"] not in ("torch", "peephole") or len(meta["state_sizes"]) != len(meta["hidden"])
                 or (meta["bidirectional"] and meta["cell"] != "torch")):
        raise _fail(path, f"metadata: inconsistent LSTM description (cell {meta['cell']!r}, hidden "
                          f"{meta['hidden']}, state sizes {meta['state_sizes']}, bidirectional "
                          f"{meta['bidirectional']})")
    want_in, want_out = _expected_io(meta)
    got_in = {a.name: list(a.shape) for a in session.get_inputs()}
    got_out = {a.name: list(a.shape) for a in session.get_outputs()}
    for what, want, got in (("inputs", want_in, got_in), ("outputs", want_out, got_out)):
        if want != got:
            raise _fail(path, f"metadata does not match the graph: {what} are {got}, the metadata implies {want}")


def _frames(x, n_in: int) -> np.ndarray:
    """``x`` as a contiguous float32 ``(T, n_in)`` array, or ``ValueError``."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"expected (T, {n_in}) frames, got shape {x.shape}")
    return x


class OnnxFrameModel:
    """An exported frame model (normaliser, network, softmax) run by onnxruntime on the CPU.

    Parameters
    ----------
    path : str or Path
        An ``.onnx`` file written by :func:`genreseg.models.onnx_export.export_onnx`.
    threads : int
        onnxruntime intra-op threads (default 1: these networks are small, and one
        thread is the fastest for them; a server runs several models side by side).
    expect : dict, optional
        Metadata values the caller relies on, e.g. ``{"n_in": 749}``; a differing
        value raises :class:`~genreseg.errors.ModelError`.

    Attributes
    ----------
    path : Path
    kind : {"dnn", "lstm"}
    cell : {"torch", "peephole"} or None
    bidirectional : bool
    n_in, n_classes : int
    state_sizes : tuple of int
        Cells per layer (per direction) of an LSTM; empty for a DNN.
    metadata : dict
        All genreseg metadata of the file (the training config under ``"config"``).

    Raises
    ------
    ModelError
        The file is missing, not ONNX, or its metadata is unknown or does not match
        its graph or ``expect``; the one-line message starts with the path.
    """

    def __init__(self, path, *, threads: int = 1, expect: dict | None = None):
        self.path = Path(path)
        self._session = _open_session(self.path, threads)
        meta = _read_metadata(self._session, self.path)
        _check_model(self._session, meta, self.path)
        for key, value in (expect or {}).items():
            if meta.get(key) != value:
                raise _fail(self.path, f"model has {key}={meta.get(key)!r}, expected {value!r}")
        self.metadata = meta
        self.kind, self.cell = meta["kind"], meta["cell"]
        self.bidirectional = bool(meta["bidirectional"])
        self.n_in, self.n_classes = int(meta["n_in"]), int(meta["n_classes"])
        self.state_sizes = tuple(int(h) for h in meta["state_sizes"])
        self._stateful = self.kind == "lstm" and not self.bidirectional
        self._outputs = [a.name for a in self._session.get_outputs()]

    def __repr__(self) -> str:
        what = self.kind if self.kind == "dnn" else f"lstm/{self.cell}{'/bi' if self.bidirectional else ''}"
        return f"OnnxFrameModel({str(self.path)!r}, {what}, n_in={self.n_in}, n_classes={self.n_classes})"

    def initial_state(self) -> State:
        """The zero state a sequence starts from (``()`` for a stateless model)."""
        if not self._stateful:
            return ()
        return tuple((np.zeros((1, H), np.float32), np.zeros((1, H), np.float32)) for H in self.state_sizes)

    def _check_state(self, state) -> State:
        if state is None:
            return self.initial_state()
        state = tuple(tuple(np.ascontiguousarray(a, dtype=np.float32) for a in pair) for pair in state)
        shapes = [tuple(a.shape for a in pair) for pair in state]
        if shapes != [((1, H), (1, H)) for H in self.state_sizes]:
            raise ValueError(f"state of shapes {shapes} does not fit layers of {list(self.state_sizes)} cells")
        return state

    def _run(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """One pass over ``x`` (normalised inside the graph) from ``state``."""
        if len(x) == 0:  # an ONNX LSTM cannot take an empty sequence; nothing changes
            return np.zeros((0, self.n_classes), np.float32), state
        feed = {"frames": x}
        for k, (h, c) in enumerate(state):
            feed[f"h0_{k}"], feed[f"c0_{k}"] = h, c
        out = dict(zip(self._outputs, self._session.run(None, feed)))
        new = tuple((out[f"hn_{k}"], out[f"cn_{k}"]) for k in range(len(state)))
        return out["posteriors"], new

    def posteriors(self, sequences) -> list[np.ndarray]:
        """Per-frame class posteriors of whole sequences.

        Parameters
        ----------
        sequences : list of np.ndarray, each (T_i, D)
            Raw (unnormalised) frame features; the normaliser is part of the graph.

        Returns
        -------
        list of np.ndarray, each (T_i, C), float32
            Equal (to ~1e-6) to :func:`genreseg.models.frame_posteriors`.
        """
        seqs = [_frames(s, self.n_in) for s in sequences]
        if self.kind == "dnn" and seqs:
            # Frames are independent: one run over all of them, then split per sequence.
            post, _ = self._run(np.concatenate(seqs), ())
            return np.split(post, np.cumsum([len(s) for s in seqs])[:-1])
        return [self._run(s, self.initial_state())[0] for s in seqs]

    def step(self, chunk, state=None) -> tuple[np.ndarray, State | None]:
        """Posteriors of the next frames of one sequence, continuing from ``state``.

        Parameters
        ----------
        chunk : np.ndarray, shape (T, D)
            The next raw frames (any ``T``, 0 included).
        state : optional
            What the previous call returned; ``None`` starts a sequence. Ignored by a DNN.

        Returns
        -------
        posteriors : np.ndarray, shape (T, C), float32
            Those of the whole sequence at these frames, however it was cut.
        state : tuple of (h, c) per layer, each float32 (1, H); None for a DNN
            Interchangeable with :meth:`genreseg.models.TrainedFrameModel.step`'s.

        Raises
        ------
        ValueError
            For a bidirectional LSTM (each frame depends on the whole sequence: use
            :meth:`posteriors`), or frames / a state of the wrong shape.
        """
        if self.bidirectional:
            raise ValueError("a bidirectional LSTM cannot run chunk by chunk; use posteriors() on the whole track")
        x = _frames(chunk, self.n_in)
        if not self._stateful:
            return self._run(x, ())[0], None
        return self._run(x, self._check_state(state))
