"""End to end in a real browser: Debian's chromium, driven by Playwright, against
`emovox app` on a free loopback port. Uploads a clip and sees the prediction, then records
from the microphone, which Chromium's fake capture device feeds from a wav file. At phone width
(390 px) uploads a long recording, checks that nothing overflows horizontally and captures the
page, the timeline (with its hover tooltip) and the waveform's evidence shading. Saves
screenshots under the test's tmp dir.

Needs /usr/bin/chromium (Debian package ``chromium``) and the ``playwright`` pip package
(its driver only: ``playwright install`` is never needed); skipped without them.

By default the app serves a tiny model trained here. To take real screenshots (e.g. for
``docs/app.png``), point it at a trained model and a real clip::

    EMOVOX_BROWSER_MODEL=src/emovox/data/default_model EMOVOX_BROWSER_CLIP=some.wav \
    EMOVOX_BROWSER_LONG_CLIP=long.wav EMOVOX_SCREENSHOT_DIR=/tmp/shots \
    .venv/bin/python -m pytest tests/integration/test_browser.py
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from emovox.labels import LABELS
from signals import voice, write_clip

CHROMIUM = Path("/usr/bin/chromium")
SR = 16000
#: the clip uploader (the same-speaker reference uploader beside it takes several files)
MAIN_UPLOADER = 'input[data-testid="stFileUploaderDropzoneInput"]:not([multiple])'

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api",
                    reason="the playwright pip package is not installed (pip install playwright)")
pytest.importorskip("streamlit", reason="streamlit is not installed (pip install 'emovox[web]')")

pytestmark = pytest.mark.slow  # starts `emovox app` and a headless Chromium


def write_long_voice(path: Path, repeats: int = 1) -> Path:
    """25.5 s per repeat: five 3 s voiced stretches of different pitch with 1.5-3 s of silence
    between."""
    parts = []
    for k, f0 in enumerate((140.0, 260.0, 180.0, 320.0, 200.0) * repeats):
        parts += [voice(3.0, SR, f0), np.zeros(int((1.5 + 0.75 * (k % 3)) * SR), np.float32)]
    return write_clip(path, np.concatenate(parts))


def write_voice(path: Path, seconds: float, f0: float, sr: int = 48000) -> Path:
    """A voice-like harmonic tone with vibrato, 16-bit PCM (what Chromium's fake capture
    device reads)."""
    return write_clip(path, voice(seconds, sr, f0), sr)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app_url(request, tmp_path):
    """`emovox app` on 127.0.0.1:<free port>, killed (its whole process group) afterwards."""
    model = os.environ.get("EMOVOX_BROWSER_MODEL") or request.getfixturevalue("tiny_model")
    port = free_port()
    log_path = tmp_path / "streamlit.log"
    work = tmp_path / "cwd"
    work.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emovox.cli", "app", "--model", str(model),
             "--host", "127.0.0.1", "--port", str(port), "--max-duration", "300"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=work, env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            if proc.poll() is not None:
                pytest.fail(f"emovox app exited ({proc.returncode}):\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"emovox app did not start in 45 s:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this test started
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _idle(page) -> None:
    """Wait until the script run is over (Streamlit's running indicator is gone)."""
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)


# Counts DOM changes during which the "Analysing" spinner is shown, and those during which the
# previous clip's caption ("<old name> · <seconds> s") or the empty page's prompt is still shown.
_WATCH_SPINNER_JS = """(old) => {
  window.__emovoxWatch = {spinner: 0, both: 0};
  const check = () => {
    const text = document.body.innerText;
    if (!text.includes('Analysing')) return;
    window.__emovoxWatch.spinner += 1;
    if (text.includes(old + ' · ') || text.includes('Upload a recording or record your voice'))
      window.__emovoxWatch.both += 1;
  };
  new MutationObserver(check).observe(document.body,
                                      {childList: true, subtree: true, characterData: true});
}"""


