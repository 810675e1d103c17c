"""genreseg serve: the HTTP API in process, its limits on a live server, and the CLI."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx2 as httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from conftest import REPO, gtzan_clip, live_server, requires_gtzan
from genreseg.cli import main as cli_main
from genreseg.service import ServeConfig, analyse, create_app, smooth_timeline
from genreseg.service.upload import display_name, temp_suffix
from test_audio import bad_corpus, clip  # noqa: F401  (fixtures: the bad files of the audio tests)

pytestmark = requires_gtzan


@pytest.fixture(scope="module")
def model_dir(serve_model, tmp_path_factory):
    return serve_model.save(tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture()
def uploads(tmp_path):
    """The folder the app writes uploads to: every test checks that it ends empty."""
    d = tmp_path / "uploads"
    d.mkdir()
    yield d
    assert list(d.iterdir()) == [], "an upload was left on disk"


@pytest.fixture()
def client(serve_model, uploads):
    with TestClient(create_app(serve_model, ServeConfig(tmp_dir=str(uploads)))) as c:
        yield c


def post_file(client, name, data, content_type="audio/wav"):
    return client.post("/predict", files={"file": (name, data, content_type)})


# ---------------------------------------------------------------------- the timeline sent to clients
def test_smooth_timeline_is_a_centred_moving_average_decimated():
    rng = np.random.default_rng(0)
    post = rng.dirichlet(np.ones(4), size=1000)
    times = np.arange(1000) * 0.5
    t, p = smooth_timeline(times, post, hop_s=0.5, smooth_s=2.5, max_points=100)
    # 1000 frames into at most 100 points: step 10, window widened to 11 frames, centred
    assert len(t) == len(p) == 100 and np.allclose(p.sum(1), 1)
    assert np.array_equal(t, times[5::10])
    for i in (3, 50, 98):
        centre = 5 + 10 * i
        assert np.allclose(p[i], post[centre - 5:centre + 6].mean(0), atol=1e-12)
    # a short file keeps every frame, averaged over smooth_s (5 frames of 0.5 s)
    t, p = smooth_timeline(times[:40], post[:40], hop_s=0.5, smooth_s=2.5, max_points=100)
    assert np.array_equal(t, times[:40]) and np.allclose(p[20], post[18:23].mean(0), atol=1e-12)


def test_upload_names_are_never_paths():
    assert display_name("../../etc/passwd.wav") == "passwd.wav"
    assert display_name("C:\\music\\a b.MP3") == "a b.MP3"
    assert display_name("bad\x00name\n.wav") == "badname.wav"
    assert display_name("..") == display_name("") == "upload"
    assert temp_suffix("a b.MP3") == ".mp3" and temp_suffix("x.wav.exe") == "" and temp_suffix("noext") == ""


# ---------------------------------------------------------------------- POST /predict
def test_good_file_matches_the_cli_prediction(client, serve_model, model_dir, capsys):
    path = gtzan_clip("jazz", 0)
    r = post_file(client, path.name, path.read_bytes())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["file"] == path.name and body["warnings"] == []
    # the segments of `genreseg segment`: one 30-s clip of one genre is one segment
    expected = serve_model.segment(path).segments
    assert [(s["start_s"], s["end_s"], s["genre"]) for s in body["segments"]] == [
        (pytest.approx(s.start_s), pytest.approx(s.end_s), s.genre) for s in expected] and len(expected) == 1
    assert 30.0 <= body["duration_s"] <= 30.1 and body["analysis_s"] > 0 and body["queued_s"] >= 0
    # the same numbers as `genreseg predict --format json`: one prediction path
    assert cli_main(["predict", str(model_dir), str(path), "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)[0]
    assert body["genre"] == cli["genre"] and body["probabilities"] == pytest.approx(cli["probabilities"], abs=1e-12)
    assert list(body["probabilities"]) == serve_model.label_names_
    tl = body["timeline"]
    assert tl["labels"] == serve_model.label_names_ and tl["n_frames"] == 81
    post = np.array(tl["posteriors"])
    assert post.shape == (81, 10) and np.allclose(post.sum(1), 1, atol=1e-3)
    assert tl["times_s"][0] == 0 and tl["times_s"][-1] == pytest.approx(80 * tl["frame_hop_s"], abs=1e-3)


def test_bad_files_get_422_with_the_cli_line(client, bad_corpus, model_dir, capsys):  # noqa: F811
    # locked.wav: a mode we cannot upload; clip.xyz: a good WAV under an odd name (decoded by content)
    files = sorted(p for p in bad_corpus.iterdir() if p.name not in ("locked.wav", "clip.xyz"))
    assert cli_main(["predict", str(model_dir)] + [str(p) for p in files]) == 1
    cli_lines = [line.strip() for line in capsys.readouterr().err.splitlines() if str(bad_corpus) in line]
    assert len(cli_lines) == len(files)
    for path, line in zip(files, cli_lines):
        r = post_file(client, path.name, path.read_bytes())
        assert r.status_code == 422, (path.name, r.text)
        assert r.json()["detail"] == line.replace(str(path), path.name), path.name
    assert client.get("/health").json()["queue"]["pending"] == 0
    assert post_file(client, "ok.wav", gtzan_clip("rock", 0).read_bytes()).status_code == 200


def test_silence_is_answered_with_a_warning(client):
    buf = io.BytesIO()
    sf.write(buf, np.zeros(3 * 22050, np.float32), 22050, format="WAV")
    r = post_file(client, "quiet.wav", buf.getvalue())
    assert r.status_code == 200 and r.json()["warnings"] == ["quiet.wav: digital silence"]


def test_path_like_and_odd_names_are_only_shown(client, uploads):
    data = gtzan_clip("metal", 1).read_bytes()
    for name, shown in [("../../etc/passwd.wav", "passwd.wav"), ("..\\..\\x\\SONG.WAV", "SONG.WAV"),
                        ("/tmp/évidence.wav", "évidence.wav")]:
        r = post_file(client, name, data)
        assert r.status_code == 200 and r.json()["file"] == shown
    assert not (uploads.parent.parent / "etc" / "passwd.wav").exists()


def test_request_shape_errors(client):
    assert client.post("/predict", content=gtzan_clip().read_bytes(),
                       headers={"content-type": "audio/wav"}).status_code == 415
    assert client.post("/predict", json={"file": "song.wav"}).status_code == 415
    empty = client.post("/predict", content=b"", headers={"content-type": "multipart/form-data; boundary=b0"})
    assert empty.status_code == 400 and "no file" in empty.json()["detail"]
    assert client.post("/predict", data={"note": "no file here"},
                       files={"x": (None, b"y")}).status_code == 400
    two = client.post("/predict", files=[("file", ("a.wav", b"1")), ("file", ("b.wav", b"2"))])
    assert two.status_code == 400 and "one file" in two.json()["detail"]
    multipart = {"content-type": "multipart/form-data; boundary=b0"}
    cut = client.post("/predict", headers=multipart, content=b"--b0\r\nContent-Disposition: form-data; "
                                                            b"name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF")
    assert cut.status_code == 400 and "cut short" in cut.json()["detail"]
    garbage = client.post("/predict", headers=multipart, content=b"not multipart at all")
    assert garbage.status_code == 400 and "malformed multipart body" in garbage.json()["detail"]


def test_too_large_is_413_with_or_without_content_length(serve_model, uploads):
    app = create_app(serve_model, ServeConfig(max_upload_mb=0.5, tmp_dir=str(uploads)))
    data = gtzan_clip("pop", 0).read_bytes()  # 1.3 MB
    with TestClient(app) as c:
        r = post_file(c, "big.wav", data)
        assert r.status_code == 413 and r.json()["detail"] == "upload too large: the limit is 0.5 MB"
        req = httpx.Request("POST", "http://x", files={"file": ("big.wav", data)})
        body, ctype = req.read(), req.headers["content-type"]

        def chunks():  # no Content-Length: the limit is counted as the body streams in
            for i in range(0, len(body), 65536):
                yield body[i:i + 65536]
        r = c.post("/predict", content=chunks(), headers={"content-type": ctype})
        assert r.status_code == 413
        assert post_file(c, "small.wav", data[:300_000]).status_code in (200, 422)  # still serving


def test_max_duration_is_422_naming_the_limit(serve_model, uploads):
    with TestClient(create_app(serve_model, ServeConfig(max_duration_s=10, tmp_dir=str(uploads)))) as c:
        r = post_file(c, "long.wav", gtzan_clip("disco", 0).read_bytes())
    assert r.status_code == 422 and r.json()["detail"] == "long.wav: too long: more than the limit of 10 s"


def test_model_and_health(client, serve_model):
    m = client.get("/model").json()
    assert m["labels"] == serve_model.label_names_ and m["feature_hash"] == serve_model.feature_config_.hash
    assert m["frame_model"]["kind"] == "dnn" and m["training"]["n_tracks"] == 100 and "track_ids" not in m["training"]
    assert m["limits"]["max_upload_bytes"] == 200 * 2**20
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["queue"] == {"pending": 0, "size": 16}
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def count_decoder_opens(monkeypatch) -> list:
    """Record every decoder the audio layer opens (one entry per open)."""
    import genreseg.audio

    opened, real = [], genreseg.audio.open_decoder

    def counting(path, *args, **kwargs):
        opened.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(genreseg.audio, "open_decoder", counting)
    return opened


def test_one_upload_is_decoded_once_and_answers_everything(client, serve_model, monkeypatch):
    path = gtzan_clip("jazz", 0)
    opened = count_decoder_opens(monkeypatch)
    r = post_file(client, "j.wav", path.read_bytes())
    assert r.status_code == 200, r.text
    assert len(opened) == 1  # genre, probabilities, posterior timeline and segments from one decode
    out = r.json()
    # The segments are those `genreseg segment` decodes, the genre the one `predict` gives.
    timeline = serve_model.segment(path)
    assert out["segments"] == [{"start_s": s.start_s, "end_s": s.end_s, "genre": s.genre,
                                "confidence": s.confidence} for s in timeline.segments]
    assert out["genre"] == serve_model.predict_files([path])[0].genre
    assert out["timeline"]["n_frames"] == len(timeline.times)
    # The chart shows the posteriors the segments were decoded from, smoothed.
    _, smoothed = smooth_timeline(timeline.times, timeline.posteriors, serve_model.feature_config_.hop_seconds)
    assert np.allclose(out["timeline"]["posteriors"], smoothed, atol=1e-4)


# ---------------------------------------------------------------------- queue and timeout, on a live server
class SlowModel:
    """The real model, but each analysis first waits for ``gate`` (or ``delay`` seconds)."""

    def __init__(self, model, delay=None):
        self._model, self.delay, self.gate = model, delay, threading.Event()

    def __getattr__(self, name):
        return getattr(self._model, name)

    def file_analyser(self, *args, **kwargs):
        if self.delay is not None:
            time.sleep(self.delay)
        else:
            assert self.gate.wait(60)
        return self._model.file_analyser(*args, **kwargs)


def test_full_queue_is_503_with_retry_after(serve_model, uploads):
    slow = SlowModel(serve_model)
    data = gtzan_clip("blues", 1).read_bytes()
    with live_server(create_app(slow, ServeConfig(queue=2, tmp_dir=str(uploads)))) as url:
        results = []
        first = [threading.Thread(target=lambda: results.append(
            httpx.post(f"{url}/predict", files={"file": ("a.wav", data)}, timeout=60))) for _ in range(2)]
        for t in first:
            t.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/health").json()["queue"]["pending"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = httpx.post(f"{url}/predict", files={"file": ("b.wav", data)}, timeout=60)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1 and "busy" in r.json()["detail"]
        slow.gate.set()
        for t in first:
            t.join(60)
        assert [x.status_code for x in results] == [200, 200]
        assert httpx.post(f"{url}/predict", files={"file": ("c.wav", data)}, timeout=60).status_code == 200


def test_queue_is_full_when_the_wait_would_outlast_the_timeout():
    from fastapi import HTTPException

    from genreseg.service.app import AnalysisQueue

    q = AnalysisQueue(size=16, timeout_s=10)
    q._recent.extend([4.0, 4.0, 30.0])  # typically 4 s (one long song aside): answers expected
    # after 4 and 8 s fit, after 12 s do not
    for _ in range(2):
        q.admit()
    with pytest.raises(HTTPException) as exc:
        q.admit()
    assert exc.value.status_code == 503 and exc.value.headers == {"Retry-After": "8"}
    q.release()
    q.admit()  # a place freed: admitted again
    assert q.pending == 2


def test_timeout_is_504_and_the_server_goes_on(serve_model, uploads):
    slow = SlowModel(serve_model, delay=2.5)
    with live_server(create_app(slow, ServeConfig(timeout_s=1.0, tmp_dir=str(uploads)))) as url:
        data = gtzan_clip("country", 0).read_bytes()
        r = httpx.post(f"{url}/predict", files={"file": ("slow.wav", data)}, timeout=60)
        assert r.status_code == 504 and r.json()["detail"].startswith("slow.wav: analysis not finished within 1 s")
        # the analysis still holds its place until it really ends; then the file is gone
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/health").json()["queue"]["pending"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        slow.delay = 0  # the next analysis runs (a real one takes about the timeout here: a corrupt file)
        r = httpx.post(f"{url}/predict", files={"file": ("next.wav", b"not audio")}, timeout=60)
        assert r.status_code == 422 and r.json()["detail"].startswith("next.wav: not audio or corrupt")


def test_client_gone_mid_upload_leaves_nothing(serve_model, uploads, caplog):
    import socket
    from urllib.parse import urlparse

    with live_server(create_app(serve_model, ServeConfig(tmp_dir=str(uploads)))) as url:
        u = urlparse(url)
        with socket.create_connection((u.hostname, u.port)) as s:
            head = (b"--b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
                    + b"RIFF" + bytes(100_000))
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b0\r\n"
                      b"Content-Length: 1000000\r\n\r\n" + head)
            deadline = time.monotonic() + 30
            while not list(uploads.iterdir()):  # the upload has begun
                assert time.monotonic() < deadline
                time.sleep(0.02)
        deadline = time.monotonic() + 30
        while list(uploads.iterdir()) or httpx.get(f"{url}/health").json()["queue"]["pending"]:
            assert time.monotonic() < deadline, "the cut upload was not cleaned up"
            time.sleep(0.05)
    assert "Traceback" not in caplog.text


# ---------------------------------------------------------------------- the command
def test_cli_serve_with_two_workers(model_dir, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "genreseg", "serve", str(model_dir), "--port", str(port),
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        path = gtzan_clip("classical", 0)
        r = httpx.post(f"{url}/predict", files={"file": (path.name, path.read_bytes())}, timeout=60)
        assert r.status_code == 200 and r.json()["genre"] in r.json()["probabilities"]
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out


def test_cli_serve_refuses_what_it_cannot_run(tmp_path, model_dir, capsys):
    import socket

    assert cli_main(["serve", str(tmp_path / "nothing")]) == 2
    assert "not a genreseg model" in capsys.readouterr().err
    assert cli_main(["serve", str(model_dir), "--queue", "0"]) == 2
    assert "invalid limits: queue must be >= 1" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli_main(["serve", str(model_dir), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in capsys.readouterr().err
