"""glide data filter: policies (word-boundary keywords, metadata, zero-shot CLIP with precision/recall), every
input format kept in its format, the report, the policy hash, and what glide train / glide export record."""

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import run_cli

from glide.data.datasets import open_source
from glide.data.filter import data_filter_record, filter_data
from glide.data.policy import ClipJudge, caption_matcher, load_policy, parse_policy, Rule
from glide.errors import GlideError

CAPTIONS = ["a man, red", "snowman, blue", "a red apple", "a dagger", "a woman waving", "manual gear",
            "green tree", "a family of four"]
GROUPS = ["people", "weather", "food", "objects", "people", "objects", "nature", "people"]
POLICY = """
name = "test"
description = "people and weapons"
[[rule]]
name = "people"
kind = "caption"
keywords = ["man", "woman", "family"]
[[rule]]
name = "weapons-meta"
kind = "metadata"
field = "group"
values = ["objects"]
"""


def image(k: int) -> np.ndarray:
    im = np.full((32, 32, 3), 255, np.uint8)
    im[4 + k : 20 + k, 6:22] = (30 * k, 255 - 30 * k, 100)
    return im


@pytest.fixture
def policy(tmp_path):
    p = tmp_path / "policy.toml"
    p.write_text(POLICY)
    return p


# Kept under POLICY: "snowman, blue", "a red apple", "green tree" (word boundaries: "snowman" is no "man").
KEPT = {1, 2, 6}


def test_keywords_match_whole_words_only():
    m = caption_matcher(Rule(name="r", kind="caption", keywords=["man", "bow and arrow"], regexes=[r"gun\b"]))
    assert m(["A Man, red"]) and m(["x", "man's shoe"]) and m(["a bow and arrow"]) and m(["shotgun"])
    assert not m(["snowman"]) and not m(["manual"]) and not m(["woman"]) and not m(["bow"]) and not m(["gunk"])


def test_policy_errors_and_hash(tmp_path, policy):
    p = load_policy(policy)
    assert len(p.sha256) == 64
    other = tmp_path / "other.toml"
    other.write_text(POLICY.replace('description = "people and weapons"', 'description = "reworded"'))
    assert load_policy(other).sha256 == p.sha256  # the description does not change what the policy does
    other.write_text(POLICY.replace('"family"]', '"family", "boy"]'))
    assert load_policy(other).sha256 != p.sha256
    for bad, msg in ([{"name": "x", "kind": "caption"}], "needs keywords or regexes"), \
                    ([{"name": "x", "kind": "magic"}], "kind must be"), \
                    ([{"name": "x", "kind": "caption", "regexes": ["(a"]}], "invalid regex"), \
                    ([{"name": "x", "kind": "clip", "concepts": ["a"], "neutral": ["b"], "threshold": 2}], "threshold"), \
                    ([{"name": "x", "kind": "metadata", "field": "g", "values": ["a"], "colour": 1}], "unknown key"):
        with pytest.raises(GlideError, match=msg):
            parse_policy({"rule": bad})


def test_npz_keeps_its_arrays_and_train_records_the_policy(tmp_path, policy):
    src = tmp_path / "data.npz"
    alt = [[f"alt {k}"] for k in range(8)]
    np.savez_compressed(src, images=np.stack([image(k) for k in range(8)]), captions=np.array(CAPTIONS),
                        captions_alt=np.array(json.dumps(alt)), split=np.array(["train"] * 7 + ["heldout_emoji"]),
                        group=np.array(GROUPS))
    s = filter_data(str(src), str(policy), str(tmp_path / "out"), progress=False)
    assert (s["total"], s["kept"], s["removed"]) == (8, 3, 5)
    assert s["rules"]["people"]["removed"] == 3 and s["rules"]["weapons-meta"]["removed"] == 2
    assert s["rules"]["people"]["removed_only_by_this"] == 3  # no caption naming a person is in "objects"
    with np.load(tmp_path / "out" / "data.npz") as z:
        assert list(z["captions"]) == [CAPTIONS[k] for k in sorted(KEPT)]
        assert np.array_equal(z["images"], np.stack([image(k) for k in sorted(KEPT)]))
        assert json.loads(str(z["captions_alt"])) == [alt[k] for k in sorted(KEPT)]
        assert list(z["group"]) == [GROUPS[k] for k in sorted(KEPT)]
    report = tmp_path / "out-report"
    assert {p.name for p in report.iterdir()} == {"report.md", "report.json", "grid_people.png", "grid_weapons-meta.png"}
    assert load_policy(policy).sha256 in (report / "report.md").read_text()
    assert not list(tmp_path.glob(".out*"))  # no temporaries left
    rec = data_filter_record(tmp_path / "out" / "data.npz")
    assert rec["policy_sha256"] == load_policy(policy).sha256 and (rec["kept"], rec["removed"]) == (3, 5)
    assert data_filter_record(src) is None

    # train on it, export: the run, the checkpoint and the model card name the policy
    from glide.training import TrainConfig, export_run
    from glide.training.trainer import Trainer

    cfg = TrainConfig(preset="tiny", data=str(tmp_path / "out" / "data.npz"), out=str(tmp_path / "run"), max_steps=1,
                      batch_size=2, workers=0, checkpoint_every=1)
    Trainer(cfg).run()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data_filter"]["policy_sha256"] == rec["policy_sha256"]
    model = export_run(tmp_path / "run", tmp_path / "model")
    assert json.loads((model / "config.json").read_text())["data"]["filter"]["policy_sha256"] == rec["policy_sha256"]
    card = (model / "README.md").read_text()
    assert rec["policy_sha256"] in card and "policy `test`" in card
    with pytest.raises(GlideError, match="already exists"):
        filter_data(str(src), str(policy), str(tmp_path / "out"), progress=False)


