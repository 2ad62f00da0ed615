"""The web page's handlers (glide.web.studio), without a browser: uploads, masks, jobs, cancelling."""

import dataclasses
import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from glide.config import get_preset
from glide.errors import GlideError
from glide.models import GLIDE
from glide.pipeline import Pipeline
from glide.web.studio import Job, Limits, Studio, canvas_image, edit_source, painted_mask, read_upload, sketch_source

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def studio():
    torch.manual_seed(0)
    base = GLIDE(get_preset("tiny").replace(inpaint=True))
    tiny = get_preset("tiny")  # 32 px; its upsampler stand-in goes 32 -> 64
    up = GLIDE(tiny.replace(super_res=True, low_res_size=32, unet=dataclasses.replace(tiny.unet, image_size=64)))
    return Studio(Pipeline(base, "cpu", upsampler=up), Limits(max_upload_mb=0.05, max_pixels=300 * 300))


def test_example_captions_are_read_from_a_model_folder(tmp_path):
    """glide serve gives the page the model folder's prompts.txt (blank lines skipped); a folder without one
    gives none, and the page shows no examples."""
    from glide.checkpoint import read_prompts

    (tmp_path / "prompts.txt").write_text("fog, openmoji style\n\ncustard, openmoji line art\n")
    assert read_prompts(tmp_path) == ["fog, openmoji style", "custard, openmoji line art"]
    assert read_prompts(tmp_path / "elsewhere") == []


def png_bytes(im: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def result(job_and_seed):
    job, seed = job_and_seed
    return job.result(), seed


# -- uploads -------------------------------------------------------------------------------------------
def test_read_upload_accepts_images_and_composites_transparency():
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    im = read_upload(png_bytes(rgba), Limits())
    assert im.mode == "RGB" and im.size == (40, 30)
    assert im.getpixel((1, 1)) == (255, 255, 255)  # transparent -> white background
    assert im.getpixel((0, 0)) == (0, 0, 255)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"%PDF-1.4 not an image at all", "not an image"),
    (png_bytes(Image.new("RGB", (400, 400))), "megapixels"),  # 160,000 > 90,000 pixels
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not an image"),  # a truncated PNG
])
def test_read_upload_refuses_bad_uploads_with_a_message(data, message):
    with pytest.raises(GlideError, match=message):
        read_upload(data, Limits(max_pixels=300 * 300))


def test_read_upload_size_limit_is_checked_before_decoding():
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    data = png_bytes(Image.fromarray(noise))  # ~120 kB of incompressible pixels
    with pytest.raises(GlideError, match="MB; the limit is 0.05 MB"):
        read_upload(data, Limits(max_upload_mb=0.05))


