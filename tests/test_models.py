"""Frame classifiers: the peephole cell's equations, padding, seeding, state, real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genreseg.models import (
    DNNFrameClassifier,
    FrameModelConfig,
    LSTMFrameClassifier,
    Normalizer,
    PeepholeLSTM,
    TrainedFrameModel,
    build_module,
    default_preset,
    frame_loss,
    frame_posteriors,
    load_state_arrays,
    paper_preset,
    state_arrays,
    train_frame_model,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------------------- peephole cell
# Hand-set weights of a 2-input, 2-cell layer (float64 so the comparison is tight).
W = {
    "ix": [[0.5, -0.3], [0.2, 0.1]], "im": [[0.1, 0.4], [-0.2, 0.3]], "ic": [0.7, -0.5], "bi": [0.1, -0.1],
    "fx": [[-0.4, 0.6], [0.3, 0.2]], "fm": [[0.2, -0.1], [0.5, 0.1]], "fc": [-0.6, 0.9], "bf": [0.5, 0.3],
    "cx": [[0.8, 0.1], [-0.7, 0.5]], "cm": [[-0.3, 0.2], [0.1, 0.6]], "bc": [0.0, 0.2],
    "ox": [[0.3, 0.3], [0.6, -0.2]], "om": [[0.4, 0.0], [-0.1, -0.5]], "oc": [1.1, -0.8], "bo": [-0.2, 0.1],
}
W = {k: np.array(v, dtype=np.float64) for k, v in W.items()}
X = np.array([[1.0, -0.5], [0.3, 0.8], [-1.2, 0.4], [0.5, 0.5]])


def _reference(x, out_gate_sees_new_cell=True, peepholes=True):
    """The paper's equations written out with separate matrices (not the module's layout)."""
    m = np.zeros(2)
    c = np.zeros(2)
    ms, cs = [], []
    pk = 1.0 if peepholes else 0.0
    for x_t in x:
        i = _sigmoid(W["ix"] @ x_t + W["im"] @ m + pk * W["ic"] * c + W["bi"])
        f = _sigmoid(W["fx"] @ x_t + W["fm"] @ m + pk * W["fc"] * c + W["bf"])
        c_new = f * c + i * np.tanh(W["cx"] @ x_t + W["cm"] @ m + W["bc"])
        c_seen = c_new if out_gate_sees_new_cell else c
        o = _sigmoid(W["ox"] @ x_t + W["om"] @ m + pk * W["oc"] * c_seen + W["bo"])
        m = o * np.tanh(c_new)
        c = c_new
        ms.append(m)
        cs.append(c)
    return np.array(ms), np.array(cs)


def _hand_set_layer() -> PeepholeLSTM:
    layer = PeepholeLSTM(2, 2).double()
    with torch.no_grad():
        layer.weight_x.copy_(torch.from_numpy(np.vstack([W["ix"], W["fx"], W["cx"], W["ox"]])))
        layer.weight_m.copy_(torch.from_numpy(np.vstack([W["im"], W["fm"], W["cm"], W["om"]])))
        layer.bias.copy_(torch.from_numpy(np.concatenate([W["bi"], W["bf"], W["bc"], W["bo"]])))
        layer.peephole_i.copy_(torch.from_numpy(W["ic"]))
        layer.peephole_f.copy_(torch.from_numpy(W["fc"]))
        layer.peephole_o.copy_(torch.from_numpy(W["oc"]))
    return layer


def test_first_step_by_hand():
    # At t=0, m and c are zero: i = σ(W_ix x + b_i) etc. Written out for cell 0 with scalars.
    x0, x1 = X[0]
    i0 = 1 / (1 + np.exp(-(0.5 * x0 - 0.3 * x1 + 0.1)))
    g0 = np.tanh(0.8 * x0 + 0.1 * x1 + 0.0)
    c0 = i0 * g0                                    # f ⊙ c_{-1} vanishes
    o0 = 1 / (1 + np.exp(-(0.3 * x0 + 0.3 * x1 + 1.1 * c0 - 0.2)))   # o sees the new c
    m0 = o0 * np.tanh(c0)
    out, _ = _hand_set_layer()(torch.from_numpy(X[None, :1]))
    assert out[0, 0, 0].item() == pytest.approx(m0, abs=1e-12)


def test_peephole_lstm_follows_the_papers_equations():
    layer = _hand_set_layer()
    out, (m_T, c_T) = layer(torch.from_numpy(X[None]))
    ms, cs = _reference(X)
    np.testing.assert_allclose(out[0].detach().numpy(), ms, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m_T[0].detach().numpy(), ms[-1], atol=1e-12)
    np.testing.assert_allclose(c_T[0].detach().numpy(), cs[-1], atol=1e-12)
    # The test can tell the variants apart: an output gate peeking at c_{t-1}, or no
    # peepholes at all, give measurably different outputs.
    for wrong in (_reference(X, out_gate_sees_new_cell=False)[0], _reference(X, peepholes=False)[0]):
        assert np.abs(wrong - ms).max() > 1e-3


def test_input_and_forget_gates_see_previous_cell():
    # Changing only w_ic / w_fc leaves step 0 alone (c_{-1} = 0) and changes step 1.
    layer = _hand_set_layer()
    base, _ = layer(torch.from_numpy(X[None]))
    with torch.no_grad():
        layer.peephole_i.mul_(-2.0)
        layer.peephole_f.mul_(-2.0)
    moved, _ = layer(torch.from_numpy(X[None]))
    assert torch.allclose(base[0, 0], moved[0, 0], atol=1e-15)
    assert (base[0, 1] - moved[0, 1]).abs().max() > 1e-3


# --------------------------------------------------------------------------- padding
def _modules():
    torch.manual_seed(0)
    return {
        "dnn": DNNFrameClassifier(6, 3, (8, 8), "sigmoid"),
        "torch": LSTMFrameClassifier(6, 3, (8, 5), "torch"),
        "peephole": LSTMFrameClassifier(6, 3, (8, 5), "peephole"),
    }


def _padded_batch(lengths, D=6, garbage=1e3, seed=0):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randn(n, D, generator=g) for n in lengths]
    x = torch.full((len(lengths), max(lengths), D), 0.0)
    x += garbage * torch.randn(x.shape, generator=g)   # the padding is loud garbage
    for b, s in enumerate(seqs):
        x[b, :len(s)] = s
    return seqs, x, torch.tensor(lengths)


@pytest.mark.parametrize("name", ["dnn", "torch", "peephole"])
def test_padding_does_not_change_outputs(name):
    module = _modules()[name].eval()
    seqs, x, lengths = _padded_batch([5, 2, 7, 1])
    with torch.no_grad():
        batched = module(x, lengths)
        for b, s in enumerate(seqs):
            alone = module(s[None], torch.tensor([len(s)]))[0]
            torch.testing.assert_close(batched[b, :len(s)], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["dnn", "torch", "peephole"])
def test_padding_does_not_change_loss_or_gradient(name):
    module = _modules()[name]
    seqs, x, lengths = _padded_batch([5, 2, 7, 1])
    y = torch.tensor([0, 2, 1, 2])
    loss, logits, labels = frame_loss(module, x, lengths, y)
    assert len(labels) == int(lengths.sum())
    grads = torch.autograd.grad(loss, list(module.parameters()))
    total = 0.0
    summed = [torch.zeros_like(p) for p in module.parameters()]
    for b, s in enumerate(seqs):
        l_b, _, _ = frame_loss(module, s[None], torch.tensor([len(s)]), y[b:b + 1])
        total = total + l_b.item()
        for acc, gr in zip(summed, torch.autograd.grad(l_b, list(module.parameters()))):
            acc += gr
    assert loss.item() == pytest.approx(total, rel=1e-5)
    for a, b in zip(grads, summed):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- training
def _toy_data(n_tracks=24, n_classes=3, D=10, seed=0):
    """Tracks of varying length whose frames scatter around a class mean."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1, (n_classes, D))
    labels = np.arange(n_tracks) % n_classes
    seqs = [(means[y] + rng.normal(0, 1.5, (int(rng.integers(5, 15)), D))).astype(np.float32) * 3 + 7
            for y in labels]
    return seqs, labels


