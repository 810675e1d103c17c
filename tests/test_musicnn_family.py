"""The musicnn feature family in the paper's pipeline, and the pretrained taggers.

Frames: the streamed musicnn frames equal a whole-signal computation written here
from the definition (resample, centred log-mel, one mid-end pass, back end on each
frame's window), whatever the block sizes; ``both`` is the two families side by side.
Commands: extract, info, train, evaluate, predict, segment, serve and reproduce run on
each family; a model refuses a store of another family; ``predict msd|mtt`` answers
with no training.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import GTZAN, gtzan_clip, requires_gtzan

pytestmark = requires_gtzan


def _signal(path, seconds=None):
    from genreseg.audio import load_audio

    x = load_audio(path)
    return x if seconds is None else x[: int(seconds * 22050)]


def _reference_frames(signal_22k, config):
    """musicnn frames of a whole signal, from the definition, without streaming."""
    import soxr
    import torch

    from genreseg.features.musicnn.frames import MEL_RATE
    from genreseg.features.musicnn.mel import log_mel
    from genreseg.features.musicnn.model import load_musicnn

    model = load_musicnn(config.musicnn_model)
    x16 = soxr.resample(signal_22k, 22050, 16000, quality="HQ").astype(np.float32)
    mel = log_mel(x16)
    with torch.inference_mode():
        mid = model.midend(torch.from_numpy(mel)[None])[0]
    n = -(-len(signal_22k) // config.hop)
    window = round(config.musicnn_window_s * MEL_RATE)
    out = []
    for m in range(n):
        centre = round(m * config.hop / 22050 * MEL_RATE)
        start, stop = max(0, centre - window // 2), min(len(mel), centre - window // 2 + window)
        with torch.inference_mode():
            logits, pen = model.backend(mid[start:stop][None])
        out.append({"penultimate": pen[0], "taggram": torch.sigmoid(logits)[0],
                    "midend": mid[start:stop].mean(0)}[config.musicnn_output].numpy())
    return np.stack(out)


@pytest.mark.parametrize("output", ["penultimate", "taggram", "midend"])
def test_streamed_frames_equal_the_whole_signal_definition(output):
    from genreseg.features import FeatureConfig, iter_features

    config = FeatureConfig(family="musicnn", musicnn_output=output)
    x = _signal(gtzan_clip("jazz"), 20.0)
    expected = _reference_frames(x, config)
    for block in (len(x), 4096, 77777):  # one block, many small ones, odd sizes
        blocks = [x[i:i + block] for i in range(0, len(x), block)]
        got = np.concatenate(list(iter_features(blocks, config)))
        assert got.shape == expected.shape == (-(-len(x) // config.hop), {"penultimate": 200, "taggram": 50,
                                                                           "midend": 753}[output])
        # soxr's streaming resampler equals the whole-signal one to float rounding; the mel's
        # float16 quantisation can flip a rare value, hence not bit-equality.
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


@pytest.mark.parametrize("window_s, output", [(3.0, "penultimate"), (0.2, "midend")])
def test_long_stream_chunks_join_exactly(window_s, output):
    """Past one mid-end chunk (4096 mel frames = 66 s) the chunk joins must not show, also
    with windows shorter than the hop (the stream then skips mid-end between frames)."""
    from genreseg.features import FeatureConfig, iter_features

    config = FeatureConfig(family="musicnn", musicnn_window_s=window_s, musicnn_output=output)
    x = np.concatenate([_signal(gtzan_clip(g)) for g in ("rock", "classical", "disco")])  # 90 s: two chunks
    got = np.concatenate(list(iter_features([x[i:i + 50000] for i in range(0, len(x), 50000)], config)))
    np.testing.assert_allclose(got, _reference_frames(x, config), rtol=1e-3, atol=1e-3)


def test_both_is_scattering_and_musicnn_side_by_side():
    from genreseg.features import FeatureConfig, compute_features

    x = _signal(gtzan_clip("blues"), 15.0)
    both = compute_features(x, 22050, FeatureConfig(family="both"))
    scat = compute_features(x, 22050, FeatureConfig())
    mus = compute_features(x, 22050, FeatureConfig(family="musicnn"))
    assert both.data.shape == (scat.n_frames, scat.data.shape[1] + 200)
    np.testing.assert_allclose(both.data[:, :scat.data.shape[1]], scat.data, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(both.data[:, scat.data.shape[1]:], mus.data, rtol=1e-5, atol=1e-5)
    assert list(both.channels["order"][-200:]) == [-1] * 200 and set(both.channels["order"][:-200]) <= {1, 2}


def test_family_hashes():
    from genreseg.features import FeatureConfig

    scattering = FeatureConfig()
    # Families and musicnn settings that do not apply leave the scattering key alone ...
    assert FeatureConfig(musicnn_output="taggram").hash == scattering.hash
    assert "family" not in scattering.feature_dict()
    # ... and name distinct features otherwise.
    hashes = {FeatureConfig(family=f, musicnn_model=m, musicnn_output=o).hash
              for f in ("musicnn", "both") for m in ("MSD_musicnn", "MTT_musicnn")
              for o in ("penultimate", "taggram")}
    assert len(hashes) == 8 and scattering.hash not in hashes
    # Scattering settings do not enter a musicnn key.
    assert FeatureConfig(family="musicnn", Q1=4).hash == FeatureConfig(family="musicnn").hash
    assert FeatureConfig(family="musicnn", musicnn_window_s=3).hash == FeatureConfig(family="musicnn").hash
    with pytest.raises(ValueError, match="family"):
        FeatureConfig(family="mfcc")


# --------------------------------------------------------------------------- the taggers
@pytest.mark.parametrize("name, clip, expected", [("mtt", ("classical", 0), "classical"),
                                                   ("msd", ("metal", 0), {"metal", "heavy metal", "hard rock"})])
def test_pretrained_tagger_names_an_obvious_genre(name, clip, expected):
    from genreseg.pretrained import PretrainedTagger

    pred = PretrainedTagger(name).predict_files([gtzan_clip(*clip)], timeline=True)[0]
    assert pred.error is None
    assert pred.genre in (expected if isinstance(expected, set) else {expected})
    assert abs(sum(pred.probabilities.values()) - 1) < 1e-6 and len(pred.tags) == 50
    assert pred.frame_posteriors.shape == (len(pred.frame_times), len(pred.probabilities))


def test_cli_predict_msd_needs_no_training(capsys):
    from genreseg.cli import main
    from genreseg.pretrained import MSD_GENRES

    paths = [gtzan_clip("hiphop"), gtzan_clip("country")]
    assert main(["predict", "msd", *map(str, paths), "--format", "json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert [a["path"] for a in answers] == [str(p) for p in paths]
    assert all(a["genre"] in MSD_GENRES and len(a["tags"]) == 50 for a in answers)
    assert answers[0]["genre"] != answers[1]["genre"] or answers[0]["tags"] != answers[1]["tags"]


# --------------------------------------------------------------------------- every command on each family
@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """3 genres x 4 real clips, as a folder per label."""
    root = tmp_path_factory.mktemp("small") / "data"
    for genre in ("classical", "metal", "hiphop"):
        (root / genre).mkdir(parents=True)
        for i in range(4):
            (root / genre / f"{genre}{i}.wav").symlink_to(gtzan_clip(genre, i))
    return root


@pytest.mark.parametrize("family", ["musicnn", "both"])
def test_every_command_runs_on_the_family(family, small_data, tmp_path, capsys):
    from fastapi.testclient import TestClient

    from genreseg.cli import main
    from genreseg.service import ServeConfig, create_app

    store, model = tmp_path / "store", tmp_path / "model"
    assert main(["extract", str(small_data), "--out", str(store), "--features", family, "--workers", "0",
                 "--quiet"]) == 0
    assert main(["info", str(store)]) == 0
    width = {"musicnn": 200, "both": 749 + 200}[family]
    assert f"features       {width} per frame: {family if family == 'musicnn' else 'scattering'}" in \
        capsys.readouterr().out
    assert main(["train", str(store), "--out", str(model), "--model", "dnn", "--hidden", "32", "--epochs", "4",
                 "--device", "cpu", "--quiet"]) == 0
    assert json.loads((model / "model.json").read_text())["feature_config"]["family"] == family
    capsys.readouterr()
    assert main(["evaluate", str(model), str(store), "--include-training", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["seg_acc"] >= 0.9  # its own 12 training clips, 3 distinct genres
    clip = small_data / "metal" / "metal0.wav"
    assert main(["predict", str(model), str(clip), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["genre"] == "metal"
    assert main(["segment", str(model), str(clip), "--format", "json", "--quiet"]) == 0
    segments = json.loads(capsys.readouterr().out)
    assert segments and segments[0]["segments"][0]["genre"] == "metal"
    with TestClient(create_app(str(model), ServeConfig(tmp_dir=str(tmp_path)))) as client:
        assert client.get("/model").json()["feature_config"]["family"] == family
        answer = client.post("/predict", files={"file": ("metal0.wav", clip.read_bytes(), "audio/wav")}).json()
        assert answer["genre"] == "metal" and answer["timeline"]["n_frames"] == 81
    results = tmp_path / "results"
    assert main(["reproduce", "--data", str(small_data), "--out", str(results), "--features", family,
                 "--folds", "2", "--epochs", "1", "--workers", "0", "--no-baselines"]) == 0
    doc = json.loads((results / "results.json").read_text())
    assert doc["configs"]["feature"]["family"] == family and (results / f"store-{family}" / "store.json").exists()
    assert doc["aggregates"]["lstm-512"]["seg_acc"]["n"] == 2


def test_a_model_refuses_a_store_of_another_family(small_data, tmp_path, capsys):
    from genreseg.cli import main

    for family in ("scattering", "musicnn"):
        assert main(["extract", str(small_data), "--out", str(tmp_path / family), "--features", family,
                     "--workers", "0", "--quiet"]) == 0
    assert main(["train", str(tmp_path / "musicnn"), "--out", str(tmp_path / "model"), "--model", "dnn",
                 "--hidden", "8", "--epochs", "1", "--device", "cpu", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "model"), str(tmp_path / "scattering")]) == 2
    err = capsys.readouterr().err
    assert "holds scattering (J=14, Q=(8,1)) features, but the model was trained on musicnn" in err
    assert "--features musicnn" in err
    # and a store keeps its family: extracting other features into it is refused in one line
    assert main(["extract", str(small_data), "--out", str(tmp_path / "musicnn"), "--features", "both",
                 "--workers", "0", "--quiet"]) == 2
    assert "use another store directory for another family" in capsys.readouterr().err
    # a tagger named for scattering frames is refused, not silently ignored
    assert main(["extract", str(small_data), "--out", str(tmp_path / "scattering"), "--musicnn-model",
                 "MTT_musicnn", "--workers", "0", "--quiet"]) == 2
    assert "--musicnn-model applies to musicnn frames" in capsys.readouterr().err


def test_pretrained_tagger_segments_and_serves(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from genreseg.cli import main
    from genreseg.service import ServeConfig, create_app

    clip = gtzan_clip("classical", 1)
    assert main(["segment", "mtt", str(clip), "--format", "json", "--quiet"]) == 0
    [timeline] = json.loads(capsys.readouterr().out)
    assert [s["genre"] for s in timeline["segments"]] == ["classical"]
    with TestClient(create_app("mtt", ServeConfig(tmp_dir=str(tmp_path)))) as client:
        about = client.get("/model").json()
        assert about["pretrained"] == "MTT_musicnn" and "classical" in about["labels"]
        answer = client.post("/predict", files={"file": (clip.name, clip.read_bytes(), "audio/wav")}).json()
    assert answer["genre"] == "classical" and answer["tags"]["classical"] > 0.5
    assert answer["segments"][0]["genre"] == "classical"