def test_folder_and_manifest_keep_their_format(tmp_path, policy, capsys):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    for k, (cap, group) in enumerate(zip(CAPTIONS, GROUPS)):
        stem = folder / ("sub" if k % 2 else "") / f"im{k}"
        Image.fromarray(image(k)).save(stem.with_suffix(".png"))
        stem.with_suffix(".txt").write_text(cap)
        stem.with_suffix(".json").write_text(json.dumps({"group": group}))
    p = run_cli("data", "filter", folder, "--policy", policy, "--out", tmp_path / "f-out", "-q")
    assert p.returncode == 0, p.stderr
    kept = sorted(x.relative_to(tmp_path / "f-out").as_posix() for x in (tmp_path / "f-out").rglob("*.png"))
    assert kept == sorted(f"{'sub/' if k % 2 else ''}im{k}.png" for k in KEPT)
    src = open_source(tmp_path / "f-out", 32)
    assert sorted(src.caption(i) for i in range(len(src))) == sorted(CAPTIONS[k] for k in KEPT)
    assert (tmp_path / "f-out" / "filter.json").is_file()

    manifest = tmp_path / "m" / "manifest.jsonl"
    manifest.parent.mkdir()
    with open(manifest, "w") as f:
        for k, (cap, group) in enumerate(zip(CAPTIONS, GROUPS)):
            Image.fromarray(image(k)).save(manifest.parent / f"{k}.png")
            f.write(json.dumps({"image": f"{k}.png", "caption": cap, "group": group}) + "\n")
    filter_data(str(manifest), str(policy), str(tmp_path / "m-out"), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "m-out" / "manifest.jsonl").read_text().splitlines()]
    assert [r["caption"] for r in rows] == [CAPTIONS[k] for k in sorted(KEPT)]
    src = open_source(tmp_path / "m-out" / "manifest.jsonl", 32)
    assert np.array_equal(src.load(0)[0], image(min(KEPT)))  # the kept images were copied beside it

    from glide.cli import main

    assert main(["data", "filter", str(manifest), "--policy", str(tmp_path / "missing.toml"), "--out",
                 str(tmp_path / "x")]) == 2
    assert "policy file not found" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_webdataset_shards_are_filtered_shard_by_shard(tmp_path, policy):
    shards = tmp_path / "shards"
    shards.mkdir()
    for s in range(2):
        with tarfile.open(shards / f"part-{s}.tar", "w") as tar:
            for k in range(s * 4, s * 4 + 4):
                buf = io.BytesIO()
                Image.fromarray(image(k)).save(buf, format="PNG")
                for ext, payload in (("png", buf.getvalue()), ("txt", CAPTIONS[k].encode()),
                                     ("json", json.dumps({"group": GROUPS[k]}).encode())):
                    info = tarfile.TarInfo(f"{k:05d}.{ext}")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    s = filter_data(str(shards / "*.tar"), str(policy), str(tmp_path / "w-out"), progress=False)
    assert s["files"] == {"part-0.tar": {"seen": 4, "kept": 2}, "part-1.tar": {"seen": 4, "kept": 1}}
    with tarfile.open(tmp_path / "w-out" / "part-0.tar") as tar:
        names = tar.getnames()
        assert names == ["00001.png", "00001.txt", "00001.json", "00002.png", "00002.txt", "00002.json"]
        with tarfile.open(shards / "part-0.tar") as orig:  # byte for byte
            assert tar.extractfile("00002.png").read() == orig.extractfile("00002.png").read()
    assert data_filter_record(str(tmp_path / "w-out" / "*.tar"))["kept"] == 3


