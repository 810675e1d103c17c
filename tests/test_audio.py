"""genreseg.audio on real clips and on a corpus of bad files made here."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf

from audio_corpus import mark_wav_size_unknown
from conftest import gtzan_clip, requires_gtzan
from genreseg.audio import SilentAudioWarning, content_hash, load_audio, load_audio_with_info
from genreseg.errors import AudioError

pytestmark = requires_gtzan
WINDOW = 2**14


@pytest.fixture(scope="module")
def clip():
    x, sr = sf.read(gtzan_clip("jazz", 3), dtype="float32")
    assert sr == 22050
    return x


def test_real_clip_loads_as_float32_mono_22050():
    signal, info = load_audio_with_info(gtzan_clip("rock", 2))
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert info.native_rate == 22050 and info.channels == 1
    assert 30.0 <= info.duration <= 30.5
    assert np.isfinite(signal).all() and np.abs(signal).max() <= 1.0


@pytest.mark.parametrize("fmt,ext,subtype", [("WAV", ".wav", "PCM_24"), ("FLAC", ".flac", None),
                                             ("AU", ".au", None), ("OGG", ".ogg", None), ("MP3", ".mp3", None)])
def test_formats_decode_to_the_same_signal(tmp_path, clip, fmt, ext, subtype):
    """Files libsndfile writes (its MP3 and Vorbis go through FFmpeg on the way back)."""
    path = tmp_path / f"copy{ext}"
    sf.write(path, clip, 22050, format=fmt, subtype=subtype)
    y, info = load_audio_with_info(path)
    assert y.dtype == np.float32
    if fmt in ("WAV", "FLAC", "AU"):  # exact up to quantisation
        assert len(y) == len(clip)
        assert np.max(np.abs(y - clip)) < 1e-4
        return
    # Lossy: the whole length (libsndfile's LAME writes a LAME header, Vorbis ends on a
    # granule: both state it), and the waveform itself once aligned.
    assert 0 <= len(y) - len(clip) <= 1152, (len(y), len(clip))
    shift = int(np.argmax(np.correlate(y[:44100], clip[:22050], mode="valid")))
    aligned = y[shift:shift + len(clip)]
    assert shift <= 1152 and len(aligned) == len(clip)
    assert np.linalg.norm(aligned - clip) / np.linalg.norm(clip) < 0.35


def test_stereo_and_other_rates_become_mono_22050(tmp_path, clip):
    stereo = np.stack([clip, clip], axis=1)
    sf.write(tmp_path / "stereo.wav", stereo, 22050)
    assert np.allclose(load_audio(tmp_path / "stereo.wav"), clip, atol=1e-4)

    import soxr

    up = soxr.resample(clip, 22050, 44100)
    sf.write(tmp_path / "hi.wav", np.stack([up, up], axis=1), 44100, subtype="FLOAT")
    y, info = load_audio_with_info(tmp_path / "hi.wav")
    assert info.native_rate == 44100 and info.channels == 2
    assert len(y) == len(clip)  # soxr keeps the length: n * 22050 / 44100
    # band-limited round trip: nearly the same waveform
    assert np.linalg.norm(y - clip) / np.linalg.norm(clip) < 0.02


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory, clip):
    d = tmp_path_factory.mktemp("bad")
    raw = open(gtzan_clip("jazz", 3), "rb").read()
    (d / "zero_bytes.wav").write_bytes(b"")
    (d / "text.wav").write_text("this is not audio\n" * 20)
    (d / "truncated.wav").write_bytes(raw[: len(raw) // 2])
    nan = clip.copy()
    nan[1000] = np.nan
    sf.write(d / "nan.wav", nan, 22050, subtype="FLOAT")
    sf.write(d / "one_sample.wav", clip[:1], 22050)
    sf.write(d / "no_samples.wav", clip[:0], 22050)
    sf.write(d / "short.wav", clip[: WINDOW - 1], 22050)
    (d / "clip.xyz").write_bytes(raw)  # a WAV under a name no one knows: read by content
    (d / "notes.mp3").write_text("not audio, whatever its name\n" * 20)
    locked = d / "locked.wav"
    locked.write_bytes(raw)
    locked.chmod(0)
    yield d
    locked.chmod(0o644)


@pytest.mark.parametrize("name,reason", [
    ("missing.wav", "no such file"),
    ("zero_bytes.wav", "empty file"),
    ("text.wav", "not audio or corrupt"),
    ("truncated.wav", "truncated"),
    ("nan.wav", "non-finite"),
    ("one_sample.wav", "too short"),
    ("no_samples.wav", "zero samples"),
    ("short.wav", "too short"),
    ("notes.mp3", "not audio or corrupt"),
    ("locked.wav", "permission denied"),
])
def test_bad_input_raises_one_line_error_with_path_and_reason(bad_corpus, name, reason):
    if name == "locked.wav" and os.access(bad_corpus / name, os.R_OK):
        pytest.skip("running as a user that can read mode-000 files; the check cannot trigger")
    with pytest.raises(AudioError) as exc:
        load_audio(bad_corpus / name, min_samples=WINDOW)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(str(bad_corpus / name) + ": ")
    assert reason in msg


def test_a_file_is_decoded_by_its_content_not_its_name(bad_corpus, clip):
    y, info = load_audio_with_info(bad_corpus / "clip.xyz")
    assert info.codec.startswith("wav/") and len(y) == len(clip)


def test_locked_file_is_refused_even_as_root(bad_corpus, monkeypatch):
    # root reads mode-000 files; simulate the access check a normal user meets
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(AudioError, match="permission denied"):
        load_audio(bad_corpus / "locked.wav")


def test_silence_is_valid_audio_with_a_warning(tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(3 * WINDOW, np.float32), 22050)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y, info = load_audio_with_info(tmp_path / "silence.wav")
    assert info.silent and not np.any(y)
    assert any(issubclass(w.category, SilentAudioWarning) for w in caught)


def test_content_hash_follows_bytes(tmp_path):
    raw = open(gtzan_clip("pop", 1), "rb").read()
    (tmp_path / "a.wav").write_bytes(raw)
    (tmp_path / "b.wav").write_bytes(raw)
    (tmp_path / "c.wav").write_bytes(raw[:-2] + b"\x00\x01")
    assert content_hash(tmp_path / "a.wav") == content_hash(tmp_path / "b.wav")
    assert content_hash(tmp_path / "a.wav") != content_hash(tmp_path / "c.wav")


def test_a_short_block_in_mid_stream_is_not_the_end(monkeypatch, clip):
    """Decoders may return fewer frames than asked before the end (FFmpeg packets, a slow
    disk): everything up to the decoder's own end must come through."""
    import genreseg.audio as audio

    class Irregular:
        rate, channels, codec = 22050, 1, "test"

        def blocks(self):
            for a, b in [(0, 1000), (1000, 1001), (1001, 90_000), (90_000, len(clip))]:
                yield clip[a:b, None]

        def close(self):
            pass

    monkeypatch.setattr(audio, "open_decoder", lambda path, block_frames: Irregular())
    path = gtzan_clip("jazz", 3)  # only its existence is checked before decoding
    y, info = load_audio_with_info(path)
    assert info.native_samples == len(clip) and np.array_equal(y, clip)


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_wav_of_unknown_data_size_is_read_to_its_end(tmp_path, clip, size):
    """A WAV written to a pipe cannot go back to fill in its sizes: 0 or 0xFFFFFFFF."""
    path = tmp_path / "pipe.wav"
    sf.write(path, clip, 22050, subtype="PCM_16")
    mark_wav_size_unknown(path, size)
    y = load_audio(path)
    assert len(y) == len(clip) and np.max(np.abs(y - clip)) < 1e-4
