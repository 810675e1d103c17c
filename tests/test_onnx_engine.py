"""ONNX export and the torch-free runner: parity with torch, streaming, lengths, errors.

The graph tests use random weights scaled ×3, so posteriors are far from uniform and
the gates saturate: a swapped peephole or gate block then moves posteriors by ~0.1
(measured), four orders of magnitude above the tolerance. One test trains small models
on the real gtzan_mini features (the session's ``gtzan_features`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from genreseg.errors import ModelError
from genreseg.models import (
    FrameModelConfig,
    Normalizer,
    TrainedFrameModel,
    build_module,
    frame_posteriors,
    train_frame_model,
)
from genreseg.models.onnx_export import export_onnx
from genreseg.onnx_engine import OnnxFrameModel

TOL = 1e-5  # absolute, on posteriors
D, C = 24, 6
LENGTHS = (1, 7, 80, 1000)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


CONFIGS = {
    "dnn-sigmoid": FrameModelConfig(kind="dnn", hidden=(16, 8), activation="sigmoid", dropout=0.2, device="cpu"),
    "dnn-relu": FrameModelConfig(kind="dnn", hidden=(16,), activation="relu", device="cpu"),
    "dnn-tanh": FrameModelConfig(kind="dnn", hidden=(16,), activation="tanh", device="cpu"),
    "lstm": FrameModelConfig(kind="lstm", hidden=(12,), device="cpu"),
    "lstm-2layers": FrameModelConfig(kind="lstm", hidden=(12, 7), dropout=0.3, device="cpu"),
    "lstm-bidirectional": FrameModelConfig(kind="lstm", hidden=(12, 6), bidirectional=True, device="cpu"),
    "peephole": FrameModelConfig(kind="lstm", hidden=(8,), cell="peephole", device="cpu"),
    "peephole-2layers": FrameModelConfig(kind="lstm", hidden=(12, 7), cell="peephole", device="cpu"),
}
STREAMING = [name for name, cfg in CONFIGS.items() if not cfg.bidirectional]


def _random_model(config: FrameModelConfig, seed: int = 0) -> TrainedFrameModel:
    """A model with random weights ×3 and a normaliser far from the identity."""
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = build_module(config, D, C).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(3.0)
    normalizer = Normalizer(mean=rng.normal(0, 2, D), std=rng.uniform(0.5, 3.0, D))
    return TrainedFrameModel(module=module, normalizer=normalizer, config=config, n_in=D, n_classes=C)


def _features(lengths=LENGTHS, seed=1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, 2, (T, D)) + rng.normal(0, 2, D)).astype(np.float32) for T in lengths]


@pytest.fixture(scope="module", params=list(CONFIGS))
def engines(request, tmp_path_factory):
    """(name, torch model, ONNX model) of every configuration."""
    trained = _random_model(CONFIGS[request.param])
    path = export_onnx(trained, tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    return request.param, trained, OnnxFrameModel(path)


def _assert_close(reference: list, got: list, tol: float = TOL) -> float:
    """Shapes, dtype, values within ``tol``, and equal argmax wherever the top two classes
    are further apart than the engines can differ. Returns the max abs difference."""
    assert [r.shape for r in reference] == [g.shape for g in got]
    assert all(g.dtype == np.float32 for g in got)
    worst = max((float(np.abs(r - g).max()) for r, g in zip(reference, got) if r.size), default=0.0)
    assert worst < tol
    ref, out = np.concatenate(reference), np.concatenate(got)
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * tol
    assert clear.mean() > 0.99 and np.array_equal(ref.argmax(1)[clear], out.argmax(1)[clear])
    return worst


def _stream(engine, x: np.ndarray, cuts) -> tuple[np.ndarray, object]:
    """``engine.step`` over the chunks ``x[cuts[k]:cuts[k+1]]``, carrying the state."""
    state, parts = None, []
    for a, b in zip(cuts[:-1], cuts[1:]):
        post, state = engine.step(x[a:b], state)
        parts.append(post)
    return np.concatenate(parts), state


# --------------------------------------------------------------------------- parity
def test_posteriors_match_torch_at_any_length(engines):
    name, trained, model = engines
    seqs = _features()
    reference = frame_posteriors(trained, seqs)
    assert all(np.array_equal(r, t) for r, t in zip(reference, trained.posteriors(seqs)))
    got = model.posteriors(seqs)
    assert [len(p) for p in got] == list(LENGTHS)
    np.testing.assert_allclose(np.concatenate(got).sum(axis=1), 1.0, atol=1e-5)
    _assert_close(reference, got)
    assert np.concatenate(reference).max() > 0.5  # far from uniform (1/C): the test can tell


def test_properties_describe_the_model(engines):
    name, trained, model = engines
    cfg = trained.config
    assert (model.kind, model.n_in, model.n_classes) == (cfg.kind, D, C)
    assert model.bidirectional == cfg.bidirectional
    assert model.cell == (cfg.cell if cfg.kind == "lstm" else None)
    widths = tuple(h // 2 if cfg.bidirectional else h for h in cfg.hidden) if cfg.kind == "lstm" else ()
    assert model.state_sizes == widths
    assert model.metadata["config"] == cfg.to_dict()


@pytest.mark.parametrize("name", STREAMING)
def test_step_over_uneven_chunks_equals_the_whole_sequence(name, tmp_path):
    trained = _random_model(CONFIGS[name])
    model = OnnxFrameModel(export_onnx(trained, tmp_path / "m.onnx"))
    x = _features((1000,))[0]
    whole = frame_posteriors(trained, [x])[0]
    cuts = [0, 1, 4, 4, 5, 42, 43, 500, 1000]  # includes an empty chunk and single frames
    by_torch, torch_state = _stream(trained, x, cuts)
    by_onnx, onnx_state = _stream(model, x, cuts)
    _assert_close([whole], [by_torch])
    _assert_close([whole], [by_onnx])
    if trained.config.kind == "dnn":
        assert torch_state is None and onnx_state is None
        return
    assert [tuple(a.shape for a in pair) for pair in onnx_state] == [((1, H), (1, H)) for H in model.state_sizes]
    for pair_t, pair_o in zip(torch_state, onnx_state):
        for a, b in zip(pair_t, pair_o):  # the cell state is unbounded: a relative tolerance too
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=TOL)
    # The states are interchangeable: start in one engine, continue in the other.
    head, state = trained.step(x[:300])
    tail, _ = model.step(x[300:], state)
    _assert_close([whole], [np.concatenate([head, tail])])


def test_bidirectional_needs_whole_sequences(tmp_path):
    trained = _random_model(CONFIGS["lstm-bidirectional"])
    model = OnnxFrameModel(export_onnx(trained, tmp_path / "bi.onnx"))
    x = _features((10,))[0]
    for engine in (trained, model):
        with pytest.raises(ValueError, match="bidirectional"):
            engine.step(x)


def test_wrong_frames_or_state_are_refused(tmp_path):
    trained = _random_model(CONFIGS["peephole-2layers"])
    model = OnnxFrameModel(export_onnx(trained, tmp_path / "p.onnx"))
    for engine in (trained, model):
        with pytest.raises(ValueError, match=f"\\(T, {D}\\)"):
            engine.step(np.zeros((5, D + 1), np.float32))
        with pytest.raises(ValueError):
            engine.step(np.zeros((5, D), np.float32), state=[(np.zeros((1, 12)), np.zeros((1, 12)))])
    with pytest.raises(ValueError):
        model.posteriors([np.zeros(D, np.float32)])


def test_threads_do_not_change_the_result(tmp_path):
    trained = _random_model(CONFIGS["lstm-2layers"])
    path = export_onnx(trained, tmp_path / "m.onnx")
    seqs = _features((300,))
    one, two = OnnxFrameModel(path).posteriors(seqs), OnnxFrameModel(path, threads=2).posteriors(seqs)
    _assert_close(one, two, tol=1e-6)


# --------------------------------------------------------------------------- the file
def test_export_is_deterministic(tmp_path):
    trained = _random_model(CONFIGS["peephole-2layers"])
    a = export_onnx(trained, tmp_path / "a.onnx").read_bytes()
    b = export_onnx(trained, tmp_path / "sub" / "b.onnx").read_bytes()
    reloaded = TrainedFrameModel.from_state(trained.state_arrays(), trained.metadata(), device="cpu")
    c = export_onnx(reloaded, tmp_path / "c.onnx").read_bytes()
    assert a == b == c
    d = export_onnx(_random_model(CONFIGS["peephole-2layers"], seed=1), tmp_path / "d.onnx").read_bytes()
    assert d != a


NO_TORCH = """
import json, sys
import numpy as np
from genreseg.onnx_engine import OnnxFrameModel
out = {}
for path in sys.argv[1:]:
    model = OnnxFrameModel(path)
    x = np.ones((9, model.n_in), np.float32)
    post = model.posteriors([x])[0]
    if not model.bidirectional:
        post, state = model.step(x)
        post, state = model.step(x, state)
    out[model.kind] = post.shape
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn", "scipy", "onnx"))
print(json.dumps({"shapes": out, "heavy": heavy}))
"""


def test_runner_imports_neither_torch_nor_sklearn(tmp_path):
    paths = [str(export_onnx(_random_model(CONFIGS[n]), tmp_path / f"{n}.onnx"))
             for n in ("dnn-sigmoid", "peephole-2layers", "lstm-bidirectional")]
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *paths], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["shapes"] == {"dnn": [9, C], "lstm": [9, C]}


def _retag(src, dst, **changes):
    """Copy an exported file with some of its genreseg metadata replaced (JSON values)."""
    model = onnx.load(str(src))
    for prop in model.metadata_props:
        key = prop.key.removeprefix("genreseg.")
        if key in changes:
            prop.value = json.dumps(changes[key])
    onnx.save(model, str(dst))
    return dst


def _assert_model_error(path, match, **kwargs):
    with pytest.raises(ModelError, match=match) as err:
        OnnxFrameModel(path, **kwargs)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_bad_files_raise_model_errors_naming_the_file(tmp_path):
    good = export_onnx(_random_model(CONFIGS["lstm-2layers"]), tmp_path / "good.onnx")
    _assert_model_error(tmp_path / "missing.onnx", "no such")
    (tmp_path / "junk.onnx").write_bytes(b"this is not a protobuf \x00\x01\x02")
    _assert_model_error(tmp_path / "junk.onnx", "not a loadable ONNX model")
    _assert_model_error(tmp_path, "no such")  # a folder

    plain = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["frames"], ["posteriors"])], "plain",
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["T", D])],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, ["T", D])]),
        opset_imports=[helper.make_opsetid("", 17)])
    plain.ir_version = 8
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    _assert_model_error(tmp_path / "plain.onnx", "without genreseg metadata")

    _assert_model_error(_retag(good, tmp_path / "n_in.onnx", n_in=D + 1), "metadata does not match the graph")
    _assert_model_error(_retag(good, tmp_path / "classes.onnx", n_classes=C + 2), "does not match the graph")
    _assert_model_error(_retag(good, tmp_path / "layers.onnx", state_sizes=[12], hidden=[12]), "does not match")
    _assert_model_error(_retag(good, tmp_path / "cell.onnx", cell="gru"), "inconsistent LSTM")
    _assert_model_error(_retag(good, tmp_path / "kind.onnx", kind="svm"), "unknown model kind")
    _assert_model_error(_retag(good, tmp_path / "v.onnx", format_version=99), "format version 99")
    _assert_model_error(good, "expected 749", expect={"n_in": 749})
    assert OnnxFrameModel(good, expect={"n_in": D, "kind": "lstm"}).n_in == D


# --------------------------------------------------------------------------- real features
REAL = {
    "dnn": FrameModelConfig(kind="dnn", hidden=(32,), dropout=0.2, epochs=2, batch_size=128, device="cpu"),
    "lstm": FrameModelConfig(kind="lstm", hidden=(16, 8), epochs=2, batch_size=8, device="cpu"),
    "lstm-bidirectional": FrameModelConfig(kind="lstm", hidden=(16,), bidirectional=True, epochs=2,
                                           batch_size=8, device="cpu"),
    "peephole": FrameModelConfig(kind="lstm", hidden=(16,), cell="peephole", epochs=1, batch_size=8,
                                 device="cpu"),
}


@pytest.mark.parametrize("name", list(REAL))
def test_real_features_same_posteriors_and_labels(gtzan_features, name, tmp_path):
    seqs, labels = gtzan_features.sequences, np.asarray(gtzan_features.labels)
    n_classes = len(gtzan_features.label_names)
    train = np.arange(0, len(seqs), 3)  # a third of the clips, every genre
    trained = train_frame_model([seqs[i] for i in train], labels[train], n_classes, REAL[name], progress=False)
    model = OnnxFrameModel(export_onnx(trained, tmp_path / f"{name}.onnx"))
    _assert_close(frame_posteriors(trained, seqs), model.posteriors(seqs))
    if model.bidirectional:
        return
    # A "10-minute file": 20 clips end to end (~1600 frames), streamed in uneven chunks.
    long = np.concatenate(seqs[:20])
    whole = trained.posteriors([long])[0]
    cuts = [0, 3, 100, 101, 977, len(long)]
    _assert_close([whole], [_stream(model, long, cuts)[0]])
    _assert_close([whole], [_stream(trained, long, cuts)[0]])
