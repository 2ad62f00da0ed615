"""Text-conditional SDEdit: noise an image part way, denoise it following a caption."""

import numpy as np
import pytest
import torch
from PIL import Image

from glide.cli import main
from glide.config import get_preset
from glide.errors import GlideError
from glide.models import GLIDE
from glide.pipeline import Pipeline


@pytest.fixture(scope="module")
def bundled():
    return Pipeline.from_pretrained("bundled:base", device="cpu")


@pytest.fixture(scope="module")
def sketch():
    """A crude drawing: a red disc on white, 64 px."""
    a = np.full((64, 64, 3), 255, np.uint8)
    yy, xx = np.mgrid[:64, :64]
    a[(yy - 34) ** 2 + (xx - 32) ** 2 < 20**2] = (220, 30, 30)
    return Image.fromarray(a)


def _diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def test_strength_zero_returns_the_input(bundled, sketch):
    out = bundled.sdedit(sketch, "red apple, twemoji style", strength=0.0, num_images=2, seed=0, progress=False)
    assert all(np.array_equal(np.asarray(o), np.asarray(sketch)) for o in out)


def test_higher_strength_moves_further(bundled, sketch):
    dists = []
    for s in (0.2, 0.6, 1.0):
        out = bundled.sdedit(sketch, "red apple, twemoji style", s, num_images=3, steps=6, seed=0, progress=False)
        dists.append(np.mean([_diff(o, sketch) for o in out]))
    assert 0 < dists[0] < dists[1] < dists[2], dists


def test_mask_keeps_everything_outside_it(bundled, sketch):
    repaint = np.zeros((64, 64), bool)
    repaint[10:40, 20:50] = True
    out = bundled.sdedit(sketch, "fire, twemoji style", 0.8, mask=repaint, num_images=2, steps=5, seed=1,
                         progress=False)
    src = np.asarray(sketch)
    for o in out:
        o = np.asarray(o)
        assert np.array_equal(o[~repaint], src[~repaint])
        assert np.abs(o[repaint].astype(int) - src[repaint]).mean() > 1  # and the inside did change


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++2m", "dpm++2m-sde"])
def test_every_sampler_and_batch_size_invariance(sampler):
    torch.manual_seed(0)
    pipe = Pipeline(GLIDE(get_preset("tiny")), "cpu", "fp32")
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8))
    kw = dict(strength=0.5, num_images=3, steps=6, sampler=sampler, seed=5, progress=False)
    a = pipe.sdedit(img, "a cat", batch_size=3, **kw)
    b = pipe.sdedit(img, "a cat", batch_size=1, **kw)
    assert [np.asarray(x).tobytes() for x in a] == [np.asarray(x).tobytes() for x in b]


def test_bad_strength_is_refused(bundled, sketch):
    for s in (-0.1, 1.5, float("nan")):
        with pytest.raises(GlideError):
            bundled.sdedit(sketch, "x", s, progress=False)


def test_cli_writes_exactly_the_out_file(tmp_path, sketch):
    src = tmp_path / "sketch.png"
    sketch.save(src)
    out = tmp_path / "edit.png"
    assert main(["sdedit", str(src), "red apple, twemoji style", "--strength", "0", "-n", "1", "--out", str(out),
                 "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edit.png", "sketch.png"]
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(sketch))
    assert main(["sdedit", str(src), "x", "--strength", "2", "--out", str(tmp_path / "bad.png")]) == 2
    assert not (tmp_path / "bad.png").exists()
