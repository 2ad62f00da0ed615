"""Evaluation: the metrics against closed forms, and `glide eval` end to end on a tiny model."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import TINY_OPTIONS, make_official_checkpoint, run_cli

from glide.data.arrays import save_arrays
from glide.evaluation.metrics import (clip_score, drawn_colour, psnr, fd_from_features, frechet_distance, inception_score,
                                      paired_precision_recall_test, precision_recall)
from glide.official.convert import convert_official
from glide.runtime import cpu_prefers_bf16


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


def test_precision_recall_closed_forms():
    rng = np.random.default_rng(2)
    # Mode dropping: real = two far-apart Gaussians with equal mass, fake = one of them.
    # Expected: every fake sample is realistic (P = 1) and half the real mass is covered (R = 1/2).
    centres = np.array([[0.0, 0.0], [40.0, 0.0]])
    real = rng.normal(size=(2000, 2)) + centres[rng.integers(0, 2, 2000)]
    fake = rng.normal(size=(2000, 2))
    p, r = precision_recall(real, fake)
    assert p > 0.97 and r == pytest.approx((real[:, 0] < 20).mean(), abs=0.03)
    # Shifted supports: real ~ U[0,1]^2, fake ~ U[0.5,1.5] x [0,1]; half of each lies in the other's
    # support, so P = R = 1/2 up to a k-NN radius at the edges.
    real = rng.uniform(size=(3000, 2))
    fake = rng.uniform(size=(3000, 2)) + np.array([0.5, 0.0])
    p, r = precision_recall(real, fake)
    assert p == pytest.approx(0.5, abs=0.04) and r == pytest.approx(0.5, abs=0.04)


def test_clip_score_is_clipped_cosine():
    img = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    txt = np.array([[2.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    assert clip_score(img, txt) == pytest.approx(100 * (1 + 0 + np.sqrt(0.5)) / 3)


def test_drawn_colour_ignores_the_white_ground():
    x = np.full((3, 16, 16, 3), 255, np.uint8)
    x[0, :4, :4] = (200, 10, 10)  # 16 red pixels, the rest white
    x[0, 4:6, :4] = (10, 10, 100)  # and 8 dark blue ones
    x[1, 0, :5] = 0  # 5 drawn pixels: too few, counts as white
    x[2] = 240  # light grey everywhere: above the threshold, so white
    got = drawn_colour(x)
    assert np.allclose(got[0], [(200 * 16 + 10 * 8) / 24, 10, (10 * 16 + 100 * 8) / 24])
    assert np.array_equal(got[1:], np.full((2, 3), 255.0))


def test_psnr_closed_forms():
    """The one PSNR every benchmark uses: uint8 off by one everywhere is 20 log10(255) dB; [-1, 1] images with
    peak 2; one value per image; tensors and arrays alike; identical images are inf."""
    a = np.full((2, 4, 4, 3), 100, np.uint8)
    b = a + np.array([1, 3], np.uint8).reshape(2, 1, 1, 1)
    assert psnr(a, a + 1) == pytest.approx(20 * np.log10(255))
    assert psnr(a, b, per_image=True) == pytest.approx([20 * np.log10(255), 20 * np.log10(255 / 3)])
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 5))  # the mean error over both images
    x = torch.zeros(3, 3, 8, 8)
    assert psnr(x, x + 0.5, peak=2.0, per_image=True) == pytest.approx([20 * np.log10(4)] * 3)
    assert psnr(torch.from_numpy(a), a) == float("inf")


def test_inception_score_closed_forms():
    eye = np.eye(10)
    # Confident and spread evenly over K classes: IS = K. The same confident prediction everywhere, or no
    # confidence at all: IS = 1.
    assert inception_score(np.repeat(eye, 3, axis=0))[0] == pytest.approx(10)
    assert inception_score(np.tile(eye[:4], (5, 1)))[0] == pytest.approx(4)
    assert inception_score(np.tile(eye[2], (30, 1)))[0] == pytest.approx(1)
    assert inception_score(np.full((30, 10), 0.1))[0] == pytest.approx(1)
    # Two classes, every image p = (a, 1 - a) or (1 - a, a), half each: IS = exp(log 2 - H(a)).
    a = 0.8
    probs = np.array([[a, 1 - a], [1 - a, a]] * 10)
    h = -(a * np.log(a) + (1 - a) * np.log(1 - a))
    assert inception_score(probs)[0] == pytest.approx(np.exp(np.log(2) - h))
    # Splits: each half holds one class only, so each split scores 1 with no spread.
    assert inception_score(np.array([eye[0]] * 5 + [eye[1]] * 5), splits=2) == pytest.approx((1.0, 0.0))
    with pytest.raises(ValueError):
        inception_score(np.ones(5))


def test_inception_logits_are_unbiased_classifier():
    import torch

    from glide.evaluation.inception import FIDInception

    net = FIDInception()
    f = torch.randn(3, 2048)
    # The original IS code multiplies pool3 by the classifier matrix and leaves the bias out.
    torch.testing.assert_close(net.logits(f), net.fc(f) - net.fc.bias)


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
    save_arrays(d / "emoji_64.npz", images, rows)
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
    assert [r["guidance"] for r in rows] == ["real", "cfg", "cfg"]
    assert [r["guidance_scale"] for r in rows] == [None, 0.0, 2.0]
    for r in rows[1:]:
        assert r["n"] == 8 and r["fd_clip"] >= 0 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
    assert rows[0]["clip_score"] >= 0
    assert {f.name for f in (tmp_path / "ev").glob("*.png")} == {"g0.png", "g2.png"}
    cached = sorted((tmp_path / "ev" / "samples").glob("*/*.npz"))
    assert len(cached) == 4 and len(list((tmp_path / "cache").glob("real-clip-*.npz"))) == 1
    # A second run re-scores the cached samples: same numbers, samples untouched.
    stamps = [f.stat().st_mtime_ns for f in cached]
    run_cli(*args, check=True)
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["rows"] == rows
    assert [f.stat().st_mtime_ns for f in cached] == stamps
    # Another precision makes samples of its own rather than reusing these.
    assert res["config"]["dtype"] == ("mixed" if cpu_prefers_bf16() else "fp32")  # an eps model on a CPU
    run_cli(*args, "--dtype", "bf16", check=True)
    assert len(list((tmp_path / "ev" / "samples").glob("*/*.npz"))) == 8
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["config"]["dtype"] == "bf16"


def test_sample_cache_keys_intervals_by_the_timesteps_they_guide(tiny64):
    from glide.evaluation.evaluate import _interval_key
    from glide.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(tiny64[0], device="cpu")
    inf = float("inf")
    assert _interval_key(pipe, (0.5, inf)) == _interval_key(pipe, (0.5, 1e9)) != _interval_key(pipe, (1.0, inf))
    assert _interval_key(pipe, (0.0, inf)) == _interval_key(pipe, (0.0, 1e9)) == _interval_key(pipe, None) == []
    assert _interval_key(pipe, (0.5, inf), reuse=True) == [*_interval_key(pipe, (0.5, inf)), "reuse"]
    assert _interval_key(pipe, (1e6, 1e9)) == ["guided-tnone"]  # above every sigma of the schedule


def test_model_key_follows_the_weights_not_the_paperwork(tiny64, tmp_path):
    """Eval caches key on the model's contents: a copy of the folder (new times, as after a clone) or an edited
    model card keeps them; other weights do not."""
    import shutil

    from glide.checkpoint import model_key

    model = Path(tiny64[0])
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    (copy / "MODEL_CARD.md").write_text("# a card written later\n")
    (copy / "NOTICE").write_text("attributions\n")
    (copy / "prompts.txt").write_text("a caption\n")
    assert model_key(copy) == model_key(model)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_key(copy) != model_key(model)


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
    real, row = json.loads((tmp_path / "ev" / "results.json").read_text())["rows"]
    assert row["fid"] > 0 and np.isfinite(row["fid"])
    assert 0 <= row["precision_inception"] <= 1 and 0 <= row["recall_inception"] <= 1
    assert 1 <= real["is"] <= 1008 and 1 <= row["is"] <= 1008 and "| is |" in p.stdout
    assert len(list((tmp_path / "cache").glob("real-inception-*.npz"))) == 1


def test_eval_sweep_cli_plots_and_gap(tiny64, tmp_path):
    model, data = tiny64
    p = run_cli("eval", "sweep", "--model", model, "--data", data, "--splits", "heldout_pair", "-n", "8",
                "--cfg-scales", "0,1,3", "--clip-scales", "0,4", "--steps", "2", "--batch-size", "4",
                "--judge-clip", "bundled:clip", "--cache-dir", tmp_path / "cache", "--out", tmp_path / "sw", "-q",
                check=True)
    res = json.loads((tmp_path / "sw" / "results.json").read_text())
    rows = res["rows"]
    assert res["config"]["command"] == "sweep" and res["config"]["sampler"] == "ddpm"
    assert [(r["guidance"], r["guidance_scale"], r["clip_scale"]) for r in rows] == [
        ("real", None, None), ("cfg", 0.0, 0.0), ("cfg", 1.0, 0.0), ("cfg", 3.0, 0.0), ("clip", 1.0, 0.0),
        ("clip", 1.0, 4.0)]
    # CLIP scale 0 on the conditional model is the cfg-1 row: the same samples, found in the cache.
    assert rows[4]["fd_clip"] == rows[2]["fd_clip"]
    assert sorted(d.name for d in (tmp_path / "sw" / "samples").iterdir()) == ["g0", "g1", "g1-clip4", "g3"]
    # The judge here is the same bundled CLIP, so it agrees with the guide exactly.
    for r in rows[1:]:
        assert r["judge_clip_score"] == pytest.approx(r["clip_score"])
        assert r["is_clip"] >= 1 and r["sample_seconds"] >= 0
    assert rows[5]["clip_score"] != rows[4]["clip_score"]
    assert "| gain, guide |" in p.stdout and "gap" in (tmp_path / "sw" / "table.md").read_text()
    from PIL import Image

    for name in ("tradeoffs.png", "clip_gap.png", "clip4.png", "g3.png"):
        with Image.open(tmp_path / "sw" / name) as im:
            assert im.width > 200 and len(np.unique(np.asarray(im.convert("L")))) > 2


def test_interrupted_sweep_resumes(tiny64, tmp_path):
    from glide.clip.io import load_clip
    from glide.evaluation.evaluate import EvalConfig, Scorer, evaluate
    from glide.pipeline import Pipeline, default_model

    model, data = tiny64
    pipe = Pipeline.from_pretrained(model)
    pipe.model_key = "tiny"
    cfg = EvalConfig(data=str(data), splits=("heldout_pair",), n=12, guidance_scales=(0.0, 2.0), steps=2,
                     batch_size=4)  # 2 settings x 3 batches
    scorer = Scorer(load_clip(default_model("clip")), cache_dir=tmp_path / "cache")
    calls = []
    real_sample = pipe.sample

    def sample(*a, **kw):
        if len(calls) == 4:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C in the second setting
        calls.append(a[0])
        return real_sample(*a, **kw)

    pipe.sample = sample
    with pytest.raises(KeyboardInterrupt):
        evaluate(pipe, scorer, cfg, tmp_path / "ev", progress=False)
    assert len(list((tmp_path / "ev" / "samples").glob("*/*.npz"))) == 4
    assert not list((tmp_path / "ev").rglob("*.tmp*"))
    calls.clear()
    pipe.sample = lambda *a, **kw: (calls.append(a[0]), real_sample(*a, **kw))[1]
    rows = evaluate(pipe, scorer, cfg, tmp_path / "ev", progress=False)
    assert len(calls) == 2  # only the two batches that never finished
    # and the result is what an uninterrupted run gives
    calls.clear()
    fresh = evaluate(pipe, scorer, cfg, tmp_path / "ev2", progress=False)
    assert len(calls) == 6
    for r, f in zip(rows, fresh):
        assert {k: v for k, v in r.items() if k != "sample_seconds"} == \
            {k: v for k, v in f.items() if k != "sample_seconds"}


def test_clip_rows_need_a_gradient_sampler(tiny64, tmp_path):
    model, data = tiny64
    p = run_cli("eval", "--model", model, "--data", data, "--clip-scales", "2", "--sampler", "dpm++2m",
                "--out", tmp_path / "x")
    assert p.returncode == 2 and "ddpm and ddim" in p.stderr and "Traceback" not in p.stderr


def _coco_standin(root: Path, rng) -> tuple[Path, Path]:
    """A tiny stand-in for captions_val2014.json and val2014/: five images of odd sizes, one caption file
    entry whose image is missing."""
    from PIL import Image

    images = root / "val2014"
    images.mkdir(parents=True)
    entries, annotations = [], []
    for i, (w, h) in enumerate([(120, 90), (64, 200), (300, 300), (90, 130), (77, 65)]):
        name = f"COCO_val2014_{i:012d}.jpg"
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(images / name, quality=95)
        entries.append({"id": 100 + i, "file_name": name})
        annotations += [{"image_id": 100 + i, "id": 2 * i + k, "caption": f" a  photo of thing {i}, take {k} "}
                        for k in range(2)]
    entries.append({"id": 999, "file_name": "COCO_val2014_missing.jpg"})
    annotations.append({"image_id": 999, "id": 99, "caption": "a missing photo"})
    captions = root / "captions_val2014.json"
    captions.write_text(json.dumps({"images": entries, "annotations": annotations}))
    return captions, images


def test_center_crop_resize():
    from PIL import Image

    from glide.evaluation.coco import center_crop_resize

    # A wide image whose middle square is red and whose sides are blue: only red survives the crop.
    a = np.zeros((100, 300, 3), dtype=np.uint8)
    a[:, :100, 2] = a[:, 200:, 2] = 255
    a[:, 100:200, 0] = 255
    out = center_crop_resize(Image.fromarray(a), 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out[..., 0] > 200).all() and (out[..., 2] < 40).all()
    # Smaller than the target: scaled up, still square.
    assert center_crop_resize(Image.fromarray(a[:20, :50]), 64).shape == (64, 64, 3)


def test_eval_coco_on_a_synthetic_standin(tiny64, tmp_path):
    model, _ = tiny64
    captions, images = _coco_standin(tmp_path / "coco", np.random.default_rng(3))
    args = ["eval", "coco", "--model", model, "--captions", captions, "--images", images, "-n", "8",
            "--steps", "2", "--batch-size", "4", "--cache-dir", tmp_path / "cache", "--out", tmp_path / "co"]
    p = run_cli(*args, check=True)
    res = json.loads((tmp_path / "co" / "results.json").read_text())
    assert res["config"]["command"] == "coco" and res["config"]["guidance_scales"] == [3.0]
    # 8 of the 11 captions drawn; any drawn caption of the missing image is skipped with a warning
    n = res["rows"][0]["n"]
    assert n in (7, 8) and res["rows"][1]["n"] == n and res["rows"][1]["fd_clip"] > 0
    assert ("skipped 1 of 8" in p.stderr) == (n == 7)
    assert len(list((tmp_path / "cache").glob("coco-reference-*.npz"))) == 1
    # all captions: 10 kept, the missing one skipped; the reference is prepared once and then cached
    args[args.index("-n") + 1] = "50"
    p = run_cli(*args, check=True)
    assert "skipped 1 of 11" in p.stderr
    assert json.loads((tmp_path / "co" / "results.json").read_text())["rows"][0]["n"] == 10
    p = run_cli(*args, check=True)
    assert "skipped" not in p.stderr


def test_eval_coco_errors(tiny64, tmp_path):
    model, _ = tiny64
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    (tmp_path / "imgs").mkdir()
    for captions, images, message in [(tmp_path / "nope.json", tmp_path / "imgs", "no captions file"),
                                      (bad, tmp_path / "imgs", "is not a COCO captions file"),
                                      (bad, tmp_path / "none", "no image folder")]:
        p = run_cli("eval", "coco", "--model", model, "--captions", captions, "--images", images,
                    "--out", tmp_path / "x")
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr


def _random_open_clip_file(path: Path) -> Path:
    """A small standard CLIP in open_clip's file layout, with random weights."""
    import torch

    from glide.clip.openclip import OpenCLIP, OpenCLIPConfig

    torch.manual_seed(0)
    m = OpenCLIP(OpenCLIPConfig(embed_dim=32, image_size=32, patch_size=8, vision_width=64, vision_layers=1,
                                text_context=77, vocab_size=49408, text_width=64, text_layers=1))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "ln" not in name:
                p.normal_(0, 0.05)
    torch.save(m.state_dict(), path)
    return path


