"""Inpainting and upsampling: kept pixels stay put, the official notebook flows, bad inputs."""

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY_OPTIONS, make_official_checkpoint, run_cli

from glide.errors import GlideError
from glide.official.convert import convert_official
from glide.pipeline import Pipeline

UPSAMPLE = dict(TINY_OPTIONS, image_size=64, channel_mult="1,2", attention_resolutions="16", super_res=True,
                noise_schedule="linear")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name, kind, opts in [("base", "base", TINY_OPTIONS), ("inpaint", "base-inpaint", dict(TINY_OPTIONS, inpaint=True)),
                             ("up", "upsample", UPSAMPLE), ("upinpaint", "upsample-inpaint", dict(UPSAMPLE, inpaint=True))]:
        make_official_checkpoint(d / f"{name}.pt", opts, seed=len(out))
        out[name] = convert_official(d / f"{name}.pt", kind, d / name, opts)
    return out


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8))  # 4:3, fitted by center crop


def kept_pixels_unchanged(photo, out, repaint):
    # the fitted input: center 48x48 crop; at 32 px the fitted mask is what the pipeline repaints
    from glide.editing import prepare_edit
    from glide.images import to_uint8

    edit = prepare_edit(photo, repaint, 32)
    keep = edit.keep[0, 0].bool().numpy()
    ref = to_uint8(edit.image)[0].numpy()
    got = np.asarray(out)
    assert keep.sum() > 0 and (~keep).sum() > 0
    assert np.abs(got[keep].astype(int) - ref[keep].astype(int)).max() <= 1  # 8-bit rounding at most
    assert np.abs(got[~keep].astype(int) - ref[~keep].astype(int)).mean() > 5  # the hole was repainted


@pytest.mark.parametrize("model", ["inpaint", "base"])  # the inpainting model, and the RePaint fallback
def test_inpainting_keeps_known_pixels(models, photo, model):
    pipe = Pipeline.from_pretrained(models[model], device="cpu")
    repaint = np.zeros((48, 64), bool)
    repaint[10:30, 20:44] = True
    for sampler in ("ddpm", "ddim"):
        out = pipe.inpaint(photo, repaint, "a hat", 1, steps=8, sampler=sampler, seed=0, progress=False)
        assert out[0].size == (32, 32)
        kept_pixels_unchanged(photo, out[0], repaint)


def test_composite_back_into_original(models, photo):
    pipe = Pipeline.from_pretrained(models["inpaint"], device="cpu")
    repaint = np.zeros((48, 64), bool)
    repaint[10:30, 20:44] = True
    out = pipe.inpaint(photo, repaint, "a hat", steps=4, seed=1, composite=True, progress=False)[0]
    assert out.size == photo.size
    a, b = np.asarray(out).astype(int), np.asarray(photo).astype(int)
    assert (a[~repaint] == b[~repaint]).all()
    assert np.abs(a[repaint] - b[repaint]).mean() > 5


def test_text2im_notebook_flow(models):
    """text2im notebook: CFG 3.0 over 100 steps, then the upsampler with fast27 DDIM and temperature 0.997."""
    pipe = Pipeline.from_pretrained(models["base"], device="cpu", upsampler=models["up"])
    low = pipe("a corgi", 1, guidance_scale=3.0, steps=100, seed=0, progress=False)
    both = pipe("a corgi", 1, guidance_scale=3.0, steps=100, seed=0, upsample=True, progress=False)
    assert low[0].size == (32, 32) and both[0].size == (64, 64)
    # same seed: the cascade's 64 px image is the upsampled 32 px one (the upsampler draws after the base)
    up_again = pipe.upsample(low, "a corgi", seed=0, progress=False)
    assert up_again[0].size == (64, 64)


