"""Scattering frame features: shape, metadata, window joins, robustness to how audio is stored."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf

from conftest import gtzan_clip, requires_gtzan
from genreseg.audio import load_audio
from genreseg.features import FeatureConfig, channel_metadata, compute_features, compute_raw
from genreseg.features.backends import KymatioBackend, raw_channel_meta

SR = 22050


# ---------------------------------------------------------------- config
def test_config_hash_is_stable_across_processes():
    code = ("from genreseg.features import FeatureConfig; "
            "print(FeatureConfig(J=13, min_frequency_hz=50.0).hash)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == FeatureConfig(J=13, min_frequency_hz=50.0).hash
    assert len(out) == 16


def test_config_hash_covers_maths_not_execution():
    base = FeatureConfig()
    assert base.hash != base.replace(J=13).hash
    assert base.hash != base.replace(keep_zeroth=True).hash
    assert base.hash != base.replace(log_eps=1e-5).hash
    assert base.hash == base.replace(backend="kymatio" if base.backend == "fast" else "fast").hash
    assert base.hash == base.replace(window_frames=20, context_frames=16).hash
    assert FeatureConfig.from_dict(json.loads(json.dumps(base.to_dict()))) == base


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        FeatureConfig(backend="librosa")
    with pytest.raises(ValueError):
        FeatureConfig(oversampling=14)
    with pytest.raises(ValueError, match="unknown feature config fields"):
        FeatureConfig.from_dict({"J": 14, "hop": 3})


# ---------------------------------------------------------------- metadata
def test_channel_metadata_orders_and_frequencies():
    meta = channel_metadata(FeatureConfig())
    order = meta["order"]
    assert set(np.unique(order)) == {1, 2}
    assert np.all(np.diff(order) >= 0)  # first order, then second
    first = order == 1
    assert np.all((meta["xi1_hz"][first] > 0) & (meta["xi1_hz"][first] < SR / 2))
    assert np.all(np.isnan(meta["xi2_hz"][first]))
    second = order == 2
    # a second-order path's wavelet is lower than its parent's frequency (j2 > j1)
    assert np.all(meta["xi2_hz"][second] < meta["xi1_hz"][second])


def test_channel_count_is_first_order_bands_and_their_children():
    """The default features have exactly 749 columns, derived from kymatio's filter bank
    (not from its scattering metadata, which channel_metadata uses): one per first-order
    band and one per (band, second-order wavelet) pair with ``j2 > j1``."""
    from genreseg.features.filter_bank import ALPHA, R_PSI, SIGMA0
    from genreseg.features.kymatio_compat import kymatio_1d

    cfg = FeatureConfig()
    fb = kymatio_1d("filter_bank")
    xi1, _, j1 = fb.compute_params_filterbank(SIGMA0 / 2**cfg.J, cfg.Q1, ALPHA, R_PSI)
    _, _, j2 = fb.compute_params_filterbank(SIGMA0 / 2**cfg.J, cfg.Q2, ALPHA, R_PSI)
    children = [sum(b > a for b in j2) for a in j1]  # per first-order band n1
    meta = channel_metadata(cfg)
    assert np.sum(meta["order"] == 1) == len(xi1) == 102  # Q1 = 8 per octave, then linear bands
    assert np.sum(meta["order"] == 2) == sum(children) == 647
    assert len(meta["order"]) == len(xi1) + sum(children) == 749
    for n1, n in enumerate(children):  # each band's children, under that band's n1
        assert np.sum((meta["order"] == 2) & (meta["n1"] == n1)) == n, n1
    # keep_zeroth adds exactly the one zeroth-order column, first
    full = channel_metadata(cfg.replace(keep_zeroth=True))
    assert len(full["order"]) == 750 and full["order"][0] == 0 and np.sum(full["order"] == 0) == 1


def test_zeroth_order_and_low_band_selection():
    full = channel_metadata(FeatureConfig(keep_zeroth=True))
    assert full["order"][0] == 0
    cut = channel_metadata(FeatureConfig(min_frequency_hz=50.0))
    default = channel_metadata(FeatureConfig())
    low_first = (default["order"] == 1) & (default["xi1_hz"] < 50.0)
    assert low_first.sum() > 20  # J=14 puts dozens of first-order bands below 50 Hz
    # Exactly the columns whose (parent) band lies at or above 50 Hz remain: the low
    # bands and all their second-order children go, nothing else does.
    above = default["xi1_hz"] >= 50.0
    low_children = (default["order"] == 2) & np.isin(default["n1"], default["n1"][low_first])
    assert np.array_equal(above, ~(low_first | low_children))
    for key in ("order", "n1", "n2", "xi1_hz"):
        np.testing.assert_array_equal(cut[key], default[key][above], err_msg=key)
    assert low_children.sum() > 0 and len(cut["order"]) == len(default["order"]) - low_first.sum() - low_children.sum()


# ---------------------------------------------------------------- real audio
@requires_gtzan
def test_features_of_a_real_clip():
    cfg = FeatureConfig()
    x = load_audio(gtzan_clip("disco", 2))
    feats = compute_features(x, SR, cfg, info={"path": "disco"})
    assert feats.data.shape == (int(np.ceil(len(x) / cfg.hop)), len(channel_metadata(cfg)["order"]))
    assert feats.data.dtype == np.float32 and np.isfinite(feats.data).all()
    assert feats.channels["order"].shape == (feats.data.shape[1],)
    assert np.allclose(feats.times[1], cfg.hop / SR)
    # real music is well above the log floor in the mid bands
    mid = (feats.channels["order"] == 1) & (feats.channels["xi1_hz"] > 200) & (feats.channels["xi1_hz"] < 4000)
    assert feats.data[:, mid].mean() > np.log(cfg.log_eps) + 5


@pytest.fixture(scope="module")
def whole_clip_kymatio():
    """A 655360-sample metal clip and kymatio's whole-track transform of it.

    kymatio pads this length by a multiple of the hop to 2^20, so its frame grid
    coincides with ours (see genreseg.features.framing).
    """
    x = load_audio(gtzan_clip("metal", 1))[:655360]
    cfg = FeatureConfig()
    whole = KymatioBackend(cfg.J, (cfg.Q1, cfg.Q2), len(x), cfg.oversampling)(x[None])[0].T
    return x, whole


def _max_frame_error(got: np.ndarray, ref: np.ndarray, cfg: FeatureConfig) -> dict:
    order = raw_channel_meta(cfg.J, cfg.Q1, cfg.Q2)["order"]
    out = {}
    for o in (1, 2):
        sel = order == o
        rel = np.linalg.norm(got[:, sel] - ref[:, sel], axis=1) / np.linalg.norm(ref[:, sel], axis=1)
        out[o] = float(rel.max())
    return out


@requires_gtzan
def test_window_joins_match_a_whole_track_transform(whole_clip_kymatio):
    """Frames computed in several windows equal kymatio's whole-track transform to 2e-4
    (per frame, relative L2): the context hides the joins."""
    x, whole = whole_clip_kymatio
    cfg = FeatureConfig(window_frames=40, context_frames=12)  # 64-hop windows: 2 joins in 80 frames
    assert cfg.window_frames * cfg.hop < len(x)
    windowed = compute_raw(x, SR, cfg)
    assert windowed.shape == whole.shape
    errs = _max_frame_error(windowed, whole, cfg)
    assert max(errs.values()) < 2e-4, errs


@requires_gtzan
def test_a_clip_in_one_window_is_kymatios_whole_track_transform(whole_clip_kymatio):
    """With the default window a 29.7-s clip is one window laid out exactly as kymatio
    pads the whole track, so only the backend's own error remains (~2e-5)."""
    x, whole = whole_clip_kymatio
    cfg = FeatureConfig()
    got = compute_raw(x, SR, cfg)
    errs = _max_frame_error(got, whole, cfg)
    assert max(errs.values()) < 1e-4, errs