TINY = {
    "dnn": FrameModelConfig(kind="dnn", hidden=(16,), dropout=0.2, epochs=3, batch_size=32, device="cpu"),
    "lstm": FrameModelConfig(kind="lstm", hidden=(8,), dropout=0.2, epochs=3, batch_size=4, device="cpu",
                             max_seq_frames=6),
    "peephole": FrameModelConfig(kind="lstm", hidden=(8,), cell="peephole", epochs=2, batch_size=4, device="cpu"),
}


@pytest.mark.parametrize("name", list(TINY))
def test_same_seed_same_weights(name):
    seqs, labels = _toy_data()
    rng_before = torch.random.get_rng_state()
    a = train_frame_model(seqs, labels, 3, TINY[name], progress=False)
    b = train_frame_model(seqs, labels, 3, TINY[name], progress=False)
    c = train_frame_model(seqs, labels, 3, TINY[name].replace(seed=1), progress=False)
    sa, sb, sc = a.state_arrays(), b.state_arrays(), c.state_arrays()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k])
    assert any(not np.array_equal(sa[k], sc[k]) for k in sa if k.startswith("module."))
    assert a.history == {**b.history, "seconds": a.history["seconds"]}
    # The caller's global RNG is left as it was.
    assert torch.equal(torch.random.get_rng_state(), rng_before)