def test_eval_scores_with_an_open_clip_judge(tiny64, tmp_path):
    model, data = tiny64
    judge = _random_open_clip_file(tmp_path / "open_clip_pytorch_model.bin")
    p = run_cli("eval", "--model", model, "--data", data, "--splits", "heldout_pair", "-n", "6",
                "--guidance-scales", "1", "--steps", "2", "--judge-clip", judge, "--cache-dir", tmp_path / "cache",
                "--out", tmp_path / "ev", "-q", check=True)
    rows = json.loads((tmp_path / "ev" / "results.json").read_text())["rows"]
    assert "judge_clip_score" in p.stdout
    for r in rows:
        assert 0 <= r["judge_clip_score"] <= 100 and r["judge_clip_score"] != r["clip_score"]
    # an open_clip file cannot guide: it never saw noisy images
    p = run_cli("eval", "--model", model, "--data", data, "--clip-model", judge, "--clip-scales", "2",
                "--sampler", "ddim", "--out", tmp_path / "x")
    assert p.returncode == 2 and "needs a noised CLIP" in p.stderr


def test_plot_ticks_are_round_and_both_backends_draw(tmp_path):
    from PIL import Image

    from glide.evaluation.plots import Series, nice_ticks, panel, save_panels

    ticks, decimals = nice_ticks(0.000461, 0.000612)  # written 0.00050, 0.00055, 0.00060, not 0.000506
    assert ticks == pytest.approx([0.0005, 0.00055, 0.0006]) and decimals == 5
    assert nice_ticks(7.2, 41.8) == ([10.0, 20.0, 30.0, 40.0], 0)  # not 41.8
    assert nice_ticks(0.86, 1.01)[0] == pytest.approx([0.9, 0.95, 1.0])
    panels = [panel([Series("cfg", [(1.0, 0.5, "1"), (2.0, 0.4, "2"), (3.0, float("nan"), "3")])], "x", "FD", "t")]
    for backend in ("pil", "matplotlib"):
        if backend == "matplotlib":
            pytest.importorskip("matplotlib")  # the optional `plots` extra
        assert save_panels(panels, tmp_path / f"{backend}.png", backend=backend) == backend
        with Image.open(tmp_path / f"{backend}.png") as im:
            assert im.width > 300 and len(np.unique(np.asarray(im.convert("L")))) > 2


