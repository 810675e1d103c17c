"""Every common format, full length: a corpus made here with real encoders (see audio_corpus.py).

Each file (>= 3 minutes, from real music) must decode to the source's length (exactly
for PCM and FLAC; within what the codec documents for lossy ones) and give features
close to those of the WAV original; each lossy format (and FLAC and AIFF) cut at 50 %
must give the documented outcome; ``genreseg extract`` must store every valid file and name every
damaged one.

One ``genreseg extract`` run (two workers, as a user runs it) computes the features of
the whole corpus, the WAV originals, the damaged copies and some junk; the tests read
its store.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from audio_corpus import CORPUS, cut_in_half, source_signal, write_corpus_file
from conftest import GTZAN, gtzan_clip
from genreseg.audio import load_audio_with_info
from genreseg.features import FeatureConfig
from genreseg.store import FeatureStore

LOG_FLOOR = np.log(FeatureConfig().log_eps)
CUT = [e for e in CORPUS if e.cut_outcome]


def _original_name(entry) -> str:
    return f"{entry.rate}_{entry.channels}.wav"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus in ``data/<label>/`` folders, extracted by the CLI into ``store``."""
    assert GTZAN.is_dir(), f"real audio not found at {GTZAN}"
    root = tmp_path_factory.mktemp("formats")
    data = root / "data"
    for label in ("encoded", "originals", "damaged"):
        (data / label).mkdir(parents=True)
    clips = [gtzan_clip("rock", 0), gtzan_clip("jazz", 1)]
    lengths = {}
    for entry in CORPUS:
        signal = source_signal(clips, entry.rate, entry.channels)
        original = data / "originals" / _original_name(entry)
        if not original.exists():  # the "WAV original": float samples, nothing lost
            sf.write(original, signal, entry.rate, subtype="FLOAT")
        lengths[entry.name] = len(signal)
        write_corpus_file(entry, signal, data / "encoded")
    damaged = [cut_in_half(data / "encoded" / e.name, data / "damaged") for e in CUT if e.cut_outcome != "decodes"]
    (data / "damaged" / "notes.txt").write_text("not audio")
    (data / "damaged" / "dangling.mp3").symlink_to(root / "gone.mp3")
    store = root / "store"
    run = subprocess.run([sys.executable, "-m", "genreseg", "extract", str(data), "--out", str(store),
                          "--workers", "2", "--quiet"], capture_output=True, text=True, timeout=1200)
    return {"data": data, "store": FeatureStore(store), "run": run, "lengths": lengths, "damaged": damaged}


def _stored(corpus, track_id):
    rows = {r["track_id"]: r for r in corpus["store"].rows()}
    assert track_id in rows, f"{track_id} not stored; extract said: {corpus['run'].stderr[-2000:]}"
    return corpus["store"].read(rows[track_id]["key"])


@pytest.mark.parametrize("entry", CORPUS, ids=[e.name for e in CORPUS])
def test_decodes_full_length_with_features_close_to_the_original(corpus, entry):
    feats = _stored(corpus, f"encoded/{entry.name}")
    ref = _stored(corpus, f"originals/{_original_name(entry)}").data
    info = feats.info
    assert (info["native_rate"], info["channels"]) == (entry.rate, entry.channels)
    low, high = entry.length_slack
    assert low <= info["native_samples"] - corpus["lengths"][entry.name] <= high, info
    # A file whose length is exact has exactly the original's frames; the unstated delay
    # of a headerless MP3 may add one frame at the end.
    assert len(ref) <= feats.n_frames <= len(ref) + (high > 1152)
    live = ref.mean(axis=0) > LOG_FLOOR + 3  # the channels that carry signal at this rate
    x = feats.data[: len(ref), live]
    frame_diff = np.abs(x - ref[:, live]).mean()
    track_diff = np.abs(x.mean(0) - ref[:, live].mean(0)).mean()
    assert frame_diff < entry.tolerance and track_diff < entry.tolerance, (frame_diff, track_diff)


@pytest.mark.parametrize("entry", CUT, ids=[e.name for e in CUT])
def test_file_cut_in_half_gets_the_documented_outcome(corpus, entry, tmp_path):
    from genreseg.errors import AudioError

    cut = cut_in_half(corpus["data"] / "encoded" / entry.name, tmp_path)
    n_source = corpus["lengths"][entry.name]
    if entry.cut_outcome == "decodes":
        # No exact length in the file (Ogg's is its own last page; a headerless MP3's an
        # estimate): the half that is there decodes, as a shorter track.
        _, info = load_audio_with_info(cut)
        assert 0.3 * n_source < info.native_samples < 0.6 * n_source
        return
    with pytest.raises(AudioError) as err:
        load_audio_with_info(cut)
    message = str(err.value)
    assert message.startswith(f"{cut}: {entry.cut_outcome}") and "\n" not in message, message


def test_extract_stores_every_valid_file_and_names_every_damaged_one(corpus):
    run = corpus["run"]
    assert run.returncode == 1, run.stderr  # some files failed: listed, the rest kept
    stored = {r["track_id"] for r in corpus["store"].rows()}
    assert {t for t in stored if t.startswith("encoded/")} == {f"encoded/{e.name}" for e in CORPUS}
    assert not {t for t in stored if t.startswith("damaged/")}
    for path in corpus["damaged"]:
        assert f"{path}: " in run.stderr
    assert "notes.txt: not an audio file name" in run.stderr
    assert "dangling.mp3: dangling symbolic link" in run.stderr

    info = subprocess.run([sys.executable, "-m", "genreseg", "info", str(corpus["store"].root), "--json"],
                          capture_output=True, text=True, timeout=120)
    problems = {p["path"]: p for p in json.loads(info.stdout)["problems"]}
    assert {str(p) for p in corpus["damaged"]} <= {p for p, v in problems.items() if v["kind"] == "failed"}
    skipped = {p.rsplit("/", 1)[-1]: v["reason"] for p, v in problems.items() if v["kind"] == "skipped"}
    assert skipped == {"notes.txt": "not an audio file name (.txt)", "dangling.mp3": "dangling symbolic link"}
