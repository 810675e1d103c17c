"""genreseg.tagging: genres written into real files of every container, nothing else lost, undone exactly.

The files are encoded from real music by FFmpeg's encoders (through PyAV, as in
``audio_corpus.py``) and libsndfile, then given the tags taggers write (title,
artist, cover art, ReplayGain, some an existing genre) with mutagen. Every check reads
the files back independently: with mutagen (loaded raw, as it stores them), by
decoding the audio with FFmpeg, and by comparing bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import struct

import av
import mutagen
import numpy as np
import pytest
import soundfile as sf
from mutagen.aiff import AIFF
from mutagen.asf import ASF, ASFByteArrayAttribute
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, RVAD, TCON, TIT2, TPE1, TSOP, TXXX, TYER
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from audio_corpus import add_trailing_junk, source_signal
from conftest import GTZAN, gtzan_clip
from genreseg.encode import Encoding, write_audio
from genreseg.tagging import (TagError, apply_tags, audio_fingerprint, payload_span, plan_tag, plan_tags,
                              read_genres, read_undo_log, undo)

SECONDS = 20
COVER = b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).bytes(40_000)
GENRE_KEYS = {"tcon", "\xa9gen", "genre", "wm/genre"}
BYTE_EXACT = {"mp3", "flac", "wav", "aiff"}


def _signal(rate: int) -> np.ndarray:
    if GTZAN.is_dir():
        return source_signal([gtzan_clip("rock", 0), gtzan_clip("jazz", 1)], rate, 2, SECONDS)
    t = np.arange(SECONDS * rate) / rate  # without the data set: a chord with a beat, still real encoders
    x = sum(np.sin(2 * np.pi * f * t) for f in (220, 277, 330)) * (0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0))
    return (0.25 * np.stack([x, np.roll(x, 99)], axis=1)).astype(np.float32)


def _picture() -> Picture:
    pic = Picture()
    pic.type, pic.mime, pic.desc, pic.data = 3, "image/png", "front", COVER
    return pic


def _id3_frames(tags, genre: str | None, v23: bool) -> None:
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="front", data=COVER))
    tags.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text=["-6.20 dB"]))
    tags.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_PEAK", text=["0.988"]))
    if genre:
        tags.add(TCON(encoding=3, text=[genre]))
    if v23:  # frames mutagen's default load would drop or convert on the way back to v2.3
        tags.add(TSOP(encoding=1, text=["Band, The"]))
        tags.add(TYER(encoding=0, text=["1999"]))
        tags.add(RVAD(adjustments=[-1200, -1200]))


def _make_mp3(path, signal, version: int, genre: str | None):
    write_audio(path, signal, 44100, Encoding("libmp3lame", "mp3", bit_rate=128_000, metadata={
        "title": "Song", "artist": "Band"}, container_options={"id3v2_version": version}))
    f = MP3(path, translate=False, load_v1=False)
    _id3_frames(f.tags, genre, version == 3)
    f.save(v2_version=version, v23_sep=None)
    if version == 3:  # zero padding, Lyrics3v2 and an ID3v1 tag titled unlike the ID3v2 one
        add_trailing_junk(path, 0)


def _make_iff(path, signal, cls, fmt: str, version: int, genre: str | None):
    sf.write(path, signal, 44100, format=fmt, subtype="PCM_16")
    f = cls(path)
    f.add_tags()
    f.tags.add(TIT2(encoding=3, text=["Song"]))
    f.tags.add(TPE1(encoding=3, text=["Band"]))
    _id3_frames(f.tags, genre, False)
    f.save(v2_version=version)


def _make_m4a(path, signal):
    write_audio(path, signal, 44100, Encoding("aac", "ipod", bit_rate=128_000, metadata={"title": "Song",
                                                                                           "artist": "Band"}))
    f = MP4(path)
    f["covr"] = [MP4Cover(COVER, imageformat=MP4Cover.FORMAT_PNG)]
    f["----:com.apple.iTunes:replaygain_track_gain"] = [MP4FreeForm(b"-5.10 dB")]
    f["\xa9gen"] = ["Blues"]
    f.save()


def _make_flac(path, signal):
    sf.write(path, signal, 44100, format="FLAC", subtype="PCM_16")
    f = FLAC(path)
    if f.tags is None:
        f.add_tags()
    f.tags.extend([("TITLE", "Song"), ("genre", "Jazz"), ("ARTIST", "Band"),
                   ("REPLAYGAIN_TRACK_GAIN", "-4.30 dB"), ("REPLAYGAIN_TRACK_PEAK", "0.95")])
    f.add_picture(_picture())
    f.save(padding=lambda info: 0)  # no padding: a longer tag must move the audio


def _make_ogg(path, signal, rate, encoding, genre_pair, gain_key):
    write_audio(path, signal, rate, encoding)
    f = mutagen.File(path)
    f.tags.extend([("ARTIST", "Band"), (gain_key, "-1234" if gain_key.startswith("R128") else "-3.1 dB"),
                   ("METADATA_BLOCK_PICTURE", base64.b64encode(_picture().write()).decode())])
    if genre_pair:
        f.tags.append(genre_pair)
    f.save()


def _make_wma(path, signal):
    write_audio(path, signal, 44100, Encoding("wmav2", "asf", bit_rate=128_000, metadata={"title": "Song"}))
    f = ASF(path)
    picture = struct.pack("<BI", 3, len(COVER)) + "image/png\0\0".encode("utf-16-le") + COVER  # WM/Picture layout
    f["WM/Picture"] = [ASFByteArrayAttribute(picture)]
    f["WM/AlbumArtist"] = ["Band"]
    f["REPLAYGAIN_TRACK_GAIN"] = ["-2.50 dB"]
    f["WM/Genre"] = ["Pop"]
    f.save()


#: name: (format, genres it starts with)
FILES = {
    "v23.mp3": ("mp3", ["Rock"]),  # TCON "(17)": ID3v1 genre 17
    "v24.mp3": ("mp3", []),
    "song.m4a": ("mp4", ["Blues"]),
    "song.flac": ("flac", ["Jazz"]),
    "song.ogg": ("ogg-vorbis", ["Rock"]),
    "song.opus": ("ogg-opus", []),
    "song.wma": ("asf", ["Pop"]),
    "song.aiff": ("aiff", ["Classical"]),
    "song.wav": ("wav", []),
}


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tagging")
    s44, s48 = _signal(44100), _signal(48000)
    _make_mp3(folder / "v23.mp3", s44, 3, "(17)")
    _make_mp3(folder / "v24.mp3", s44, 4, None)
    _make_m4a(folder / "song.m4a", s44)
    _make_flac(folder / "song.flac", s44)
    _make_ogg(folder / "song.ogg", s44, 44100, Encoding("vorbis", "ogg", codec_options={"strict": "experimental"},
                                                          metadata={"title": "Song"}), ("Genre", "Rock"),
              "REPLAYGAIN_TRACK_GAIN")
    _make_ogg(folder / "song.opus", s48, 48000, Encoding("libopus", "ogg", bit_rate=96_000,
                                                           metadata={"title": "Song"}), None, "R128_TRACK_GAIN")
    _make_wma(folder / "song.wma", s44)
    _make_iff(folder / "song.aiff", s44, AIFF, "AIFF", 3, "Classical")
    _make_iff(folder / "song.wav", s44, WAVE, "WAV", 4, None)
    return folder


@pytest.fixture
def files(originals, tmp_path):
    """Fresh copies of the originals in ``tmp_path/music``: name -> path."""
    music = tmp_path / "music"
    shutil.copytree(originals, music)
    return {name: music / name for name in FILES}


# ------------------------------------------------------------------------------ independent readers
def _load(path):
    """The file as mutagen stores it (ID3 untranslated, ID3v1 apart)."""
    cls = type(mutagen.File(path))
    return cls(path, translate=False, load_v1=False) if cls in (MP3, AIFF, WAVE) else cls(path)


def _tag_pairs(path) -> list[tuple[str, str]]:
    tags = _load(path).tags
    if isinstance(tags, ID3):
        return [("ID3 version", repr(tags.version))] + [(k, repr(v)) for k, v in tags.items()]
    if isinstance(tags, list):  # Vorbis comments and ASF: pairs in file order
        return [(k, repr(v)) for k, v in tags]
    return [(k, repr(v)) for k, v in tags.items()]


def _genre_values(path) -> list[str]:
    tags = _load(path).tags
    if isinstance(tags, ID3):
        return list(tags["TCON"].genres) if "TCON" in tags else []
    if isinstance(tags, list):
        return [str(v) for k, v in tags if k.lower() in GENRE_KEYS]
    return list(tags.get("\xa9gen", []))


def _others(pairs):
    return sorted(p for p in pairs if p[0].lower() not in GENRE_KEYS)


def _cover(path) -> bytes:
    f = _load(path)
    if isinstance(f.tags, ID3):
        return f.tags.getall("APIC")[0].data
    if isinstance(f, MP4):
        return bytes(f.tags["covr"][0])
    if isinstance(f, FLAC):
        return f.pictures[0].data
    if isinstance(f, (OggVorbis, OggOpus)):
        return Picture(base64.b64decode(f.tags["METADATA_BLOCK_PICTURE"][0])).data
    return bytes(f.tags["WM/Picture"][0].value)[-len(COVER):]


def _pcm(path) -> np.ndarray:
    """The decoded samples; packets FFmpeg cannot decode (an MP3's trailing Lyrics3 tag) are skipped."""
    frames = []
    with av.open(str(path)) as container:
        for packet in container.demux(audio=0):
            try:
                frames += [frame.to_ndarray().reshape(-1) for frame in packet.decode()]
            except av.error.InvalidDataError:
                pass
    return np.concatenate(frames)


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _log_lines(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


# ------------------------------------------------------------------------------ every format
@pytest.mark.parametrize("name", list(FILES))
def test_genre_written_nothing_else_changed_and_undone(files, tmp_path, name):
    path, (kind, start_genres) = files[name], FILES[name]
    raw, pairs, pcm, fingerprint = path.read_bytes(), _tag_pairs(path), _pcm(path), audio_fingerprint(path)
    assert _genre_values(path) == start_genres and _cover(path) == COVER

    plan = plan_tag(path, "jazz", 0.9)
    assert (plan.action, plan.format, plan.current_genres, plan.new_genres) == ("write", kind, tuple(start_genres),
                                                                                ("jazz",))
    assert path.read_bytes() == raw  # planning is a dry run

    log = tmp_path / "undo.jsonl"
    report = apply_tags([plan], undo_log=log)
    assert [r.written for r in report.results] == [True] and report.undo_log == str(log)
    assert _genre_values(path) == ["jazz"] and read_genres(path) == ["jazz"]
    assert _others(_tag_pairs(path)) == _others(pairs)  # title, artist, ReplayGain, ID3 version...
    assert _cover(path) == COVER
    assert audio_fingerprint(path) == fingerprint
    assert np.array_equal(_pcm(path), pcm)
    if name == "v23.mp3":
        assert path.read_bytes()[-128:] == raw[-128:]  # the ID3v1 tag, which mutagen rewrites, is put back
    header, entry = _log_lines(log)  # JSON Lines: a header, then one entry per changed file
    assert header["format"] == "genreseg-tag-undo" and read_undo_log(log) == [entry]
    assert entry["format"] == kind and entry["genres_after"] == ["jazz"]
    assert (entry["sha256_before"], entry["sha256_after"]) == (hashlib.sha256(raw).hexdigest(), _sha(path))
    assert entry["genres_before"] == start_genres and entry["path"] == str(path)
    assert (entry["restore_bytes"] is not None) == (kind in BYTE_EXACT)

    [result] = undo(log)
    assert result.action == "restored", result.message
    if kind in BYTE_EXACT:
        assert result.method == "bytes" and path.read_bytes() == raw
    else:  # every tag as before, the genre key's case and the genre values' order included
        assert result.method == "genre"
        assert sorted(_tag_pairs(path)) == sorted(pairs) and _genre_values(path) == start_genres
        assert audio_fingerprint(path) == fingerprint


# ------------------------------------------------------------------------------ modes and skips
def test_append_keeps_the_genres_there_and_adds_the_new_one_once(files, tmp_path):
    flac, mp3, m4a = files["song.flac"], files["v23.mp3"], files["song.m4a"]
    start = payload_span(flac, "flac")[0]
    plans = plan_tags([(flac, "Blues", 0.8), (mp3, "Blues", 0.8), (m4a, "blues", 0.8)], mode="append")
    assert [(p.action, p.new_genres) for p in plans] == [
        ("write", ("Jazz", "Blues")), ("write", ("Rock", "Blues")), ("unchanged", ("Blues",))]  # no case-twin
    report = apply_tags(plans, undo_log=tmp_path / "undo.jsonl")
    assert [r.written for r in report.results] == [True, True, False]
    assert _genre_values(flac) == ["Jazz", "Blues"] and _genre_values(mp3) == ["Rock", "Blues"]
    assert [k for k, _ in FLAC(flac).tags if k.lower() == "genre"] == ["genre", "genre"]  # the file's key case
    assert MP3(mp3, translate=False).tags.version == (2, 3, 0)  # still ID3v2.3
    assert payload_span(flac, "flac")[0] > start  # no padding: the audio moved, and still decodes the same
    again = plan_tags([(flac, "blues", 0.8), (mp3, "Blues", 0.8)], mode="append")
    assert [p.action for p in again] == ["unchanged", "unchanged"]


def test_low_confidence_and_tagged_files_are_left_byte_identical(files, tmp_path):
    names = ["song.flac", "song.wav", "song.opus", "v24.mp3"]
    raw = {n: files[n].read_bytes() for n in names}
    plans = plan_tags({files["song.flac"]: ("rock", 0.95),  # has a genre
                       files["song.wav"]: ("rock", 0.30),  # below the minimum
                       files["v24.mp3"]: "rock",  # no confidence given
                       files["song.opus"]: ("rock", 0.80)}, min_confidence=0.5, skip_tagged=True)
    assert [p.action for p in plans] == ["skip-tagged", "skip-low-confidence", "skip-low-confidence", "write"]
    assert "0.3" in plans[1].reason and "Jazz" in plans[0].reason
    report = apply_tags(plans, undo_log=tmp_path / "undo.jsonl")
    assert [r.written for r in report.results] == [False, False, False, True]
    assert all(files[n].read_bytes() == raw[n] for n in names if n != "song.opus")
    assert [e["path"] for e in read_undo_log(tmp_path / "undo.jsonl")] == [str(files["song.opus"])]
    # nothing to write: no undo log at all
    quiet = apply_tags(plan_tags([(files["song.wav"], "rock", 0.1)], min_confidence=0.5),
                       undo_log=tmp_path / "none.jsonl")
    assert quiet.undo_log is None and not (tmp_path / "none.jsonl").exists()
    json.dumps(report.to_dict())  # printable by a CLI as it is
    assert report.counts() == {"written": 1, "skip-tagged": 1, "skip-low-confidence": 2, "write": 1}


# ------------------------------------------------------------------------------ undo
def test_undo_refuses_a_file_changed_since_and_restores_the_rest(files, tmp_path):
    mp3, m4a, ogg = files["v24.mp3"], files["song.m4a"], files["song.ogg"]
    raw_mp3 = mp3.read_bytes()
    log = tmp_path / "undo.jsonl"
    apply_tags(plan_tags([(mp3, "jazz", 0.9), (m4a, "jazz", 0.9), (ogg, "jazz", 0.9)]), undo_log=log)
    f = MP4(m4a)
    f["\xa9nam"] = ["Retitled by hand"]
    f.save()
    retitled = m4a.read_bytes()
    results = {r.path: r for r in undo(log)}
    assert results[str(m4a)].action == "refused" and "changed since" in results[str(m4a)].message
    assert results[str(m4a)].message.startswith(f"{m4a}: ")
    assert m4a.read_bytes() == retitled  # left alone
    assert results[str(mp3)].action == "restored" and mp3.read_bytes() == raw_mp3
    assert results[str(ogg)].action == "restored" and _genre_values(ogg) == ["Rock"]
    assert [r.action for r in undo(log)] == ["unchanged", "refused", "unchanged"]  # undo twice: no harm


def test_a_crash_mid_batch_leaves_a_log_covering_every_changed_file(files, tmp_path):
    wav, flac = files["song.wav"], files["song.flac"]
    raw_wav, raw_flac = wav.read_bytes(), flac.read_bytes()
    log = tmp_path / "undo.jsonl"

    def crash(result):
        if result.written:
            raise KeyboardInterrupt  # killed right after the first file

    with pytest.raises(KeyboardInterrupt):
        apply_tags(plan_tags([(wav, "rock", 0.9), (flac, "rock", 0.9)]), undo_log=log, on_result=crash)
    assert _genre_values(wav) == ["rock"] and flac.read_bytes() == raw_flac
    assert [e["path"] for e in read_undo_log(log)] == [str(wav)]
    with open(log, "a", encoding="utf-8") as fh:
        fh.write('{"path": "torn')  # a line cut short by the crash
    assert [r.action for r in undo(log)] == ["restored"] and wav.read_bytes() == raw_wav


# ------------------------------------------------------------------------------ failures
def test_a_failing_write_leaves_the_file_byte_identical_and_the_batch_goes_on(files, tmp_path, monkeypatch):
    flac, ogg = files["song.flac"], files["song.ogg"]
    raw_flac = flac.read_bytes()

    def disk_full(self, *args, **kwargs):
        with open(self.filename, "r+b") as fh:  # half-written, then the disk fills up
            fh.seek(8)
            fh.write(b"\0" * 64)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FLAC, "save", disk_full)
    report = apply_tags(plan_tags([(flac, "rock", 0.9), (ogg, "rock", 0.9)]), undo_log=tmp_path / "undo.jsonl")
    bad, good = report.results
    assert bad.action == "error" and not bad.written and "No space left" in bad.reason
    assert bad.message.startswith(f"{flac}: ") and "\n" not in bad.message
    assert flac.read_bytes() == raw_flac
    assert good.written and _genre_values(ogg) == ["rock"]
    assert sorted(p.name for p in flac.parent.iterdir()) == sorted(FILES)  # no temporary copy left behind
    assert [e["path"] for e in read_undo_log(tmp_path / "undo.jsonl")] == [str(ogg)]


@pytest.mark.parametrize("damage, reason", [
    ("audio", "would have changed the audio"),
    ("cover", "would have changed other tags"),
])
def test_a_write_that_would_lose_data_is_refused(files, tmp_path, monkeypatch, damage, reason):
    mp3 = files["v23.mp3"]
    raw = mp3.read_bytes()
    real_save = MP3.save

    def careless_save(self, *args, **kwargs):
        if damage == "cover":
            self.tags.delall("APIC")
        real_save(self, *args, **kwargs)
        if damage == "audio":
            with open(self.filename, "r+b") as fh:
                fh.seek(os.path.getsize(self.filename) // 2)
                fh.write(b"\x55")

    monkeypatch.setattr(MP3, "save", careless_save)
    [result] = apply_tags(plan_tags([(mp3, "jazz", 0.9)]), undo_log=tmp_path / "undo.jsonl").results
    assert result.action == "error" and reason in result.reason
    assert mp3.read_bytes() == raw and not (tmp_path / "undo.jsonl").exists()


def test_a_change_logged_but_not_made_is_found_unchanged_by_undo(files, tmp_path, monkeypatch):
    import genreseg.tagging.safe_write as safe_write

    aiff = files["song.aiff"]
    raw = aiff.read_bytes()

    def power_cut(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(safe_write.os, "replace", power_cut)
    [result] = apply_tags(plan_tags([(aiff, "jazz", 0.9)]), undo_log=tmp_path / "undo.jsonl").results
    monkeypatch.undo()
    assert result.action == "error" and aiff.read_bytes() == raw
    [entry] = read_undo_log(tmp_path / "undo.jsonl")  # logged before the replace that failed
    assert [r.action for r in undo(tmp_path / "undo.jsonl")] == ["unchanged"] and aiff.read_bytes() == raw


def test_a_file_changed_after_planning_is_not_written(files, tmp_path):
    ogg = files["song.ogg"]
    [plan] = plan_tags([(ogg, "jazz", 0.9)])
    f = OggVorbis(ogg)
    f["genre"] = ["Metal"]
    f.save()
    changed = ogg.read_bytes()
    [result] = apply_tags([plan], undo_log=tmp_path / "undo.jsonl").results
    assert result.action == "error" and "changed since planning" in result.reason
    assert ogg.read_bytes() == changed


def _id3v22_file(path, mp3_source) -> None:
    frame = b"TT2" + (6).to_bytes(3, "big") + b"\x00Title"
    path.write_bytes(b"ID3\x02\x00\x00" + bytes((0, 0, 0, len(frame))) + frame + mp3_source.read_bytes())


def test_untaggable_files_get_a_one_line_reason_and_the_batch_goes_on(files, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.mp3").write_text("not audio at all\njust text\n")
    write_audio(other / "raw.aac", _signal(44100)[:44100], 44100, Encoding("aac", "adts"))
    write_audio(other / "clip.webm", _signal(48000)[:48000], 48000, Encoding("libopus", "webm"))
    (other / "folder.flac").mkdir()
    _id3v22_file(other / "old.mp3", files["v24.mp3"])
    cases = {"notes.mp3": "not a taggable audio file", "raw.aac": "genreseg tag does not write",
             "clip.webm": "not an audio format mutagen can tag", "folder.flac": "folder",
             "missing.ogg": "not found", "old.mp3": "ID3v2.2"}
    items = [(other / n, "rock", 0.9) for n in cases] + [(files["song.opus"], "rock", 0.9)]
    report = apply_tags(plan_tags(items), undo_log=tmp_path / "undo.jsonl")
    *bad, good = report.results
    for result, (name, reason) in zip(bad, cases.items()):
        assert result.action == "error" and reason in result.reason, result.message
        assert result.message == f"{other / name}: {result.reason}" and "\n" not in result.message
    assert good.written and _genre_values(files["song.opus"]) == ["rock"]
    with pytest.raises(TagError, match=r"notes\.mp3: not a taggable audio file"):
        read_genres(other / "notes.mp3")


# ------------------------------------------------------------------------------ files on disk
def test_mode_bits_kept_and_symlinks_followed(files, tmp_path):
    target = files["song.flac"]
    os.chmod(target, 0o640)
    link = tmp_path / "link.flac"
    link.symlink_to(target)
    [result] = apply_tags(plan_tags([(link, "rock", 0.9)]), undo_log=tmp_path / "undo.jsonl").results
    assert result.written and link.is_symlink() and _genre_values(target) == ["rock"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640


def test_the_default_undo_log_is_a_new_timestamped_file_in_the_current_folder(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = apply_tags(plan_tags([(files["song.wav"], "rock", 0.9)]))
    second = apply_tags(plan_tags([(files["song.aiff"], "rock", 0.9)]))
    names = [os.path.basename(r.undo_log) for r in (first, second)]
    assert all(n.startswith("genreseg-tag-undo-") and n.endswith(".jsonl") for n in names)
    assert names[0] != names[1] and all((tmp_path / n).exists() for n in names)
    with pytest.raises(TagError, match="already exists"):
        apply_tags(plan_tags([(files["song.opus"], "rock", 0.9)]), undo_log=first.undo_log)


# ------------------------------------------------------------------------------ the fingerprint
@pytest.mark.parametrize("name, method", [("v23.mp3", "payload"), ("song.flac", "payload"), ("song.wav", "payload"),
                                          ("song.aiff", "payload"), ("song.m4a", "packets"),
                                          ("song.ogg", "packets"), ("song.wma", "packets")])
def test_audio_fingerprint_ignores_tags_and_sees_one_changed_audio_byte(files, name, method):
    path = files[name]
    fingerprint = audio_fingerprint(path)
    assert fingerprint.startswith(f"{method}:")
    f = _load(path)  # a retag by mutagen itself, with a big new cover
    if isinstance(f.tags, ID3):
        f.tags.add(TXXX(encoding=3, desc="big", text=["x" * 50_000]))
        f.save(v2_version=f.tags.version[1])
    else:
        f.tags[{MP4: "\xa9cmt", ASF: "Description"}.get(type(f), "COMMENT")] = ["x" * 50_000]
        f.save()
    assert audio_fingerprint(path) == fingerprint
    raw = bytearray(path.read_bytes())
    if method == "payload":
        start, end = payload_span(path, FILES[name][0])
        middle = (start + end) // 2
    else:  # a byte in the middle of the compressed audio, found by FFmpeg
        with av.open(str(path)) as container:
            packets = [p for p in container.demux(audio=0) if p.size]
            middle = packets[len(packets) // 2].pos + 4
    raw[middle] ^= 0x01
    path.write_bytes(bytes(raw))
    assert audio_fingerprint(path) != fingerprint
