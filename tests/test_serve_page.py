"""The page of `genreseg serve` in a real browser: Debian's headless Chromium, driven by Playwright.

Playwright's own browser download cannot work offline, so it drives the system Chromium
through ``executable_path`` (``GENRESEG_CHROMIUM``, else ``chromium`` on PATH). The
screenshot is kept in ``test-artifacts/`` (``GENRESEG_TEST_ARTIFACTS`` to move it).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx2 as httpx
import pytest

from conftest import CHROMIUM, REPO, gtzan_clip, live_server, requires_gtzan
from genreseg.service import ServeConfig, create_app

ARTIFACTS = Path(os.environ.get("GENRESEG_TEST_ARTIFACTS", REPO / "test-artifacts"))

pytestmark = [requires_gtzan, pytest.mark.skipif(
    not CHROMIUM, reason="no Chromium on this machine: install Debian's package (apt-get install -y chromium, "
                         "as .ci/run does) or set GENRESEG_CHROMIUM to run the browser test")]

# A DataTransfer holding one file, as the browser builds it for a real drag and drop.
MAKE_DROP = """([b64, name]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: "audio/wav" }));
    return dt;
}"""
# Share of the canvas's pixels that were painted.
PAINTED = """(canvas) => {
    const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
    return n / (canvas.width * canvas.height);
}"""
# Share of the pixels of the canvas's row y that have each bar's colour, by label.
ROW_COLOURS = """(canvas, y) => {
    const d = canvas.getContext("2d").getImageData(0, y, canvas.width, 1).data;
    const card = canvas.closest(".card"), out = {};
    for (const bar of card.querySelectorAll(".bar")) {
        const rgb = getComputedStyle(bar.querySelector(".fill")).backgroundColor.match(/\\d+/g).map(Number);
        let n = 0;
        for (let i = 0; i < d.length; i += 4) n += rgb.every((v, k) => Math.abs(d[i + k] - v) <= 2);
        out[bar.querySelector(".label").textContent] = n / canvas.width;
    }
    return out;
}"""



def test_drop_a_clip_see_its_genre_and_timeline(serve_model, tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    first, second = gtzan_clip("reggae", 0), gtzan_clip("classical", 2)
    import genreseg.timeline

    # The segments the page is shown: none at first, then two fixed ones, whatever the decoder finds.
    segments = []
    monkeypatch.setattr(genreseg.timeline, "decode_segments",
                        lambda *args, **kwargs: [genreseg.timeline.GenreSegment(*s) for s in segments])
    app = create_app(serve_model, ServeConfig(tmp_dir=str(tmp_path)))
    with live_server(app) as url, sync_playwright() as pw:
        api = {p.name: httpx.post(f"{url}/predict", files={"file": (p.name, p.read_bytes())}, timeout=60).json()
               for p in (first, second)}
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            errors = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(f"{url}/")
            page.wait_for_function("document.querySelector('#model-info').textContent.includes('10 genres')")

            drop = page.evaluate_handle(MAKE_DROP, [base64.b64encode(first.read_bytes()).decode(), first.name])
            page.dispatch_event("#drop", "drop", {"dataTransfer": drop})
            card = page.locator(".card.done").first
            card.wait_for(timeout=60_000)
            assert card.locator("h2.file").inner_text() == first.name
            assert card.locator(".genre").inner_text() == api[first.name]["genre"]
            assert card.locator(".bar").count() == 10
            assert card.locator(".bar .label").first.inner_text() == api[first.name]["genre"]
            canvas = card.locator("canvas")
            assert canvas.get_attribute("data-points") == "81" and canvas.bounding_box()["height"] == 180
            # the stacked posteriors fill the whole plot area (~80 % of the canvas, axes aside)
            assert canvas.evaluate(PAINTED) > 0.7

            # then two more from the file picker, one of them broken: one after another; the
            # good one with genre segments, drawn as a band above the posteriors
            segments[:] = [(0.0, 15.0, "jazz", 0.7), (15.0, 30.0, "blues", 0.6)]
            page.set_input_files("#picker", files=[
                {"name": "broken.wav", "mimeType": "audio/wav", "buffer": b"this is not audio"},
                {"name": second.name, "mimeType": "audio/wav", "buffer": second.read_bytes()}])
            page.wait_for_function("document.querySelectorAll('.card.done, .card.failed').length === 3",
                                   timeout=60_000)
            broken = page.locator(".card.failed")
            assert broken.locator("h2.file").inner_text() == "broken.wav"
            assert "broken.wav: not audio or corrupt" in broken.locator(".status").inner_text()
            card = page.locator(".card.done").first
            assert card.locator(".genre").inner_text() == api[second.name]["genre"]
            canvas = card.locator("canvas")
            assert canvas.bounding_box()["height"] == 206  # 180 + the band
            band = canvas.evaluate(ROW_COLOURS, 12)  # the band's middle row
            assert 0.4 < band["jazz"] < 0.5 and 0.4 < band["blues"] < 0.5, band
            assert "2 genre segment(s)" in card.locator(".caption").inner_text()
            assert errors == []
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)
        finally:
            browser.close()
    assert list(tmp_path.iterdir()) == []  # every upload deleted
