"""Genre timelines: the decoder on hand-checkable posteriors, the writers, and
GenreClassifier.segment / ``genreseg segment`` on real gtzan_mini audio."""

from __future__ import annotations

import csv
import io
import itertools
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import gtzan_clip, requires_gtzan
from genreseg.timeline import (GenreSegment, Timeline, TimelineConfig, decode_segments, frame_path,
                               transition_matrix)
from genreseg.timeline_io import (format_audacity, format_csv, format_json, format_table, plot_timeline,
                                  to_jams)

HOP = 0.5
NAMES = ["blues", "jazz", "rock"]


def posteriors(genres, strength=0.8, n_classes=3):
    """One row per frame: ``strength`` on the given genre, the rest spread evenly."""
    p = np.full((len(genres), n_classes), (1 - strength) / (n_classes - 1))
    p[np.arange(len(genres)), genres] = strength
    return p


def times_of(post):
    return np.arange(len(post)) * HOP


# --------------------------------------------------------------------------- decoder
def test_one_genre_throughout_is_one_segment():
    rng = np.random.default_rng(0)
    post = posteriors([1] * 200, strength=0.6)
    # Flicker: 15 % of frames lean to another genre, so the raw argmax has many segments.
    flick = rng.random(200) < 0.15
    post[flick] = posteriors(rng.choice([0, 2], flick.sum()), strength=0.6)
    assert len(decode_segments(post, times_of(post), NAMES, TimelineConfig(0.0, 0.0))) > 10
    segs = decode_segments(post, times_of(post), NAMES, TimelineConfig(switch_penalty=8, min_duration_s=10),
                           duration_s=100.0)
    assert segs == [GenreSegment(0.0, 100.0, "jazz", pytest.approx(post[:, 1].mean()))]


def test_obvious_switch_gives_one_boundary_at_the_right_frame():
    post = posteriors([0] * 53 + [2] * 47)
    segs = decode_segments(post, times_of(post), NAMES, TimelineConfig(8, 10))
    assert [s.genre for s in segs] == ["blues", "rock"]
    # halfway between frame 52 (26.0 s) and frame 53 (26.5 s); the end is half a hop after the last frame
    assert segs[0].end_s == segs[1].start_s == 26.25
    assert segs[0].start_s == 0.0 and segs[1].end_s == 99 * HOP + HOP / 2
    assert segs[0].confidence == pytest.approx(0.8) and segs[1].confidence == pytest.approx(0.8)


def test_blip_shorter_than_minimum_is_absorbed():
    post = posteriors([0] * 40 + [1] * 8 + [0] * 40)  # a 4-s blip of jazz, confident
    raw = decode_segments(post, times_of(post), NAMES, TimelineConfig(0.0, 0.0))
    assert [s.genre for s in raw] == ["blues", "jazz", "blues"]
    # the blip outweighs two switches of 4 nats (8 frames x log 8 = 16.6 nats) ...
    assert len(decode_segments(post, times_of(post), NAMES, TimelineConfig(4.0, 0.0))) == 3
    # ... but a 10-s minimum would stretch it over 12 frames that favour blues: absorbed
    absorbed = decode_segments(post, times_of(post), NAMES, TimelineConfig(switch_penalty=4.0, min_duration_s=10))
    assert [s.genre for s in absorbed] == ["blues"]
    # ... and one just longer than the minimum survives, even with no switch penalty at all
    kept = decode_segments(post, times_of(post), NAMES, TimelineConfig(switch_penalty=0.0, min_duration_s=3.5))
    assert [(s.genre, s.start_s, s.end_s) for s in kept] == [("blues", 0, 19.75), ("jazz", 19.75, 23.75),
                                                             ("blues", 23.75, 43.75)]


@pytest.mark.parametrize("penalty, switches", [(4.0, True), (4.5, False)])
def test_switch_penalty_is_nats_of_evidence(penalty, switches):
    # Four last frames favour jazz by log(0.75 / 0.25) = 1.0986 nats each: 4.39 in all.
    post = np.array([[0.75, 0.25, 0.0]] * 20 + [[0.25, 0.75, 0.0]] * 4)
    segs = decode_segments(post, times_of(post), NAMES, TimelineConfig(penalty, 0.0))
    assert [s.genre for s in segs] == (["blues", "jazz"] if switches else ["blues"])