@pytest.mark.parametrize("name", list(TINY))
def test_training_learns_toy_data_and_posteriors_are_distributions(name):
    seqs, labels = _toy_data()
    cfg = TINY[name].replace(epochs=15, dropout=0.0, lr=1e-2)
    model = train_frame_model(seqs, labels, 3, cfg, valid=(seqs[:6], labels[:6]), progress=False)
    h = model.history
    assert len(h["loss"]) == 15 and len(h["valid_frame_acc"]) == 15
    assert h["loss"][-1] < h["loss"][0]
    post = frame_posteriors(model, seqs)
    assert [p.shape for p in post] == [(len(s), 3) for s in seqs]
    for p in post:  # every frame of every track is a distribution
        assert np.all(p >= 0)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    acc = np.mean(np.concatenate([p.argmax(1) == y for p, y in zip(post, labels)]))
    assert acc > 0.8


@pytest.mark.parametrize("name", ["dnn", "peephole"])
def test_posteriors_do_not_depend_on_inference_batching(name):
    seqs, labels = _toy_data()
    model = train_frame_model(seqs, labels, 3, TINY[name], progress=False)
    whole = frame_posteriors(model, seqs)
    for p, q in zip(whole, frame_posteriors(model, seqs, batch_frames=16)):  # ~1 track per batch
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)
    assert frame_posteriors(model, []) == []


def test_summed_loss_lr_equals_mean_loss_lr_times_frames():
    # One full-batch SGD step: lr_sum on the summed loss == lr_sum * N on the mean loss.
    seqs, labels = _toy_data()
    n_frames = sum(len(s) for s in seqs)
    base = FrameModelConfig(kind="dnn", hidden=(16,), epochs=1, batch_size=10_000, optimizer="sgd",
                            device="cpu")
    a = train_frame_model(seqs, labels, 3, base.replace(loss_reduction="sum", lr=1e-4), progress=False)
    b = train_frame_model(seqs, labels, 3, base.replace(loss_reduction="mean", lr=1e-4 * n_frames),
                          progress=False)
    c = train_frame_model(seqs, labels, 3, base.replace(loss_reduction="mean", lr=1e-4), progress=False)
    sa, sb, sc = a.state_arrays(), b.state_arrays(), c.state_arrays()
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], rtol=1e-4, atol=1e-6)
    assert not np.allclose(sa["module.output.weight"], sc["module.output.weight"], atol=1e-6)


def test_state_round_trip_through_safetensors_and_json(tmp_path):
    from safetensors.numpy import load_file, save_file

    seqs, labels = _toy_data()
    for cfg in (TINY["dnn"], TINY["peephole"]):
        model = train_frame_model(seqs, labels, 3, cfg, progress=False)
        save_file(model.state_arrays(), str(tmp_path / "m.safetensors"))
        (tmp_path / "m.json").write_text(json.dumps(model.metadata()))
        loaded = TrainedFrameModel.from_state(load_file(str(tmp_path / "m.safetensors")),
                                              json.loads((tmp_path / "m.json").read_text()))
        assert loaded.config == model.config
        for p, q in zip(frame_posteriors(model, seqs), frame_posteriors(loaded, seqs)):
            np.testing.assert_array_equal(p, q)