def test_pixel_limit_applies_to_the_header_of_a_tiny_file():
    # A decompression bomb: a few hundred bytes that claim 5000x5000 pixels. Refused before decoding.
    data = png_bytes(Image.new("L", (5000, 5000)))
    assert len(data) < 50_000
    with pytest.raises(GlideError, match="5000x5000"):
        read_upload(data, Limits(max_pixels=16_000_000 // 4))


# -- canvas and mask -----------------------------------------------------------------------------------
def test_canvas_enlarges_small_images_with_exact_pixels():
    rng = np.random.default_rng(1)
    small = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    big = canvas_image(small, 256)
    assert big.size == (256, 256)
    assert np.array_equal(np.asarray(big)[::4, ::4], np.asarray(small))  # every image pixel is a 4x4 block
    assert canvas_image(Image.new("RGB", (300, 200)), 256).size == (256, 256)  # center square, then resized


def test_painted_mask_maps_strokes_onto_image_pixels():
    layer = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    layer.paste((255, 0, 255, 255), (128, 0, 256, 64))  # the top-right quarter of the top quarter
    m = painted_mask([layer], 64)
    assert m.shape == (64, 64) and m.dtype == bool
    assert m[:16, 32:].all() and not m[16:].any() and not m[:, :32].any()
    with pytest.raises(GlideError, match="paint over"):
        painted_mask([Image.new("RGBA", (256, 256))], 64)
    with pytest.raises(GlideError, match="paint over"):
        painted_mask(None, 64)


def test_edit_source_follows_a_picture_dropped_on_the_canvas():
    current = Image.new("RGB", (64, 64), "red")
    shown = canvas_image(current, 256).convert("RGBA")  # what the canvas sends back, unchanged
    assert edit_source(current, shown, 256) is current  # the exact 64 px image, not the enlarged one
    dropped = Image.new("RGBA", (640, 480), "blue")
    got = edit_source(current, dropped, 256)
    assert got.size == (480, 480) and got.getpixel((0, 0)) == (0, 0, 255)
    assert edit_source(None, None, 256) is None


# -- actions -------------------------------------------------------------------------------------------
def test_generate_is_reproducible_and_matches_the_pipeline(studio):
    images, seed = result(studio.generate("a red apple", num_images=2, steps=3, seed=7))
    assert seed == 7 and len(images) == 2 and images[0].size == (32, 32)
    direct = studio.pipe("a red apple", 2, guidance_scale=3.0, steps=3, sampler="dpm++2m-sde", seed=7, progress=False)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, direct))
    again, _ = result(studio.generate("a red apple", num_images=2, steps=3, seed=7))
    assert np.array_equal(np.asarray(again[1]), np.asarray(images[1]))


def test_random_seed_is_reported_back(studio):
    images, seed = result(studio.generate("x", num_images=1, steps=2, seed=-1))
    same, _ = result(studio.generate("x", num_images=1, steps=2, seed=seed))
    assert 0 <= seed < 2**31 and np.array_equal(np.asarray(images[0]), np.asarray(same[0]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_images=0), "number of images must be a whole number from 1 to 8"),
    (dict(num_images=2.5), "number of images"),
    (dict(steps=10_000), "steps must be a whole number from 1 to 250"),
    (dict(steps="many"), "steps must be a number"),
    (dict(guidance_scale=float("nan")), "guidance scale must be from 0 to 30"),
    (dict(sampler="euler"), "unknown sampler"),
    (dict(clip_guidance_scale=3.0), "needs a noised CLIP"),
])
def test_generate_refuses_bad_requests(studio, kwargs, message):
    with pytest.raises(GlideError, match=message):
        studio.generate("x", **kwargs)


def test_upsample_runs_the_upsampler(studio):
    images, _ = result(studio.upsample(Image.new("RGB", (64, 64), "red"), "red", steps=2, seed=0))
    assert images[0].size == (64, 64)  # the tiny stand-in upsamples 32 -> 64
    with pytest.raises(GlideError, match="choose an image"):
        studio.upsample(None, "red")


def test_edit_keeps_unpainted_pixels_and_repaints_the_rest(studio):
    rng = np.random.default_rng(2)
    image = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    repaint = np.zeros((32, 32), bool)
    repaint[8:24, 8:24] = True
    images, _ = result(studio.edit(image, repaint, "a hat", num_images=2, steps=4, seed=3))
    src = np.asarray(image).astype(int)
    for im in images:
        got = np.asarray(im).astype(int)
        assert np.abs(got[~repaint] - src[~repaint]).max() <= 1
        assert np.abs(got[repaint] - src[repaint]).mean() > 5
    with pytest.raises(GlideError, match="paint over"):
        studio.edit(image, np.zeros((32, 32), bool), "x")
    with pytest.raises(GlideError, match="whole image"):
        studio.edit(image, np.ones((32, 32), bool), "x")
    with pytest.raises(GlideError, match="choose an image"):
        studio.edit(None, repaint, "x")


