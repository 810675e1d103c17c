"""GenreClassifier and the train / evaluate / predict CLI on real gtzan_mini features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import gtzan_clip
from genreseg.classifier import GenreClassifier, make_frame_config
from genreseg.cli import main as cli_main
from genreseg.errors import ModelError
from genreseg.features import FeatureConfig
from genreseg.segments import SegmentConfig
from genreseg.splits import kfold_splits

# Small but real: enough to be far above chance (10 %) on held-out clips in seconds.
FAST_FRAME = dict(hidden=(48,), epochs=8)
FAST_SEGMENT = SegmentConfig(inner_folds=2, cv_folds=3, C_grid=(1.0, 10.0), gamma_grid=(0.5, 1.0))


@pytest.fixture(scope="module")
def split(gtzan_features):
    train_idx, test_idx = kfold_splits([r["label"] for r in gtzan_features.rows], 5, seed=0)[0]
    return gtzan_features.subset(train_idx), gtzan_features.subset(test_idx)


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    frame = make_frame_config("lstm", seed=0, device="cpu", **FAST_FRAME)
    return GenreClassifier(frame, FAST_SEGMENT).fit(train)


def test_held_out_accuracy_well_above_chance(fitted, split):
    _, test = split
    result = fitted.evaluate(test)
    assert result.n_tracks == 20
    # measured on this split: frame ~0.7, seg/lseg/fseg 0.7-0.85; chance is 0.1
    assert result.frame_acc > 0.45
    assert result.seg_acc > 0.5
    assert result.fseg_acc > 0.5
    assert np.asarray(result.confusion).sum() == 20
    proba = fitted.predict_proba(test.sequences)
    assert proba.shape == (20, 10) and np.allclose(proba.sum(1), 1, atol=1e-6)
    # predict is the fused classifier's decision, the one FSeg_acc scores, and its label names
    pred = fitted.predict(test.sequences)
    assert pred.tolist() == [test.label_names[i] for i in result.predictions["fseg"]]
    assert pred.tolist() == [fitted.label_names_[i] for i in proba.argmax(axis=1)]
    assert fitted.score(test) == pytest.approx(result.fseg_acc)


def test_save_load_gives_identical_predictions(fitted, split, tmp_path):
    _, test = split
    fitted.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["feature_hash"] == FeatureConfig().hash and meta["label_names"] == test.label_names
    assert "torch" in meta["versions"] and meta["training"]["n_tracks"] == 80
    loaded = GenreClassifier.load(tmp_path / "m")
    assert np.array_equal(loaded.predict_proba(test.sequences), fitted.predict_proba(test.sequences))
    for a, b in zip(loaded.predict_frames(test.sequences), fitted.predict_frames(test.sequences)):
        assert np.array_equal(a, b)


def test_tampered_and_mismatched_models_fail_clearly(fitted, split, tmp_path):
    _, test = split
    d = fitted.save(tmp_path / "m")
    weights = (d / "weights.safetensors").read_bytes()
    flipped = bytearray(weights)
    flipped[-10] ^= 0xFF
    (d / "weights.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(ModelError, match="checksum mismatch"):
        GenreClassifier.load(d)
    (d / "weights.safetensors").write_bytes(weights)

    meta = json.loads((d / "model.json").read_text())
    meta["feature_config"]["J"] = 13
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="recorded hash"):
        GenreClassifier.load(d)

    (d / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        GenreClassifier.load(d)
    with pytest.raises(ModelError, match="not a genreseg model"):
        GenreClassifier.load(tmp_path / "empty")

    other = test.config.replace(J=13)
    with pytest.raises(ModelError, match="does not match the model"):
        fitted.check_features(other, where="store X")
    with pytest.raises(ModelError, match="expects"):
        fitted.check_features(test.config, n_features=100, where="store X")


def test_predict_files_real_and_bad(fitted, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    stereo = tmp_path / "stereo44k.flac"
    import soxr

    x, _ = sf.read(gtzan_clip("classical", 1), dtype="float32")
    y = soxr.resample(x, 22050, 44100)
    sf.write(stereo, np.stack([y, y], 1), 44100)
    preds = fitted.predict_files([gtzan_clip("classical", 1), bad, stereo], timeline=True)
    assert preds[0].error is None and preds[0].genre in fitted.label_names_
    assert abs(sum(preds[0].probabilities.values()) - 1) < 1e-6
    assert preds[0].frame_posteriors.shape == (len(preds[0].frame_times), 10)
    assert preds[1].genre is None and "bad.wav: not audio or corrupt" in preds[1].error
    # the same music stored differently gets the same answer
    assert preds[2].genre == preds[0].genre


def test_file_answers_equal_the_batch_path_from_one_decode(fitted, monkeypatch):
    """predict_files and segment stream the file once; their numbers equal the batch API's."""
    import genreseg.audio
    from genreseg.features import compute_features_from_file
    from genreseg.pipeline import analyse_file
    from genreseg.timeline import TimelineConfig

    path = gtzan_clip("rock", 2)
    feats = compute_features_from_file(path, fitted.feature_config_).data
    opened, real = [], genreseg.audio.open_decoder
    monkeypatch.setattr(genreseg.audio, "open_decoder", lambda p, *a, **k: opened.append(p) or real(p, *a, **k))
    result = analyse_file(fitted, path, segments=TimelineConfig())
    assert len(opened) == 1
    np.testing.assert_allclose(list(result.probabilities.values()), fitted.predict_proba([feats])[0], atol=1e-6)
    np.testing.assert_allclose(result.frame_posteriors, fitted.predict_frames([feats])[0], atol=1e-5)
    assert result.genre == fitted.predict([feats])[0]
    timeline = fitted.segment(path)
    assert len(opened) == 2
    assert [s.to_dict() for s in timeline.segments] == [s.to_dict() for s in result.segments]
    # the timeline's LSTM restarts on windows: its posteriors are not the whole-track ones
    assert result.timeline_posteriors.shape == result.frame_posteriors.shape
    assert not np.allclose(result.timeline_posteriors, result.frame_posteriors, atol=1e-3)


