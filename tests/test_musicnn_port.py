"""The PyTorch port of musicnn against the original TensorFlow model, and its fast paths.

Reference: ``tests/data/musicnn_reference.npz``, written by musicnn 0.1.0 itself
(TF 2.15, librosa 0.11, NumPy 1.26) on three 9-s gtzan_mini clips at 16 kHz: the
audio, the float16 mel and the log-mel it fed the model, and per model and clip the
outputs of three 187-frame patches (the mid end of the first).

Tolerances. Taggram, penultimate, logits and mid end: ``rtol=1e-4`` and ``atol = 1e-5 x``
the array's largest magnitude. Both sides are float32 evaluations whose error comes
from sums of up to 3927 products amplified by batch-norm gains of up to ~80: an
element's error follows the magnitudes that enter it, not its own value, so elements
that nearly cancel (penultimate units near 0) cannot meet a purely relative bound.
Measured, TF and the port each differ from a float64 evaluation of the port by
<= 3e-6 of the array's scale (the atol leaves 3x); a structural error (the max/mean
order, torch's BN epsilon) is off by > 1e-2 of the scale.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genreseg.features.musicnn import (
    MSD_TAGS,
    MTT_TAGS,
    PATCH_FRAMES,
    load_musicnn,
    log_mel,
)
from genreseg.features.musicnn.mel import mel_power
from genreseg.features.musicnn.model import FrozenBatchNorm, pool_over_time
from genreseg.features.musicnn.ops import (
    conv_max_over_mel,
    inactive_channels,
    same_padding,
    temporal_max_over_mel,
)

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.npz"
MODELS = ("MSD_musicnn", "MTT_musicnn")


@pytest.fixture(scope="module")
def ref():
    if not REFERENCE.is_file():
        pytest.fail(f"{REFERENCE} is missing: it is part of the repository")
    with np.load(REFERENCE, allow_pickle=False) as data:
        return dict(data)


def _patches(ref, clip):
    mel = ref[f"clip{clip}_logmel"]
    return torch.from_numpy(np.stack([mel[s : s + PATCH_FRAMES] for s in ref[f"clip{clip}_patch_starts"]]))


def _assert_close(actual, expected, what):
    actual = np.asarray(actual, dtype=np.float64)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


# --- (a) parity with TensorFlow -------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_outputs_match_tensorflow(ref, name):
    model = load_musicnn(name)
    for clip in range(len(ref["clips"])):
        with torch.inference_mode():
            out = model(_patches(ref, clip))
        for key in ("taggram", "penultimate", "logits"):
            _assert_close(out[key], ref[f"{name}_clip{clip}_{key}"], f"{name} clip {clip} {key}")
        midend = ref[f"{name}_clip{clip}_midend"]
        _assert_close(out["midend"][: len(midend)], midend, f"{name} clip {clip} midend")
        max_pool, mean_pool = pool_over_time(out["midend"], PATCH_FRAMES, PATCH_FRAMES)
        _assert_close(max_pool[:, 0], ref[f"{name}_clip{clip}_max_pool"], "max_pool")
        _assert_close(mean_pool[:, 0], ref[f"{name}_clip{clip}_mean_pool"], "mean_pool")


def test_labels_match_the_package(ref):
    assert list(MSD_TAGS) == list(ref["labels_MSD"])
    assert list(MTT_TAGS) == list(ref["labels_MTT"])


def test_mel_power_matches_librosa_with_reflect_padding(ref):
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    for signal in (ref["clip0_audio"], rng.standard_normal(5000).astype(np.float32) * 0.1):
        expected = librosa.feature.melspectrogram(
            y=signal, sr=16000, n_fft=512, hop_length=256, n_mels=96, pad_mode="reflect"
        ).T
        # float64 FFT and product here, float32 in librosa: measured <= 4e-7 relative
        np.testing.assert_allclose(mel_power(signal), expected, rtol=2e-6, atol=1e-9 * expected.max())


def test_log_mel_matches_the_package(ref):
    """Equal to the package's log-mel except where float16 rounding flips.

    A flip is allowed only where our float32 mel lies within 1e-6 (relative) of the
    midpoint between two adjacent float16 values -- the reference then rounded to the
    other neighbour. 1e-6 bounds the float32 difference between our STFT and
    librosa's (<= 4e-7 measured); any other difference fails.
    """
    for clip in range(len(ref["clips"])):
        audio, stored_f16 = ref[f"clip{clip}_audio"], ref[f"clip{clip}_mel_f16"]
        mel = mel_power(audio)
        assert mel.shape == stored_f16.shape
        ours = mel.astype(np.float16)
        flips = ours != stored_f16
        assert flips.mean() < 1e-3, f"clip {clip}: {flips.sum()} float16 flips"
        a, b = ours[flips].astype(np.float64), stored_f16[flips].astype(np.float64)
        # the two must be adjacent float16 values ...
        assert np.all(np.nextafter(ours[flips], stored_f16[flips]) == stored_f16[flips])
        # ... and our value (nearly) on the rounding boundary between them
        midpoint = (a + b) / 2
        assert np.all(np.abs(mel[flips] - midpoint) <= 1e-6 * midpoint), f"clip {clip}"
        logmel, expected = log_mel(audio), ref[f"clip{clip}_logmel"]
        assert logmel.dtype == np.float32
        np.testing.assert_allclose(logmel[~flips], expected[~flips], rtol=1e-6, atol=1e-7)
        assert np.all(np.isfinite(logmel))


# --- (b) whole tracks -----------------------------------------------------------------


def test_backend_of_a_patch_equals_forward(ref):
    """The pipeline's frames run the back end on windows of a longer mid end: on a
    patch that is the whole input, that is exactly the tagger's forward pass."""
    model = load_musicnn("MSD_musicnn")
    patches = _patches(ref, 1)
    with torch.inference_mode():
        out = model(patches)
        logits, penultimate = model.backend(out["midend"])
    torch.testing.assert_close(torch.sigmoid(logits), out["taggram"], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(penultimate, out["penultimate"], rtol=1e-6, atol=1e-6)


# --- (c) the details that parity depends on -------------------------------------------


def test_batch_norm_epsilon_is_tensorflows(ref):
    model = load_musicnn("MTT_musicnn")
    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm)]
    assert len(norms) == 11 and all(m.eps == 1e-3 for m in norms)
    torch_default = copy.deepcopy(model)
    for m in torch_default.modules():
        if isinstance(m, FrozenBatchNorm):
            m.eps = 1e-5
    with torch.inference_mode():
        taggram = torch_default(_patches(ref, 0))["taggram"]
    with pytest.raises(AssertionError):
        _assert_close(taggram, ref["MTT_musicnn_clip0_taggram"], "eps 1e-5")


