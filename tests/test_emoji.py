"""The emoji dataset builder's offline parts: splits, captions, rendering, array files, safe extraction."""

import io
import json
import tarfile

import numpy as np
import pytest

from glide.data import emoji
from glide.data.arrays import load_arrays, save_arrays
from glide.data.emoji.captions import _unit
from glide.errors import GlideError

STYLES = ["twemoji", "openmoji", "openmoji-line", "noto"]
IDS = [f"1F{i:04X}" for i in range(20000)]  # synthetic hexcodes


def test_split_is_deterministic_and_case_insensitive():
    assert [emoji.split_of(i, "twemoji") for i in IDS[:500]] == [emoji.split_of(i, "twemoji") for i in IDS[:500]]
    assert all(emoji.split_of(i, "noto") == emoji.split_of(i.lower(), "noto") for i in IDS[:500])
    # Pinned values: if these change, every built dataset's split has silently changed too.
    assert _unit("identity/1F34E") == pytest.approx(0.2891062397070728, abs=1e-15)
    assert [emoji.split_of(i, "twemoji") for i in ["1F31B", "1F32E", "1F30D", "1F316", "1F34E"]] == [
        "heldout_emoji", "heldout_emoji", "heldout_pair", "heldout_pair", "train"]


def test_split_proportions_and_heldout_emoji_in_every_style():
    splits = {s: [emoji.split_of(i, s) for i in IDS] for s in STYLES}
    n = len(IDS)
    heldout = {i for i, sp in zip(IDS, splits["twemoji"]) if sp == "heldout_emoji"}
    for s in STYLES:
        assert {i for i, sp in zip(IDS, splits[s]) if sp == "heldout_emoji"} == heldout
        pair = splits[s].count("heldout_pair") / n
        assert 0.04 < pair < 0.06  # 5% of the remaining 95%
    assert 0.04 < len(heldout) / n < 0.06
    # A held-out pair is a per-style decision: the same emoji is mostly trained in the other styles.
    pairs = [i for i, sp in zip(IDS, splits["twemoji"]) if sp == "heldout_pair"]
    assert sum(emoji.split_of(i, "openmoji") == "train" for i in pairs) / len(pairs) > 0.9


def test_captions():
    assert emoji.caption_label("flag: Japan") == "flag of Japan"
    assert emoji.caption_label("keycap: 1") == "keycap 1"
    assert emoji.caption_label("man: red hair") == "man, red hair"
    cap, alts = emoji.make_captions("red apple", ["apple", "fruit", "red"], "twemoji")
    assert cap == "red apple, twemoji style"
    assert "red apple, fruit, twemoji style" in alts
    assert not any(", red, " in a or ", apple, " in a for a in alts)  # tags already in the label
    assert all("twemoji style" in a for a in alts)
    assert emoji.make_captions("red apple", ["fruit"], "openmoji-line")[0] == "red apple, openmoji line art"
    assert emoji.make_captions("red apple", ["fruit"], "noto")[0] == "red apple, noto emoji style"
    tags = ["a", "b", "c", "d"]
    assert emoji.make_captions("ox", tags, "noto") == emoji.make_captions("ox", list(tags), "noto")


def test_twemoji_file_names():
    assert emoji.twemoji_names("00A9") == ["a9"]
    assert emoji.twemoji_names("0023-FE0F-20E3") == ["23-fe0f-20e3", "23-20e3"]
    assert emoji.twemoji_names("1F34E") == ["1f34e"]


def test_render_svg():
    pytest.importorskip("resvg_py")
    # A red square filling the left half of a 2:1 canvas: output is square, centered, on white.
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 10">'
           '<rect width="10" height="10" fill="#ff0000"/></svg>')
    a = np.asarray(emoji.render_svg(svg, 32))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert (a[0, 0] == 255).all()  # padding above is white
    assert tuple(a[16, 8]) == (255, 0, 0)
    assert (a[16, 24] == 255).all()  # the transparent right half composites to white


def _rows(n, style="twemoji"):
    rows = []
    for i in range(n):
        cap, alts = emoji.make_captions(f"thing {i}", ["tag"], style)
        rows.append({"caption": cap, "captions_alt": alts, "split": emoji.split_of(f"{i:X}", style),
                     "style": style, "emoji": f"{i:X}", "hexcode": f"{i:X}", "label": f"thing {i}"})
    return rows


def test_npz_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    rows = _rows(5)
    rows[0]["label"] = "café ☕"  # non-ASCII survives
    path = tmp_path / "emoji_8.npz"
    save_arrays(path, images, rows)
    d = load_arrays(path)
    assert d["size"] == 8 and np.array_equal(d["images"], images)
    for k in ("captions", "split", "style", "emoji", "hexcode", "label"):
        src = "caption" if k == "captions" else k
        assert d[k] == [r[src] for r in rows]
    assert d["captions_alt"] == [r["captions_alt"] for r in rows]
    with np.load(path, allow_pickle=False) as z:  # the training loader's reading of captions_alt
        assert json.loads(str(z["captions_alt"])) == d["captions_alt"]