def test_clip_rule_precision_and_recall(tmp_path):
    """A CLIP rule's scores are the zero-shot concept probability; the report's TP/FP/FN follow from them."""
    from glide.clip.io import save_clip_dir
    from glide.clip.model import NoisedCLIP, get_clip_preset

    torch.manual_seed(0)
    cfg = get_clip_preset("tiny")
    save_clip_dir(tmp_path / "clip", NoisedCLIP(cfg).state_dict(), cfg)
    rule = dict(name="c", kind="clip", model=str(tmp_path / "clip"), concepts=["a man", "a woman"],
                neutral=["a tree", "an apple"], labels={"field": "group", "values": ["people"]})
    images = np.stack([image(k) for k in range(8)])
    from glide.clip.io import load_clip

    judge = ClipJudge(Rule(**rule), load_clip(tmp_path / "clip"))
    scores = judge(images)
    assert np.all((scores > 0) & (scores < 1))
    threshold = float(np.median(scores))
    (tmp_path / "p.toml").write_text(
        f'[[rule]]\nname = "c"\nkind = "clip"\nmodel = "{tmp_path / "clip"}"\nconcepts = ["a man", "a woman"]\n'
        f'neutral = ["a tree", "an apple"]\nthreshold = {threshold}\nlabels = {{ field = "group", values = ["people"] }}\n')
    np.savez(tmp_path / "d.npz", images=images, captions=np.array(CAPTIONS), group=np.array(GROUPS))
    s = filter_data(str(tmp_path / "d.npz"), str(tmp_path / "p.toml"), str(tmp_path / "o"), progress=False)
    fired = scores > threshold
    truth = np.array([g == "people" for g in GROUPS])
    lab = s["rules"]["c"]["labels"]
    assert (lab["tp"], lab["fp"], lab["fn"]) == (int((fired & truth).sum()), int((fired & ~truth).sum()),
                                                 int((~fired & truth).sum()))
    assert lab["precision"] == pytest.approx(lab["tp"] / max(lab["tp"] + lab["fp"], 1), abs=1e-4)
    assert s["kept"] == int((~fired).sum())
    for c in lab["curve"]:  # precision/recall at other thresholds, from the same scores
        assert c["removed"] == int((scores > c["threshold"]).sum())
        assert c["recall"] == pytest.approx(((scores > c["threshold"]) & truth).sum() / truth.sum(), abs=1e-4)
    # the hash covers the CLIP's weights: other weights, another policy
    h = load_policy(tmp_path / "p.toml").sha256
    torch.manual_seed(1)
    save_clip_dir(tmp_path / "clip", NoisedCLIP(cfg).state_dict(), cfg)
    assert load_policy(tmp_path / "p.toml").sha256 != h


def test_emoji_style_dataset_folder(tmp_path, policy):
    """A `glide data emoji` folder: its .npz and its manifest are filtered alike, its README (licenses) kept."""
    d = tmp_path / "emoji"
    (d / "images").mkdir(parents=True)
    np.savez_compressed(d / "emoji_32.npz", images=np.stack([image(k) for k in range(8)]), captions=np.array(CAPTIONS),
                        group=np.array(GROUPS), split=np.array(["train"] * 8))
    with open(d / "manifest.jsonl", "w") as f:
        for k in range(8):
            Image.fromarray(image(k)).save(d / "images" / f"{k}.png")
            f.write(json.dumps({"image": f"images/{k}.png", "caption": CAPTIONS[k], "group": GROUPS[k],
                                "size": 32}) + "\n")
    (d / "README.md").write_text("# Emoji\nCC-BY 4.0, attribution.\n")
    s = filter_data(str(d), str(policy), str(tmp_path / "out"), progress=False)
    assert s["total"] == 8 and s["files"]["emoji_32.npz"] == s["files"]["manifest.jsonl"] == {"seen": 8, "kept": 3}
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{k}.png" for k in sorted(KEPT)]
    assert "CC-BY 4.0" in (out / "README.md").read_text() and "filtered" in (out / "README.md").read_text()
    src = open_source(out, 32)
    assert sorted(src.caption(i) for i in range(len(src))) == sorted(CAPTIONS[k] for k in KEPT)


def test_emoji_groups_come_from_emojibase(tmp_path, monkeypatch):
    """The emoji data stores no CLDR group: metadata rules on group/subgroup look it up by hexcode (skin-tone
    variants included) in the cached emojibase package."""
    from glide.data import emoji
    from glide.data.policy import metadata_value

    root = tmp_path / "emojibase-data-17.0.0"
    (root / "en").mkdir(parents=True)
    (root / "meta").mkdir()
    (root / "meta" / "groups.json").write_text(json.dumps(
        {"groups": {"1": "people-body", "4": "food-drink"}, "subgroups": {"16": "hand-fingers-open", "42": "food-fruit"}}))
    (root / "en" / "data.json").write_text(json.dumps([
        {"hexcode": "1F44B", "group": 1, "subgroup": 16, "skins": [{"hexcode": "1F44B-1F3FB"}]},
        {"hexcode": "1F34E", "group": 4, "subgroup": 42}]))
    monkeypatch.setattr(emoji.sources, "_CLDR", {})
    monkeypatch.setattr(emoji.sources, "default_work_dir", lambda: tmp_path)
    assert metadata_value({"hexcode": "1F44B-1F3FB", "emoji": "1F44B"}, "group") == "people-body"
    assert metadata_value({"hexcode": "1f34e"}, "subgroup") == "food-fruit"
    assert metadata_value({"hexcode": "FFFF"}, "group") is None
    assert metadata_value({"group": "stored"}, "group") == "stored"  # a stored value wins