def test_max_and_mean_are_interleaved_per_channel(ref):
    """TF flattens concat([max, mean], axis=2) of (N, 753, 1): max_0, mean_0, max_1, ..."""
    model = load_musicnn("MSD_musicnn")
    with torch.inference_mode():
        max_pool, mean_pool = pool_over_time(model.midend(_patches(ref, 0)), PATCH_FRAMES, PATCH_FRAMES)
        blocks = torch.cat([max_pool[:, 0], mean_pool[:, 0]], dim=-1)  # the wrong order
        hidden = torch.relu(model.dense(model.pool_bn(blocks)))
        wrong = torch.sigmoid(model.output(model.dense_bn(hidden)))
        right = torch.sigmoid(model.head(max_pool[:, 0], mean_pool[:, 0])[0])
    _assert_close(right, ref["MSD_musicnn_clip0_taggram"], "interleaved")
    with pytest.raises(AssertionError):
        _assert_close(wrong, ref["MSD_musicnn_clip0_taggram"], "blocks")


def test_tf_same_padding_puts_the_extra_frame_after():
    assert [same_padding(k) for k in (128, 64, 32, 7)] == [(63, 64), (31, 32), (15, 16), (3, 3)]


# --- the fast paths against a literal port --------------------------------------------


def _bn(norm, x):
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return (x - norm.running_mean) * scale + norm.bias