def test_eval_scores_the_cascades_256px_samples(tiny64, tmp_path):
    """--upsample: each base sample goes through the upsampler; the real images are the 256 px ones; the
    CLIP scores both at its own 64 px; the sample cache is keyed by the upsampler too."""
    import shutil

    model, data = tiny64
    with np.load(data / "emoji_64.npz") as z:
        rows = [{"caption": str(c), "captions_alt": [], "split": str(s), "style": "twemoji", "emoji": f"{i:04X}",
                 "hexcode": f"{i:04X}", "label": str(c)} for i, (c, s) in enumerate(zip(z["captions"], z["split"]))]
    big = tmp_path / "data"
    big.mkdir()
    save_arrays(big / "emoji_256.npz", np.random.default_rng(1).integers(0, 256, (len(rows), 256, 256, 3),
                                                                            dtype=np.uint8), rows)
    up = tmp_path / "up"
    shutil.copytree(Path(__file__).parent.parent / "glide" / "weights" / "upsampler", up)
    args = ["eval", "--model", model, "--data", big, "--splits", "heldout_pair", "-n", "4", "--guidance-scales", "1",
            "--steps", "2", "--batch-size", "4", "--cache-dir", tmp_path / "cache", "--out", tmp_path / "ev", "-q",
            "--upsample", "--upsampler", up, "--upsample-steps", "2"]
    run_cli(*args, check=True)
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["config"]["upsample"] is True and res["config"]["upsampler"] == str(up)
    real, row = res["rows"]
    assert row["n"] == 4 and np.isfinite(row["fd_clip"]) and row["fd_clip"] > 0 and 0 <= row["clip_score"]
    (cached,) = (tmp_path / "ev" / "samples" / "g1-256").glob("*.npz")
    with np.load(cached) as z:
        assert z["x"].shape == (4, 256, 256, 3)
    # Another upsampler (here: one weight's lowest bit flipped) is another cache key: sampled again, not reused.
    weights = up / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-2] ^= 1  # the low byte of the last fp16 value: its mantissa
    weights.write_bytes(bytes(raw))
    run_cli(*args, check=True)
    assert len(list((tmp_path / "ev" / "samples" / "g1-256").glob("*.npz"))) == 2

    p = run_cli("eval", "--model", model, "--data", data, "--upsample", "--out", tmp_path / "x")
    assert p.returncode == 2 and "emoji_256.npz" in p.stderr and "Traceback" not in p.stderr
    p = run_cli("eval", "--model", model, "--data", data, "--upsampler", up, "--out", tmp_path / "x")
    assert p.returncode == 2 and "add --upsample" in p.stderr


def test_paired_precision_recall_test_finds_a_collapse_and_not_noise():
    """Paired permutation test of precision/recall: a setting whose samples cover a third of the spread of the
    real data loses recall with a tiny p-value; an independent draw from the real distribution does not; a
    setting identical to the reference has p = 1."""
    rng = np.random.default_rng(0)
    real, reference, same = (rng.normal(size=(128, 8)) for _ in range(3))
    collapsed = reference / 3
    low = paired_precision_recall_test(real, collapsed, reference, permutations=200)
    assert low["recall"] < low["recall_reference"] - 0.2 and low["recall_p"] < 0.01, low
    alike = paired_precision_recall_test(real, same, reference, permutations=200)
    assert alike["recall_p"] > 0.05 and alike["precision_p"] > 0.05, alike
    equal = paired_precision_recall_test(real, reference, reference, permutations=50)
    assert equal["recall_p"] == 1.0 and equal["precision_p"] == 1.0
    with pytest.raises(ValueError, match="one shape"):
        paired_precision_recall_test(real, reference[:10], reference)