@pytest.mark.parametrize("n", [1, 2, 5, 20, 100])
def test_reflected_window_equals_slicing_a_reflect_padded_signal(n):
    from genreseg.features.framing import reflected_window

    x = np.arange(1, n + 1, dtype=np.float32)
    C, L = 13, 17  # context longer than the shortest signal: reflection repeats
    padded = np.pad(x, (C, C), mode="reflect") if n > 1 else np.full(2 * C + 1, x[0])
    for start in range(-C, n + C - L + 1, 3):
        assert np.array_equal(reflected_window(x, start, L), padded[start + C:start + C + L]), start
    # Part of a longer track held in a buffer: offset and the track's length.
    y = np.arange(100, dtype=np.float32)
    assert np.array_equal(reflected_window(y[40:], 90, 15, n=100, offset=40), np.pad(y, (0, 5), mode="reflect")[90:105])
    with pytest.raises(ValueError, match="buffered"):
        reflected_window(y[40:], 30, 15, n=100, offset=40)


class _WindowIdentity:
    """A stand-in backend: each 'frame' is the window's sample at that frame's time.

    It lets the window layout be checked exactly: frame m of the track must be the
    track's sample m * hop whatever the windows, blocks and lengths.
    """

    def __init__(self, cfg):
        self.cfg = cfg

    def __call__(self, w):
        return w[:, None, ::self.cfg.hop]


