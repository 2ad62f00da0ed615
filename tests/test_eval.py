"""Evaluation: the metrics against closed forms, and `glide eval` end to end on a tiny model."""

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import TINY_OPTIONS, make_official_checkpoint, run_cli

from glide.data.emoji import save_emoji_npz
from glide.evaluation.metrics import clip_score, fd_from_features, frechet_distance, precision_recall
from glide.official.convert import convert_official


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    # Diagonal Gaussians: sum of (m1 - m2)^2 + (s1 - s2)^2 over dimensions.
    expect = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expect, rel=1e-9)
    # Rotating both covariances by the same orthogonal matrix changes nothing.
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    got = frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert got == pytest.approx(expect, rel=1e-7)
    a = rng.normal(size=(400, 8))
    assert fd_from_features(a, a) == pytest.approx(0, abs=1e-9)
    assert fd_from_features(a, a + 3) == pytest.approx(8 * 9, rel=1e-9)


def test_precision_recall():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 4))
    assert precision_recall(real, real) == (1.0, 1.0)
    p, r = precision_recall(real, real + 100)
    assert (p, r) == (0.0, 0.0)
    # Generated samples collapsed onto a corner of the real cloud: precise, but poor coverage.
    collapsed = real[real[:, 0] > 1.0] * 0.5 + np.array([0.75, 0, 0, 0])
    p, r = precision_recall(real, collapsed)
    assert p > 0.8 and r < 0.5
    with pytest.raises(ValueError, match="needs more than 3"):
        precision_recall(real[:3], real)


def test_clip_score_is_clipped_cosine():
    img = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    txt = np.array([[2.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    assert clip_score(img, txt) == pytest.approx(100 * (1 + 0 + np.sqrt(0.5)) / 3)


@pytest.fixture(scope="module")
def tiny64(tmp_path_factory):
    d = tmp_path_factory.mktemp("ev")
    opts = dict(TINY_OPTIONS, image_size=64, channel_mult="1,2", attention_resolutions="16")
    make_official_checkpoint(d / "base.pt", opts)
    model = convert_official(d / "base.pt", "base", d / "base", opts)
    rng = np.random.default_rng(0)
    n = 24
    rows = [{"caption": f"thing {i}, twemoji style", "captions_alt": [], "split": "heldout_pair" if i % 2 else "train",
             "style": "twemoji", "emoji": f"{i:04X}", "hexcode": f"{i:04X}", "label": f"thing {i}"} for i in range(n)]
    images = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    save_emoji_npz(d / "emoji_64.npz", images, rows)
    return model, d


def test_eval_cli_table_and_cache(tiny64, tmp_path):
    model, data = tiny64
    args = ["eval", "--model", model, "--data", data, "--splits", "heldout_pair", "-n", "8",
            "--guidance-scales", "0,2", "--steps", "2", "--batch-size", "4", "--cache-dir", tmp_path / "cache",
            "--out", tmp_path / "ev", "-q"]
    p = run_cli(*args, check=True)
    assert "| guidance_scale |" in p.stdout and "fd_clip" in p.stdout and "fid" not in p.stdout
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    rows = res["rows"]
    assert [r["guidance_scale"] for r in rows] == ["real", 0.0, 2.0]
    for r in rows[1:]:
        assert r["n"] == 8 and r["fd_clip"] >= 0 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
    assert rows[0]["clip_score"] >= 0
    assert {f.name for f in (tmp_path / "ev").glob("*.png")} == {"g0.png", "g2.png"}
    cached = sorted((tmp_path / "ev" / "samples").glob("*.npz"))
    assert len(cached) == 2 and len(list((tmp_path / "cache").glob("real-clip-*.npz"))) == 1
    # A second run re-scores the cached samples: same numbers, samples untouched.
    stamps = [f.stat().st_mtime_ns for f in cached]
    run_cli(*args, check=True)
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["rows"] == rows
    assert [f.stat().st_mtime_ns for f in cached] == stamps


def test_eval_errors(tiny64, tmp_path):
    model, data = tiny64
    p = run_cli("eval", "--model", model, "--data", tmp_path / "nowhere", "--out", tmp_path / "x")
    assert p.returncode == 2 and "no evaluation data" in p.stderr and "Traceback" not in p.stderr
    p = run_cli("eval", "--model", model, "--data", data, "--splits", "nosuch", "--out", tmp_path / "x")
    assert p.returncode == 2 and "no images in split" in p.stderr
    p = run_cli("eval", "--model", model, "--data", data, "--inception-weights", tmp_path / "pt_inception.pth",
                "--out", tmp_path / "x")
    assert p.returncode == 2 and "pt_inception" in p.stderr and "Traceback" not in p.stderr
    assert not Path(tmp_path / "x" / "results.json").exists()


def test_eval_with_inception_weights_adds_fid(tiny64, tmp_path):
    import torch

    from glide.evaluation.inception import FIDInception

    torch.manual_seed(0)
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(FIDInception().state_dict(), weights)  # random weights in the real file's layout
    model, data = tiny64
    p = run_cli("eval", "--model", model, "--data", data, "--splits", "heldout_pair", "-n", "6",
                "--guidance-scales", "1", "--steps", "2", "--inception-weights", weights,
                "--cache-dir", tmp_path / "cache", "--out", tmp_path / "ev", "-q", check=True)
    assert "| fid |" in p.stdout
    row = json.loads((tmp_path / "ev" / "results.json").read_text())["rows"][1]
    assert row["fid"] > 0 and np.isfinite(row["fid"])
    assert len(list((tmp_path / "cache").glob("real-inception-*.npz"))) == 1
