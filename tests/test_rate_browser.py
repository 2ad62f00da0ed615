"""glide rate serve in a real browser (Playwright + Debian's Chromium): cast votes and a skip by clicking, and
check that each lands in SQLite once, with the model that was shown on the chosen side.

Screenshots go to $GLIDE_SCREENSHOTS (docs/images/rate for the docs) or the test's temporary folder.
"""

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers import free_port, wait_for_server

CHROMIUM = os.environ.get("GLIDE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]

sync_playwright = pytest.importorskip("playwright.sync_api", reason="bash scripts/setup.sh --browser").sync_playwright
COLOURS = {"g1": (200, 40, 40), "g3": (40, 40, 200)}


@pytest.fixture
def server(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (bash scripts/setup.sh --browser)")
    specs = []
    for name, colour in COLOURS.items():
        d = tmp_path / name
        d.mkdir()
        for k in range(3):
            im = Image.new("RGB", (64, 64), "white")
            im.paste(colour, (8 + 8 * k, 16, 40 + 8 * k, 48))
            im.save(d / f"s_{k:03d}.png")
            (d / f"s_{k:03d}.txt").write_text(["red apple", "blue heart", "green circle"][k] + ", twemoji style\n")
        specs.append(f"{name}={d}")
    port, db = free_port(), tmp_path / "votes.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "glide", "rate", "serve", "--samples", *specs, "--db", db,
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    wait_for_server(proc, url, 60, lambda: f"glide rate serve did not start: {proc.stderr.read().decode()}")
    yield url, db
    proc.terminate()
    proc.wait(timeout=30)


def test_vote_in_the_browser(server, tmp_path):
    url, db = server
    shots = Path(os.environ.get("GLIDE_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    hosts = set()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 820, "height": 700})
        page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
        page.goto(url + "?rater=tester")
        shown, token = [], ""
        for k in range(3):
            page.wait_for_function(f"document.body.dataset.token && document.body.dataset.token !== '{token}' && "
                                   "document.getElementById('right-img').complete && "
                                   "document.getElementById('right-img').naturalWidth > 0")
            token = page.evaluate("document.body.dataset.token")
            caption = page.inner_text("#caption")
            # Blind: no setting's name anywhere in the page. The page's random token is left out of the check: it
            # is base64 and contains "g1" about once in a hundred pages.
            html = page.content().replace(token, "")
            assert not re.search(r"(?<![\w-])g[13](?![\w-])", html), "the page names a setting"
            assert page.is_disabled("#submit")
            if k == 2:
                page.screenshot(path=str(shots / "rate_skip.png"))
                page.click("#skip")
            else:
                page.click("div[data-q=realism] button[data-side=left]")
                assert page.is_disabled("#submit")  # both questions first
                page.click("div[data-q=caption] button[data-side=right]")
                if k == 0:
                    page.screenshot(path=str(shots / "rate_page.png"))
                page.click("#submit")
            shown.append(caption)
            page.wait_for_function(f"document.getElementById('status').textContent.startsWith('{k + 1} comparison')")
        browser.close()
    assert hosts == {url.split("/")[2]}  # nothing fetched from anywhere else
    con = sqlite3.connect(db)
    rows = con.execute("SELECT c.caption, v.question, v.answer, v.winner, c.left_model, c.model_a, c.model_b "
                       "FROM votes v JOIN comparisons c USING (token) WHERE v.rater = 'tester' "
                       "ORDER BY c.served_at, v.question").fetchall()
    con.close()
    assert len(rows) == 6
    for caption, question, answer, winner, left, a, b in rows:
        assert f"\u201c{caption}\u201d" in shown
        right = b if left == a else a
        expected = {"left": left, "right": right, "skip": None}[answer]
        assert winner == expected
    assert [r[2] for r in rows] == ["right", "left", "right", "left", "skip", "skip"]