def _literal_midend(model, x):
    """``models.build_musicnn`` op for op (NCHW convolutions, BN before the max)."""
    h = _bn(model.input_bn, x)[:, None]  # (B, 1, T, 96)
    features = []
    for block in model.timbral:
        z = F.conv2d(F.pad(h, (0, 0, 3, 3)), block.conv.weight, block.conv.bias)
        features.append(_bn(block.bn, torch.relu(z).permute(0, 2, 3, 1)).amax(2))
    for block in model.temporal:
        before, after = same_padding(block.conv.weight.shape[2])
        z = F.conv2d(F.pad(h, (0, 0, before, after)), block.conv.weight, block.conv.bias)
        features.append(_bn(block.bn, torch.relu(z).permute(0, 2, 3, 1)).amax(2))
    layers = [torch.cat(features, -1)]
    current = layers[0]
    for i, block in enumerate(model.mid):
        z = F.conv2d(F.pad(current[:, None], (0, 0, 3, 3)), block.conv.weight, block.conv.bias)
        y = _bn(block.bn, torch.relu(z[..., 0]).transpose(1, 2))
        current = y if i == 0 else y + current
        layers.append(current)
    return torch.cat(layers, -1)


@pytest.mark.parametrize("name", MODELS)
def test_fast_midend_equals_the_literal_port(ref, name):
    """Including loud input, where channels dead on music come alive."""
    model = load_musicnn(name)
    literal = copy.deepcopy(model).double()
    quiet = _patches(ref, 2)[:1]
    loud = quiet * 2.5 + torch.randn(quiet.shape, generator=torch.Generator().manual_seed(0))
    for x in (quiet, loud, quiet[:, :20], quiet[:, :1]):
        with torch.inference_mode():
            fast, slow = model.midend(x), _literal_midend(literal, x.double())
        _assert_close(fast, slow.numpy(), f"{name} {tuple(x.shape)}")


def test_conv_max_over_mel_any_block_and_sign():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 40, 96, generator=gen)
    for kf in (38, 67, 5):
        weight = torch.randn(13, 7, kf, generator=gen)
        sign = torch.where(torch.rand(13, generator=gen) < 0.5, -1.0, 1.0)
        z = F.conv2d(x[:, None].double(), weight[:, None].double())  # (B, C, T, pos)
        expected = torch.where(sign[None, :, None] > 0, z.amax(-1), z.amin(-1)).transpose(1, 2)
        for block in (1, 2, 3, 4, 8):
            got = conv_max_over_mel(x, weight, sign, block=block)
            torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)


def test_temporal_max_over_mel_is_the_plain_convolution():
    gen = torch.Generator().manual_seed(2)
    for n_time in (1, 15, 40):
        x = torch.randn(2, n_time + 127, 96, generator=gen)
        weight = torch.randn(9, 128, generator=gen)
        sign = torch.where(torch.rand(9, generator=gen) < 0.5, -1.0, 1.0)
        z = F.conv2d(x[:, None].double(), weight[:, None, :, None].double())  # (B, C, T, 96)
        expected = torch.where(sign[None, :, None] > 0, z.amax(-1), z.amin(-1)).transpose(1, 2)
        got = temporal_max_over_mel(x, weight, sign)
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)


def test_inactive_channels_are_never_positive():
    gen = torch.Generator().manual_seed(3)
    weight = torch.randn(64, 7, 38, generator=gen)
    bias = torch.linspace(-600, 5, 64)  # the bound is ~ -b + 320 here
    x = torch.rand(1, 50, 96, generator=gen) * 3 - 1
    dead = inactive_channels(weight, bias, x)
    assert 0 < int(dead.sum()) < 64
    z = F.conv2d(x[:, None], weight[:, None], bias)
    assert torch.all(z[:, dead] <= 0)


# --- loading --------------------------------------------------------------------------


def test_load_musicnn_is_cached_frozen_and_checks_the_name():
    model = load_musicnn("MSD_musicnn")
    assert load_musicnn("MSD_musicnn") is model and load_musicnn() is model
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="MTT_musicnn"):
        load_musicnn("MSD_vgg")