def test_sketch_source_is_the_exact_image_until_something_is_drawn():
    rng = np.random.default_rng(4)
    current = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    shown = canvas_image(current, 256).convert("RGBA")
    empty = Image.new("RGBA", (256, 256))
    assert sketch_source(shown, [empty], current, 32) is current  # no strokes: no resizing round trip
    stroke = empty.copy()
    stroke.paste((0, 0, 255, 255), (0, 0, 128, 256))  # the left half painted blue
    composite = shown.copy()
    composite.alpha_composite(stroke)
    got = np.asarray(sketch_source(composite, [stroke], current, 32))
    assert got.shape == (32, 32, 3)
    assert (got[:, :16] == (0, 0, 255)).all()  # strokes, box-filtered onto the model's pixels
    assert np.array_equal(got[:, 16:], np.asarray(current)[:, 16:])  # the rest: the image's own pixels
    assert sketch_source(None, None, None, 32) is None


def test_sketch_strength_zero_returns_the_input_and_more_moves_further(studio):
    rng = np.random.default_rng(5)
    drawing = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    images, seed = result(studio.sketch(drawing, "a red apple", strength=0, num_images=2, steps=4, seed=3))
    assert seed == 3 and all(np.array_equal(np.asarray(im), np.asarray(drawing)) for im in images)
    far, _ = result(studio.sketch(drawing, "a red apple", strength=0.75, num_images=2, steps=4, seed=3))
    direct = studio.pipe.sdedit(drawing, "a red apple", 0.75, num_images=2, guidance_scale=3.0, steps=4,
                                sampler="dpm++2m-sde", seed=3, progress=False)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(far, direct))
    assert np.abs(np.asarray(far[0], float) - np.asarray(drawing, float)).mean() > 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(strength=1.5), "strength must be from 0 to 1"),
    (dict(strength="half"), "strength must be a number"),
    (dict(strength=float("nan")), "strength must be from 0 to 1"),
    (dict(steps=0), "steps must be a whole number from 1 to 250"),
    (dict(num_images=99), "number of images must be a whole number from 1 to 8"),
    (dict(sampler="euler"), "unknown sampler"),
    (dict(guidance_scale=-1), "guidance scale must be from 0 to 30"),
    (dict(clip_guidance_scale=2.0), "needs a noised CLIP"),
    (dict(image=None), "draw something first"),
])
def test_sketch_refuses_bad_requests(studio, kwargs, message):
    image = kwargs.pop("image", Image.new("RGB", (32, 32), "white"))
    with pytest.raises(GlideError, match=message):
        studio.sketch(image, "x", **kwargs)


def test_job_reports_every_step_and_passes():
    class Out:
        pred_xstart = torch.zeros(1, 3, 2, 2)

    def work(callback):
        for n in (3, 2):  # two sampling passes, e.g. 64 px then 256 px
            for i in reversed(range(n)):
                callback(i, None, Out)
        return "done"

    job = Job(work)
    steps = [(s.stage, s.done, s.total) for s in job.steps()]
    assert steps == [(0, 1, 3), (0, 2, 3), (0, 3, 3), (1, 1, 2), (1, 2, 2)]
    assert job.result() == "done"


def test_stop_cancels_between_steps(studio):
    job, _ = studio.generate("x", num_images=1, steps=200, seed=0, session="s1")
    seen = []
    for step in job.steps():
        seen.append(step.done)
        assert step.preview is not None and step.preview.shape == (1, 3, 32, 32)  # generate shows previews
        if step.done == 3:
            assert studio.cancel("s1")
    assert seen[-1] <= 4  # stopped at the next step, not after 200
    assert job.cancelled and not job._thread.is_alive()
    with pytest.raises(GlideError, match="cancelled"):
        job.result()
    assert not studio.cancel("s1")  # nothing left to cancel


def test_closing_the_progress_stream_cancels_the_job(studio):
    job, _ = studio.generate("x", num_images=1, steps=200, seed=0)
    stream = job.steps()
    next(stream)
    stream.close()  # what Gradio does when the browser leaves or Stop cancels the event
    assert job.cancelled and not job._thread.is_alive()


def test_errors_inside_the_job_reach_the_caller(studio):
    def work(callback):
        raise GlideError("boom")

    job = Job(work)
    assert list(job.steps()) == []
    with pytest.raises(GlideError, match="boom"):
        job.result()
    assert threading.active_count() < 50