def _brute_force(post, D, penalty):
    """Best path by enumeration: sum of log posteriors minus ``penalty`` per change,
    every run but the last at least D frames long, the first included."""
    T, C = post.shape
    logp = np.log(np.clip(post, 1e-6, 1))
    best, best_path = -np.inf, None
    for path in itertools.product(range(C), repeat=T):
        path = np.array(path)
        starts = np.flatnonzero(np.r_[True, path[1:] != path[:-1]])
        runs = np.diff(np.r_[starts, T])
        if (runs[:-1] < D).any():
            continue
        value = logp[np.arange(T), path].sum() - penalty * (len(starts) - 1)
        if value > best + 1e-9:
            best, best_path = value, path
    return best_path


@pytest.mark.parametrize("D, penalty, seed", [(1, 0.0, 0), (1, 1.5, 1), (2, 0.5, 2), (3, 1.0, 3), (3, 0.0, 4)])
def test_viterbi_matches_brute_force(D, penalty, seed):
    post = np.random.default_rng(seed).dirichlet([0.6] * 3, size=8)
    assert np.array_equal(frame_path(post, D, penalty), _brute_force(post, D, penalty))


@pytest.mark.parametrize("D, penalty, seed", [(1, 0.0, 0), (1, 3.0, 1), (4, 1.0, 2), (7, 0.0, 3), (7, 4.0, 4),
                                              (30, 2.0, 5)])
def test_viterbi_matches_librosa_on_the_expanded_hmm(D, penalty, seed):
    import librosa

    post = np.random.default_rng(seed).dirichlet([0.5] * 4, size=90)
    prob = np.vstack([np.repeat(np.clip(post.T, 1e-6, 1), D, axis=0), np.zeros((1, 90))])
    p_init = np.zeros(4 * D + 1)
    p_init[:-1:D] = 0.25
    states = librosa.sequence.viterbi(prob, transition_matrix(4, D, penalty), p_init=p_init)
    expected = np.asarray(states) // D
    got = frame_path(post, D, penalty)
    assert np.array_equal(got, expected)
    assert len(np.flatnonzero(np.diff(got))) > 0  # not a trivial one-genre path


def test_transition_matrix_is_stochastic_with_the_stated_ratio():
    A = transition_matrix(3, 4, 2.0)
    assert A.shape == (13, 13) and np.allclose(A.sum(1), 1)
    z = 1 + 2 * np.exp(-2.0)
    # inside a chain: move on, paying the same 1/Z as staying in a genre does
    assert A[0, 1] == A[1, 2] == A[2, 3] == A[3, 3] == pytest.approx(1 / z)
    assert A[3, 3] / A[3, 4] == pytest.approx(np.exp(2.0)) and A[3, 4] == A[3, 8]
    assert A[-1, -1] == 1 and A[3, -1] == 0  # the null state absorbs only the chains' spare mass


def test_config_round_trip_and_validation():
    c = TimelineConfig(switch_penalty=3.0, min_duration_s=7.5)
    assert TimelineConfig.from_dict(c.to_dict()) == c and c.hash == TimelineConfig.from_dict(c.to_dict()).hash
    assert c.hash != TimelineConfig().hash and len(c.hash) == 16
    assert c.min_frames(0.3715) == 20 and TimelineConfig(min_duration_s=0).min_frames(0.3715) == 1
    with pytest.raises(ValueError, match="unknown timeline config fields"):
        TimelineConfig.from_dict({"switch_penalty": 1.0, "min_duration": 3})
    with pytest.raises(ValueError, match="switch_penalty"):
        TimelineConfig(switch_penalty=-1)
    with pytest.raises(ValueError, match="min_duration_s"):
        TimelineConfig(min_duration_s=float("nan"))


def test_decoder_rejects_bad_input():
    post = posteriors([0] * 10)
    with pytest.raises(ValueError, match="3 posterior columns but 2 label names"):
        decode_segments(post, times_of(post), NAMES[:2])
    with pytest.raises(ValueError, match="times must have shape"):
        decode_segments(post, times_of(post)[:5], NAMES)
    with pytest.raises(ValueError, match="finite probabilities"):
        decode_segments(post * np.nan, times_of(post), NAMES)
    with pytest.raises(ValueError, match="non-empty"):
        decode_segments(np.zeros((0, 3)), np.zeros(0), NAMES)


