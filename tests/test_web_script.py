"""The web page's "Export script": its Edit history as a scene script that `glide compose` replays."""

import io
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from glide.cli import main
from glide.pipeline import Pipeline
from glide.web.script import EditScript
from glide.web.studio import Studio

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def studio():
    return Studio(Pipeline.from_pretrained("bundled:base", device="cpu"))


def pixels(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"))


@pytest.fixture
def every_step_guided(studio):
    """The page's pipeline guiding inpainting at every step: not the default, which a replay would use unless
    the exported script records the interval."""
    default = studio.pipe.inpaint_guidance_interval
    assert default is not None
    studio.pipe.inpaint_guidance_interval = None
    yield
    studio.pipe.inpaint_guidance_interval = default


def test_exported_history_replays_to_the_pages_images(studio, tmp_path, every_step_guided):
    # What the page does (web/app.py): generate, send image 1 to Edit, paint, edit, use result 1, edit again, use
    # result 0; each action's settings carry the guidance interval the page used.
    job, seed = studio.generate("red apple, twemoji style", num_images=2, steps=3, seed=5)
    generated = job.result()
    settings = dict(prompt="red apple, twemoji style", n=2, guidance=3.0, steps=3, sampler="dpm++2m-sde", seed=seed,
                    clip_scale=0.0, upsample=False, guidance_interval=studio.guidance_interval("generate"))
    script = EditScript.from_generated(settings, 1, generated[1], studio.size, studio.model)
    current = generated[1]
    for k, (box, prompt, pick) in enumerate([((20, 0, 44, 20), "green leaf, twemoji style", 1),
                                            ((0, 40, 64, 64), "fire, twemoji style", 0)]):
        repaint = np.zeros((64, 64), bool)
        repaint[box[1]:box[3], box[0]:box[2]] = True
        job, seed = studio.edit(current, repaint, prompt, num_images=2, steps=3, seed=11 + k)
        results = job.result()
        last = dict(prompt=prompt, n=2, guidance=5.0, steps=3, sampler="dpm++2m-sde", seed=seed,
                    guidance_interval=studio.guidance_interval("edit"))
        script = script.inpainted(last, repaint, pick)
        current = results[pick]

    with zipfile.ZipFile(io.BytesIO(script.to_zip())) as z:
        z.extractall(tmp_path / "export")
    scene = tomllib.loads((tmp_path / "export" / "scene.toml").read_text())
    assert [s["action"] for s in scene["step"]] == ["generate", "inpaint", "inpaint"]
    assert [(s["seed"], s["n"], s["pick"]) for s in scene["step"]] == [(5, 2, 1), (11, 2, 1), (12, 2, 0)]
    assert scene["model"] == "bundled:base"
    assert [s["guidance_interval"] for s in scene["step"]] == ["all", "all", "all"]  # what the page used
    assert main(["compose", str(tmp_path / "export" / "scene.toml"), "--out", str(tmp_path / "out"), "-q"]) == 0
    out = tmp_path / "out"
    assert np.array_equal(pixels(Image.open(out / "00-generate.png")), pixels(generated[1]))
    assert np.array_equal(pixels(Image.open(out / "02-inpaint.png")), pixels(current))


def test_a_picture_without_a_recipe_is_exported_as_a_file(studio):
    image = Image.new("RGB", (200, 120), "orange")
    script = EditScript.from_image(image, studio.size, studio.model)
    repaint = np.zeros((120, 200), bool)
    repaint[:, 100:] = True
    script = script.inpainted(dict(prompt="x", n=1, guidance=5.0, steps=3, sampler="ddim", seed=1), repaint, 0)
    with zipfile.ZipFile(io.BytesIO(script.to_zip())) as z:
        names = set(z.namelist())
        start = Image.open(io.BytesIO(z.read("00-start.png")))
        mask = np.asarray(Image.open(io.BytesIO(z.read("01-mask.png"))))
    assert names == {"scene.toml", "00-start.png", "01-mask.png"}
    assert start.size == (64, 64) and mask.shape == (64, 64)  # both fitted to the model, as the edit fits them
    assert mask[:, 32:].all() and not mask[:, :32].any()
    # CLIP guidance (or a 256 px result) cannot be replayed by compose: such a start is a file too.
    clip = EditScript.from_generated(dict(prompt="x", n=1, guidance=3.0, steps=3, sampler="ddim", seed=0, clip_scale=2.0,
                                          upsample=False), 0, image, studio.size, studio.model)
    assert clip.steps[0]["action"] == "image"