def test_inpaint_notebook_flow(models, photo):
    """inpaint notebook: base-inpaint (CFG 5) then upsample-inpaint (fast27, ddpm)."""
    pipe = Pipeline.from_pretrained(models["inpaint"], device="cpu", upsampler=models["upinpaint"])
    repaint = np.zeros((48, 64), bool)
    repaint[5:25, 25:45] = True
    out = pipe.inpaint(photo, repaint, "a hat", 1, steps=20, seed=0, upsample=True, progress=False)[0]
    assert out.size == (64, 64)
    from glide.editing import prepare_edit
    from glide.images import to_uint8

    edit = prepare_edit(photo, repaint, 64)
    keep = torch.nn.functional.interpolate(prepare_edit(photo, repaint, 32).keep, size=(64, 64), mode="nearest")
    keep = keep[0, 0].bool().numpy()
    ref = to_uint8(edit.image)[0].numpy().astype(int)
    assert np.abs(np.asarray(out).astype(int)[keep] - ref[keep]).max() <= 1


def test_upsample_round_trip_figure(models):
    """With random weights the upsampler is untrained; this records how far its output strays (see docs)."""
    pipe = Pipeline.from_pretrained(models["up"], device="cpu", upsampler=models["up"])
    img = Image.fromarray(np.kron(np.eye(4)[:, :, None] * 200, np.ones((8, 8, 3))).astype(np.uint8))
    up = pipe.upsample([img], "squares", seed=0, progress=False)[0]
    back = np.asarray(up.resize((32, 32), Image.BICUBIC)).astype(float)
    assert up.size == (64, 64) and np.isfinite(back).all()


@pytest.mark.parametrize("args, message", [
    (["--mask", "MASK_BAD_SIZE"], "differs from the image"),
    (["--mask", "MASK_EMPTY"], "nothing to repaint"),
    (["--mask", "NOT_AN_IMAGE"], "cannot read mask"),
    (["--box", "1,2,3"], "x0,y0,x1,y1"),
    (["--box", "10,10,500,20"], "not inside"),
    ([], "exactly one of"),
])
def test_inpaint_bad_input(models, tmp_path, photo, args, message):
    photo.save(tmp_path / "in.png")
    Image.new("L", (30, 30), 255).save(tmp_path / "bad_size.png")
    Image.new("L", photo.size, 0).save(tmp_path / "empty.png")
    (tmp_path / "junk.png").write_text("not an image")
    subs = {"MASK_BAD_SIZE": tmp_path / "bad_size.png", "MASK_EMPTY": tmp_path / "empty.png",
            "NOT_AN_IMAGE": tmp_path / "junk.png"}
    args = [subs.get(a, a) for a in args]
    out = tmp_path / "out.png"
    p = run_cli("inpaint", tmp_path / "in.png", "a hat", "--model", models["inpaint"], "--steps", "2", "-q",
                "--out", out, *args)
    assert p.returncode == 2 and message in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and not out.exists()


def test_inpaint_cli_box_and_unreadable_image(models, tmp_path, photo):
    photo.save(tmp_path / "in.png")
    p = run_cli("inpaint", tmp_path / "in.png", "a hat", "--box", "10,10,40,30", "--model", models["inpaint"],
                "--steps", "2", "-q", "--out", tmp_path / "o.png", "--composite")
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / "o.png").size == photo.size
    p = run_cli("inpaint", tmp_path / "missing.png", "a hat", "--box", "1,1,2,2", "--model", models["inpaint"],
                "--out", tmp_path / "o2.png")
    assert p.returncode == 2 and "not found" in p.stderr


def test_mask_modes_and_whole_image_warning(models, photo):
    from glide.editing import mask_to_repaint

    rgba = Image.new("RGBA", (4, 4), (255, 255, 255, 0))
    rgba.putpixel((1, 1), (255, 255, 255, 255))
    m = mask_to_repaint(rgba)
    assert m.sum() == 1 and m[1, 1]  # transparent = keep
    assert mask_to_repaint(Image.new("1", (4, 4), 1)).all()
    pipe = Pipeline.from_pretrained(models["inpaint"], device="cpu")
    with pytest.warns(UserWarning, match="plain text-to-image"):
        pipe.inpaint(photo, np.ones((48, 64), bool), "x", steps=2, progress=False)
    with pytest.raises(GlideError, match="upsampler"):
        pipe.inpaint(photo, np.ones((48, 64), bool), "x", steps=2, upsample=True, progress=False)