def test_model_trained_on_a_gpu_loads_and_predicts_on_the_cpu(fitted, split, tmp_path):
    """A model whose saved frame config names CUDA (trained with --device cuda) loads where
    there is none: the weights go to the device of the loading machine."""
    import torch

    _, test = split
    d = fitted.save(tmp_path / "m")
    meta = json.loads((d / "model.json").read_text())
    for m in [meta["frame_model"], *meta["inner_frame_models"]]:
        m["config"]["device"] = "cuda"
    (d / "model.json").write_text(json.dumps(meta))
    loaded = GenreClassifier.load(d)
    assert loaded.frame_config.device == "cuda"  # kept as it was asked for
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(loaded.models_.frame_model.module.parameters()).device.type == expected
    np.testing.assert_allclose(loaded.predict_proba(test.sequences), fitted.predict_proba(test.sequences), atol=1e-5)
    assert loaded.predict_files([gtzan_clip("jazz", 3)])[0].error is None


def test_cli_train_evaluate_predict(gtzan_store, tmp_path, capsys):
    model = tmp_path / "model"
    code = cli_main(["train", str(gtzan_store.root), "--out", str(model), "--model", "dnn", "--hidden", "64",
                     "--epochs", "3", "--fold", "1", "--seed", "1", "--device", "cpu", "--quiet"])
    assert code == 0 and (model / "weights.safetensors").exists()
    capsys.readouterr()
    assert cli_main(["evaluate", str(model), str(gtzan_store.root), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_tracks"] == 20  # only the held-out fold
    # measured: Seg 0.75, FSeg 0.70 with --seed 1 (0.75-0.90 over seeds 1-3); chance is 0.1
    assert result["seg_acc"] >= 0.6 and result["fseg_acc"] >= 0.55, result
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("x")
    (tmp_path / "in" / "broken.mp3").write_bytes(b"\xff\xfb" + bytes(3000))
    (tmp_path / "in" / "clip.wav").symlink_to(gtzan_clip("hiphop", 2))
    code = cli_main(["predict", str(model), str(tmp_path / "in"), "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 1  # one bad file
    assert out.splitlines()[0].startswith("path,genre,blues")
    assert "clip.wav" in out and "broken.mp3" not in out
    assert "broken.mp3: not audio or corrupt" in err  # failed, with the decoder's reason
    assert "notes.txt: not an audio file name (.txt)" in err  # passed over, and said so