def test_build_module_and_load_state_arrays():
    cfg = FrameModelConfig(kind="lstm", hidden=(4, 3), cell="peephole")
    src = build_module(cfg, 5, 2)
    dst = load_state_arrays(build_module(cfg.replace(seed=9), 5, 2), state_arrays(src))
    x = torch.randn(2, 4, 5)
    torch.testing.assert_close(src(x), dst(x))
    with pytest.raises(RuntimeError):
        load_state_arrays(build_module(cfg.replace(hidden=(4,)), 5, 2), state_arrays(src))


def test_normalizer():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(3.0, 2.0, (50, 4)).astype(np.float32) for _ in range(4)]
    for s in seqs:
        s[:, 2] = -13.8155  # a channel pinned at the log floor: zero variance
    norm = Normalizer.fit(seqs)
    z = norm.transform(np.concatenate(seqs))
    np.testing.assert_allclose(z[:, [0, 1, 3]].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, [0, 1, 3]].std(axis=0), 1, atol=1e-4)
    raw_std = np.concatenate(seqs).astype(np.float64).std(axis=0)
    assert raw_std[2] < 1e-5
    assert norm.std[2] == pytest.approx(1e-3 * np.median(raw_std), rel=1e-6)  # floored
    assert np.all(np.isfinite(norm.transform(seqs[0] + 1e-3)))  # off-floor values stay finite
    again = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(again.transform(seqs[0]), norm.transform(seqs[0]))
    np.testing.assert_array_equal(Normalizer.from_arrays(norm.state_arrays()).std, norm.std)


def test_configs():
    p = paper_preset("lstm")
    assert (p.optimizer, p.lr, p.momentum, p.batch_size, p.epochs, p.lr_decay, p.loss_reduction) == \
        ("sgd", 2e-5, 0.8, 60, 100, 0.9, "sum")
    assert paper_preset("dnn").lr == 8e-6 and paper_preset("dnn", (1024, 1024)).hidden == (1024, 1024)
    for cfg in (p, default_preset("dnn"), default_preset("lstm", [256, 256])):
        assert FrameModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError):
        FrameModelConfig(kind="cnn")
    with pytest.raises(ValueError):
        FrameModelConfig.from_dict({"kind": "dnn", "colour": "red"})
    with pytest.raises(ValueError):
        train_frame_model([np.zeros((3, 2))], [5], 3, TINY["dnn"], progress=False)


# --------------------------------------------------------------------------- real data
def _split(features, seed=0):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(features.labels))
    return train_test_split(idx, test_size=0.2, stratify=features.labels, random_state=seed)


# Thresholds: held-out frame accuracy of these small configs on gtzan_mini (10
# classes, 20 test clips) measured over four stratified splits (seeds 0-3):
# DNN 0.72-0.88, LSTM 0.61-0.69; chance is 0.1. Asserted with a wide margin.
REAL = {
    "dnn": (FrameModelConfig(kind="dnn", hidden=(64,), dropout=0.2, epochs=4, batch_size=128, device="cpu"), 0.5),
    "lstm": (FrameModelConfig(kind="lstm", hidden=(32,), epochs=6, batch_size=8, device="cpu"), 0.4),
}


@pytest.mark.parametrize("kind", list(REAL))
def test_real_features_well_above_chance(gtzan_features, kind):
    cfg, threshold = REAL[kind]
    tr, te = _split(gtzan_features)
    seqs = gtzan_features.sequences
    labels = np.asarray(gtzan_features.labels)
    n_classes = len(gtzan_features.label_names)
    model = train_frame_model([seqs[i] for i in tr], labels[tr], n_classes, cfg, progress=False)
    post = frame_posteriors(model, [seqs[i] for i in te])
    frame_acc = np.mean(np.concatenate([p.argmax(1) == labels[i] for p, i in zip(post, te)]))
    assert frame_acc > threshold, f"{kind} held-out frame accuracy {frame_acc:.3f}"