def _tar_with(path, name, data=b"x"):
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("name", ["../evil.txt", "package/../../evil.txt", "/tmp/evil.txt"])
def test_safe_extract_refuses_escaping_paths(tmp_path, name):
    tgz = tmp_path / "bad.tgz"
    _tar_with(tgz, name)
    dest = tmp_path / "dest"
    with pytest.raises(GlideError, match="unsafe path"):
        emoji.safe_extract(tgz, dest)
    assert not (tmp_path / "evil.txt").exists() and not dest.exists()


def test_safe_extract_refuses_links_and_accepts_normal_files(tmp_path):
    tgz = tmp_path / "link.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("package/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(GlideError, match="link"):
        emoji.safe_extract(tgz, tmp_path / "d1")
    good = tmp_path / "good.tgz"
    _tar_with(good, "package/a.svg", b"<svg/>")
    emoji.safe_extract(good, tmp_path / "d2")
    assert (tmp_path / "d2" / "package" / "a.svg").read_bytes() == b"<svg/>"


def test_fetch_without_npm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(emoji.npm.shutil, "which", lambda name: None)
    with pytest.raises(GlideError, match="npm"):
        emoji.fetch_npm("openmoji", "17.0.0", tmp_path)


def test_out_must_be_empty_or_a_previous_build(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(GlideError, match="not empty"):
        emoji.build_emoji_dataset(tmp_path, work_dir=tmp_path / "cache", progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_contact_sheet_uses_training_images_only():
    images = np.zeros((10, 4, 4, 3), dtype=np.uint8)
    rows = [{"split": "train" if i % 2 else "heldout_pair"} for i in range(10)]
    sheet = emoji.contact_sheet(images, rows, n=48, cols=8)
    assert sheet.size == (8 * 6 + 2, 6 + 2)  # 5 training images fit one row
    assert emoji.contact_sheet(images, [{"split": "heldout_emoji"}] * 10) is None


def _square(colour):
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 36 36">'
            f'<rect x="4" y="4" width="28" height="28" fill="{colour}"/></svg>')


def test_build_end_to_end_from_a_fake_cache(tmp_path):
    """The whole build offline: packages pre-placed in the cache, so npm is never called."""
    pytest.importorskip("resvg_py")
    cache = tmp_path / "cache"
    base = cache / "emojibase-data-17.0.0" / "en"
    base.mkdir(parents=True)
    hand = {"hexcode": "1F44B", "emoji": "\U0001F44B", "label": "waving hand", "group": 1, "tags": ["wave"],
            "skins": [{"hexcode": "1F44B-1F3FB", "emoji": "", "label": "waving hand: light skin tone"},
                      {"hexcode": "1F44B-1F3FF", "emoji": "", "label": "waving hand: dark skin tone"}]}
    apple = {"hexcode": "1F34E", "emoji": "\U0001F34E", "label": "red apple", "group": 4, "tags": ["fruit"]}
    letter = {"hexcode": "1F1E6", "emoji": "", "label": "regional indicator A"}  # no group: left out
    (base / "data.json").write_text(json.dumps([hand, apple, letter]))
    tw = cache / "twemoji-svg-15.0.0"
    tw.mkdir()
    (tw / "1f44b.svg").write_text(_square("#ffcc00"))
    (tw / "1f44b-1f3fb.svg").write_text(_square("#ffcc00"))  # same as the base: dropped
    (tw / "1f44b-1f3ff.svg").write_text(_square("#663300"))
    (tw / "1f34e.svg").write_text(_square("#ff0000"))

    out = tmp_path / "ds"
    s = emoji.build_emoji_dataset(out, sizes=(16, 8), styles=["twemoji"], work_dir=cache, progress=False,
                                  workers=1)
    assert s["images"] == {8: 3, 16: 3} and s["duplicates"] == {"twemoji": 1}
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "contact_sheet.png", "emoji_16.npz", "emoji_8.npz", "images", "manifest.jsonl"]
    assert not list(tmp_path.glob(".ds*"))  # no temporary folder left behind
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all((out / r["image"]).is_file() for r in rows)
    dark = next(r for r in rows if r["hexcode"] == "1F44B-1F3FF" and r["size"] == 8)
    assert dark["caption"] == "waving hand, dark skin tone, twemoji style"
    assert dark["emoji"] == "1F44B" and dark["split"] == emoji.split_of("1F44B", "twemoji")
    assert dark["license"] == "CC-BY-4.0"
    d = load_arrays(out / "emoji_8.npz")
    assert d["images"].shape == (3, 8, 8, 3) and d["hexcode"] == ["1F44B", "1F44B-1F3FF", "1F34E"]
    assert tuple(d["images"][2][4, 4]) == (255, 0, 0)

    # Building again replaces the previous build.
    emoji.build_emoji_dataset(out, sizes=(8,), styles=["twemoji"], work_dir=cache, progress=False, workers=1)
    assert not (out / "emoji_16.npz").exists() and (out / "emoji_8.npz").is_file()