def test_upload_and_microphone_in_chromium(app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    clip = Path(os.environ.get("EMOVOX_BROWSER_CLIP") or
                write_voice(tmp_path / "clip.wav", 3.0, f0=180.0))
    mic = write_voice(tmp_path / "mic.wav", 6.0, f0=240.0)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    prediction = re.compile(r"^(" + "|".join(lab.capitalize() for lab in LABELS) + r") · \d+%$")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-background-networking",
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  f"--use-file-for-fake-audio-capture={mic}"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(40_000)
            page.goto(app_url)
            page.get_by_text("Upload a recording or record your voice").wait_for()

            # 1. upload a clip: the prediction, its confidence band, the signal plots
            page.locator(MAIN_UPLOADER).set_input_files(clip)
            page.get_by_text(re.compile(re.escape(clip.name) + r" · \d+\.\d s")).wait_for()
            expect(page.get_by_role("heading", name=prediction)).to_be_visible()
            expect(page.get_by_text(re.compile(r"^(high|medium|low) confidence$"))).to_be_visible()
            _idle(page)
            page.screenshot(path=shots / "upload.png")
            chip = page.locator('[data-testid="stFileChipName"]')
            expect(chip).to_have_attribute("title", clip.name)
            page.get_by_role("tab", name="MFCC").click()  # leave another Signal tab open

            # 2. record ~2 s from the fake microphone (fed from mic.wav)
            page.get_by_role("button", name="Record").click()
            stop = page.get_by_role("button", name="Stop recording")
            stop.wait_for()
            page.wait_for_timeout(2000)
            stop.click()
            page.get_by_text(re.compile(r"audio\.wav · \d+\.\d s")).wait_for()
            expect(page.get_by_role("heading", name=prediction)).to_be_visible()
            expect(page.get_by_text("no voice")).to_have_count(0)  # the fake mic had a voice
            _idle(page)
            page.screenshot(path=shots / "recording.png")
            # a new clip: fresh Signal tabs, exactly one selected (Waveform)
            signal = page.get_by_role("tablist").filter(has=page.get_by_role("tab", name="MFCC"))
            expect(signal).to_have_count(1)
            selected = signal.get_by_role("tab", selected=True)
            expect(selected).to_have_count(1)
            expect(selected).to_have_text("Waveform")
            # the uploader no longer shows the uploaded file's name
            expect(page.locator('[data-testid="stFileChipName"]')).to_have_count(0)

            assert page.locator('[data-testid="stException"]').count() == 0
            assert "Traceback" not in page.inner_text("body")
        finally:
            browser.close()

    for name in ("upload.png", "recording.png"):
        assert (shots / name).stat().st_size > 20_000
    if os.environ.get("EMOVOX_SCREENSHOT_DIR"):
        shutil.copytree(shots, os.environ["EMOVOX_SCREENSHOT_DIR"], dirs_exist_ok=True)


# Elements wider than the viewport or reaching past its right edge (hidden ones have no box).
_OVERFLOW_JS = """() => {
  const w = window.innerWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width > w + 1 || r.right > w + 1) {
      const id = el.getAttribute('data-testid') || el.className;
      out.push(`${el.tagName}.${id} ${r.left | 0}..${r.right | 0}`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, inner: w, over: out.slice(0, 15)};
}"""


def test_phone_width_timeline_and_evidence(app_url, tmp_path):
    """At 390 px (a phone) nothing overflows horizontally; then, wider, the timeline (with a
    hover tooltip) and the waveform with its shading are captured (docs/web-*.png)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    clip = Path(os.environ.get("EMOVOX_BROWSER_LONG_CLIP") or
                write_long_voice(tmp_path / "long voice.wav"))
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844},
                                    device_scale_factor=2)
            page.set_default_timeout(60_000)
            page.goto(app_url)
            page.get_by_text("Upload a recording or record your voice").wait_for()
            page.locator(MAIN_UPLOADER).set_input_files(clip)
            page.get_by_text(re.compile(r"Overall \(mean probability")).wait_for()
            _idle(page)
            charts = page.locator('[data-testid="stVegaLiteChart"]')
            expect(charts).to_have_count(4)  # probabilities, level, waveform, timeline
            page.wait_for_timeout(1500)  # let Vega lay the charts out at this width
            found = page.evaluate(_OVERFLOW_JS)
            assert found["scroll"] <= found["inner"], found
            assert found["over"] == [], found
            # the page scrolls inside Streamlit's main section: a tall viewport shows it all
            height = page.evaluate(
                "() => document.querySelector('[data-testid=stMain]').scrollHeight")
            page.set_viewport_size({"width": 390, "height": min(int(height) + 40, 6000)})
            page.wait_for_timeout(1000)
            found = page.evaluate(_OVERFLOW_JS)
            assert found["scroll"] <= found["inner"] and found["over"] == [], found
            page.screenshot(path=shots / "web-phone.png")

            page.set_viewport_size({"width": 1000, "height": 2400})
            page.wait_for_timeout(1500)
            _idle(page)
            timeline, waveform = charts.nth(3), charts.nth(2)
            timeline.scroll_into_view_if_needed()
            box = timeline.bounding_box()
            # hover a band, not a silence gap: the synthetic file's third voiced stretch
            # (9.75-12.75 s) is at about 0.45 of the width; other files may need another spot
            tip = page.locator("#vg-tooltip-element")
            for frac in (0.45, 0.3, 0.55, 0.2, 0.65, 0.1, 0.75):
                page.mouse.move(box["x"] + box["width"] * frac, box["y"] + box["height"] * 0.35)
                try:
                    tip.wait_for(state="visible", timeout=1500)
                    break
                except PlaywrightTimeout:
                    page.mouse.move(1, 1)
            tip.wait_for(state="visible", timeout=5000)
            expect(tip).to_contain_text("confidence")
            page.screenshot(path=shots / "web-timeline.png", clip={
                "x": 0, "y": box["y"] - 60, "width": 1000, "height": box["height"] + 260})
            page.mouse.move(1, 1)
            waveform.scroll_into_view_if_needed()
            box = waveform.bounding_box()
            page.screenshot(path=shots / "web-evidence.png", clip={
                "x": 0, "y": box["y"] - 70, "width": 1000, "height": box["height"] + 110})

            # a second long upload: "Analysing…" (shown after 0.5 s) never sits above the
            # previous answer, which is gone as soon as the new analysis starts. 255 s of
            # synthetic voice: its analysis takes well over 0.5 s even on an idle machine
            # (51 s did not: the spinner was never seen there)
            page.evaluate(_WATCH_SPINNER_JS, clip.name)
            again = write_long_voice(tmp_path / "again.wav", repeats=10)
            page.locator(MAIN_UPLOADER).set_input_files(again)
            page.get_by_text(re.compile(r"again\.wav · \d+\.\d s")).wait_for()
            _idle(page)
            watched = page.evaluate("() => window.__emovoxWatch")
            assert watched["spinner"] > 0, watched  # the analysis was seen running
            assert watched["both"] == 0, watched  # ...never above the old answer
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()

    for name in ("web-phone.png", "web-timeline.png", "web-evidence.png"):
        assert (shots / name).stat().st_size > 10_000
    if os.environ.get("EMOVOX_SCREENSHOT_DIR"):
        shutil.copytree(shots, os.environ["EMOVOX_SCREENSHOT_DIR"], dirs_exist_ok=True)