@pytest.mark.parametrize("n", [1, 5000, 8 * 4096, 8 * 4096 + 1, 12 * 4096 + 5, 300_001, 1_000_000])
def test_scatter_blocks_lays_out_frames_the_same_for_any_blocks(n):
    from genreseg.features.framing import scatter_blocks

    cfg = FeatureConfig(J=13, oversampling=1, window_frames=8, context_frames=4)  # hop 4096, 16-hop windows
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    backend = _WindowIdentity(cfg)
    whole = scatter_blocks([x], cfg, backend)
    assert whole.shape == (max(1, -(-n // cfg.hop)), 1)
    np.testing.assert_array_equal(whole[:, 0], x[::cfg.hop])
    for block in (1000, 4096, 77_777):
        streamed = scatter_blocks((x[i:i + block] for i in range(0, n, block)), cfg, backend)
        np.testing.assert_array_equal(streamed, whole)


def test_file_features_equal_in_memory_features_and_describe_the_file(tmp_path):
    """The streamed file path gives what decoding whole and compute_features give."""
    from genreseg.features import compute_features_from_file

    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal(44100 * 70)).astype(np.float32)  # 70 s at 44.1 kHz: resampled, 2 windows
    path = tmp_path / "long.wav"
    sf.write(path, np.stack([x, -x[::-1]], 1), 44100, subtype="FLOAT")
    cfg = FeatureConfig()
    streamed = compute_features_from_file(path, cfg, info={"label": "noise"})
    whole = compute_features(load_audio(path, SR, cfg.min_samples), SR, cfg)
    np.testing.assert_array_equal(streamed.data, whole.data)
    assert streamed.info["native_rate"] == 44100 and streamed.info["channels"] == 2
    assert streamed.info["duration"] == pytest.approx(70.0, abs=1e-3)
    assert streamed.info["label"] == "noise" and not streamed.info["silent"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    x = load_audio(gtzan_clip("country", 4))
    return x, compute_features(x, SR, FeatureConfig()).data


@requires_gtzan
@pytest.mark.parametrize("variant", ["flac", "au", "stereo", "44k", "mp3"])
def test_stored_differently_gives_nearly_the_same_features(tmp_path, reference, variant):
    x, ref = reference
    if variant in ("flac", "au"):
        path = tmp_path / f"c.{variant}"
        sf.write(path, x, SR)
    elif variant == "stereo":
        path = tmp_path / "c.wav"
        sf.write(path, np.stack([x, x], 1), SR)
    elif variant == "44k":
        import soxr

        path = tmp_path / "c.wav"
        sf.write(path, soxr.resample(x, SR, 44100), 44100, subtype="FLOAT")
    else:
        path = tmp_path / "c.mp3"
        sf.write(path, x, SR, format="MP3")
    feats = compute_features(load_audio(path), SR, FeatureConfig()).data
    assert len(feats) == len(ref)  # the whole track, in every format (MP3: its LAME header says how long)
    # log-domain differences, on the channels that carry signal (above the floor)
    live = ref.mean(axis=0) > np.log(FeatureConfig().log_eps) + 3
    frame_diff = np.abs(feats[:, live] - ref[:, live]).mean()
    track_diff = np.abs(feats[:, live].mean(0) - ref[:, live].mean(0)).mean()
    tolerance = {"flac": 1e-3, "au": 1e-3, "stereo": 1e-3, "44k": 0.05, "mp3": 0.3}[variant]
    assert frame_diff < tolerance, frame_diff
    assert track_diff < tolerance, track_diff


def test_silence_and_wrong_rate():
    cfg = FeatureConfig()
    feats = compute_features(np.zeros(3 * cfg.T, np.float32), SR, cfg)
    assert np.isfinite(feats.data).all()
    assert np.allclose(feats.data, np.log(cfg.log_eps), atol=1e-3)
    with pytest.raises(ValueError, match="44100 Hz"):
        compute_features(np.zeros(3 * cfg.T, np.float32), 44100, cfg)
    with pytest.raises(ValueError, match="fewer than one analysis window"):
        compute_features(np.zeros(cfg.T - 1, np.float32), SR, cfg)


# ---------------------------------------------------------------- kymatio / SciPy
def test_sph_harm_shim_matches_scipy(monkeypatch):
    import scipy.special

    from genreseg.features.kymatio_compat import ensure_sph_harm

    if not hasattr(scipy.special, "sph_harm_y"):
        pytest.skip("this SciPy predates sph_harm_y")
    original = getattr(scipy.special, "sph_harm", None)  # SciPy's own (< 1.17), if any
    # Returns whether it installed the shim: not when SciPy has sph_harm.
    assert ensure_sph_harm() is (original is None)
    if original is not None:
        assert scipy.special.sph_harm is original  # left alone
    monkeypatch.delattr(scipy.special, "sph_harm", raising=False)
    assert ensure_sph_harm() is True
    shim = scipy.special.sph_harm
    assert shim is not original
    assert ensure_sph_harm() is False and scipy.special.sph_harm is shim  # installed once
    # Legacy order: order m, degree n, azimuth theta, polar phi. m != n and theta != phi,
    # so swapping either pair gives other values.
    m = np.array([0, 1, -2, 3])
    n = np.array([2, 3, 4, 5])
    theta = np.array([0.3, 0.7, 2.5, 4.0])
    phi = np.array([1.1, 0.2, 2.0, 0.9])
    expected = scipy.special.sph_harm_y(n, m, phi, theta)
    np.testing.assert_allclose(shim(m, n, theta, phi), expected, rtol=1e-12)
    assert not np.allclose(scipy.special.sph_harm_y(n, m, theta, phi), expected)
    if original is not None:  # against the legacy function itself
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # SciPy >= 1.15 deprecates it
            legacy = original(m, n, theta, phi)
        np.testing.assert_allclose(shim(m, n, theta, phi), legacy, rtol=1e-12, atol=1e-15)


SIMULATE_SCIPY_117 = "import scipy.special as s; s.__dict__.pop('sph_harm', None); "


def test_kymatio_import_needs_the_shim_when_sph_harm_is_gone():
    """What SciPy >= 1.17 does to kymatio 0.3.0, and that our import path survives it."""
    bare = subprocess.run([sys.executable, "-c", SIMULATE_SCIPY_117 + "import kymatio.torch"],
                          capture_output=True, text=True)
    assert bare.returncode != 0 and "sph_harm" in bare.stderr
    shimmed = subprocess.run(
        [sys.executable, "-c", SIMULATE_SCIPY_117 +
         "from genreseg.features.kymatio_compat import import_scattering1d; print(import_scattering1d().__name__)"],
        capture_output=True, text=True)
    assert shimmed.returncode == 0, shimmed.stderr
    assert "Scattering1D" in shimmed.stdout