def test_lstm_chunks_equal_one_pass():
    from genreseg.models import LSTMFrameClassifier

    x = torch.randn(50, 6)
    for cell in ("torch", "peephole"):
        torch.manual_seed(0)
        m = LSTMFrameClassifier(6, 3, hidden=(5, 4), cell=cell).eval()
        with torch.no_grad():
            whole = m(x)
            state, parts = None, []
            for a in range(0, 50, 13):
                out, state = m.forward_chunk(x[a:a + 13], state)
                parts.append(out)
        assert torch.allclose(torch.cat(parts), whole, atol=1e-6), cell


# --------------------------------------------------------------------------- writers
@pytest.fixture
def timeline():
    post = posteriors([0] * 30 + [2] * 50 + [1] * 20)
    config = TimelineConfig(8, 5)
    return Timeline(path="/music/set.flac", duration_s=50.1, times=times_of(post), posteriors=post,
                    label_names=NAMES, segments=decode_segments(post, times_of(post), NAMES, config, 50.1),
                    config=config, info={"frame_model": "lstm"})


def test_jams_validates_and_round_trips(timeline, tmp_path):
    import jams

    jam = to_jams(timeline)
    path = tmp_path / "set.jams"
    jam.save(str(path))  # save() validates against the schema too
    back = jams.load(str(path), validate=True)
    ann = back.search(namespace="segment_open")[0]
    obs = [(o.time, o.duration, o.value) for o in ann.data]
    assert obs == [(0.0, 14.75, "blues"), (14.75, 25.0, "rock"), (39.75, pytest.approx(10.35), "jazz")]
    assert back.file_metadata.duration == 50.1
    assert ann.sandbox["decoder"] == {"switch_penalty": 8.0, "min_duration_s": 5.0, "lstm_window_s": 1.5}


def test_audacity_file_loads_as_three_columns(timeline, tmp_path):
    path = tmp_path / "set.txt"
    path.write_text(format_audacity([timeline]))
    rows = list(csv.reader(path.open(), delimiter="\t"))
    assert [len(r) for r in rows] == [3, 3, 3]
    starts = np.loadtxt(path, delimiter="\t", usecols=(0, 1))
    assert np.allclose(starts, [[0, 14.75], [14.75, 39.75], [39.75, 50.1]])
    assert [r[2] for r in rows] == ["blues", "rock", "jazz"]


def test_csv_json_table(timeline):
    rows = list(csv.DictReader(io.StringIO(format_csv([timeline, timeline]))))
    assert len(rows) == 6 and rows[1] == {"path": "/music/set.flac", "start_s": "14.750", "end_s": "39.750",
                                          "genre": "rock", "confidence": "0.8000"}
    doc = json.loads(format_json([timeline]))
    assert doc[0]["segments"][2] == {"start_s": 39.75, "end_s": 50.1, "genre": "jazz", "confidence": 0.8}
    assert doc[0]["decoder"]["hash"] == timeline.config.hash and doc[0]["frame_model"] == "lstm"
    assert "frames" not in doc[0] and len(json.loads(format_json([timeline], frames=True))[0]["frames"]["times"]) == 100
    table = format_table([timeline])
    assert "  00:14.8 –    00:39.8  rock   0.80\n" in table and "3 segments" in table


def test_png_timeline(timeline, tmp_path):
    from matplotlib.image import imread

    path = plot_timeline(timeline, tmp_path / "plots" / "set.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    h, w, _ = imread(path).shape
    assert w > 800 and h > 300


# --------------------------------------------------------------------------- real audio
@pytest.fixture(scope="module")
def fitted(gtzan_features):
    from genreseg.classifier import GenreClassifier, make_frame_config
    from genreseg.segments import SegmentConfig

    # Small and quick: 3 clips a genre (the mix's two among them), a 32-cell LSTM.
    first = [i for i, r in enumerate(gtzan_features.rows)
             if sum(q["label"] == r["label"] for q in gtzan_features.rows[:i]) < 3]
    frame = make_frame_config("lstm", hidden=(32,), epochs=6, seed=0, device="cpu")
    seg = SegmentConfig(inner_folds=2, cv_folds=2, C_grid=(1.0,), gamma_grid=(1.0,))
    return GenreClassifier(frame, seg).fit(gtzan_features.subset(first))


@pytest.fixture(scope="module")
def mix_path(tmp_path_factory):
    """classical.0 then metal.0 (training clips: a pipeline test, not an accuracy claim), 59.4 s."""
    from genreseg.audio import load_audio

    a, b = load_audio(gtzan_clip("classical", 0)), load_audio(gtzan_clip("metal", 0))
    path = tmp_path_factory.mktemp("mix") / "mix.wav"
    sf.write(path, np.r_[a, b], 22050, subtype="FLOAT")
    return path, len(a) / 22050, (len(a) + len(b)) / 22050


@requires_gtzan
def test_segment_a_real_mix(fitted, mix_path):
    from genreseg.features import compute_features_from_file

    from genreseg.models import iter_frame_posteriors

    path, switch_s, duration = mix_path
    tl = fitted.segment(path)
    assert tl.duration_s == pytest.approx(duration) and tl.posteriors.shape == (len(tl.times), 10)
    # streamed (features window by window) equals the same computation on the whole file's features
    feats = compute_features_from_file(path, fitted.feature_config_).data
    frames = TimelineConfig().window_frames(fitted.feature_config_.hop_seconds)
    windowed = np.concatenate(list(iter_frame_posteriors(fitted.models_.frame_model, [feats], frames)))
    assert np.allclose(tl.posteriors, windowed, atol=1e-5)
    # ... and with lstm_window_s=0 it is the one-pass LSTM of predict_files
    one_pass = fitted.segment(path, TimelineConfig(lstm_window_s=0))
    assert np.allclose(one_pass.posteriors, fitted.predict_frames([feats])[0], atol=1e-5)
    assert [s.genre for s in tl.segments] == ["classical", "metal"]
    assert abs(tl.segments[0].end_s - switch_s) < 3.0
    assert tl.segments[0].start_s == 0 and tl.segments[-1].end_s == pytest.approx(duration)
    assert tl.to_dict()["decoder"] == {**TimelineConfig().to_dict(), "hash": TimelineConfig().hash}


@requires_gtzan
def test_cli_segment_outputs_and_bad_files(fitted, mix_path, tmp_path, capsys):
    import jams

    from genreseg.cli import main

    fitted.save(tmp_path / "model")
    path = mix_path[0]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    code = main(["segment", str(tmp_path / "model"), str(path), str(empty), "--format", "audacity",
                 "--out", str(out), "--plot", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["mix.labels.txt", "mix.png"]
    assert [r.split("\t")[2] for r in (out / "mix.labels.txt").read_text().splitlines()] == ["classical", "metal"]
    assert f"{empty}:" in err and "1 file(s) failed" in err

    assert main(["segment", str(tmp_path / "model"), str(path), "--format", "jams", "--quiet",
                 "--min-duration", "20"]) == 0
    jam = jams.JAMS.loads(capsys.readouterr().out)
    jam.validate()
    assert jam.annotations[0].sandbox["decoder"]["min_duration_s"] == 20.0
    assert main(["segment", str(tmp_path / "model"), str(path), str(path), "--format", "jams"]) == 2
    assert "give --out DIR" in capsys.readouterr().err


@pytest.mark.parametrize("W, chunk", [(8, 13), (8, 104), (5, 3), (60, 17)])
def test_windowed_lstm_posteriors_follow_their_definition(W, chunk):
    from genreseg.models import default_preset, frame_posteriors, iter_frame_posteriors, train_frame_model

    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(30, 4)).astype(np.float32) for _ in range(4)]
    model = train_frame_model(seqs, [0, 1, 2, 1], 3, default_preset("lstm", (6,)).replace(epochs=1, device="cpu"),
                              progress=False)
    x = rng.normal(size=(47, 4)).astype(np.float32)
    got = np.concatenate(list(iter_frame_posteriors(model, (x[a:a + chunk] for a in range(0, 47, chunk)), W)))
    H = W // 2
    expected = np.empty_like(got)
    for f in range(47):  # the latest window start k*H with at least W - H frames before f, or 0
        start = max(0, (f - (W - H)) // H * H)
        expected[f] = frame_posteriors(model, [x[start:start + W]])[0][f - start]
    assert got.shape == (47, 3)
    assert np.allclose(got, expected, atol=1e-6)
    # a window longer than the sequence is the one-pass LSTM; shorter ones are not
    assert np.allclose(got, frame_posteriors(model, [x])[0], atol=1e-6) == (W >= 47)
