"""CLIP-guided sampling end to end on CPU: the bundled noised CLIP steering a (tiny, random) text2im model."""

import pytest
import torch

from helpers import TINY_OPTIONS, make_official_checkpoint, run_cli

from glide.clip.guidance import clip_score
from glide.errors import GlideError
from glide.official.convert import convert_official
from glide.pipeline import Pipeline, default_model

OPTS = dict(TINY_OPTIONS, image_size=64, channel_mult="1,2", attention_resolutions="16")
PROMPT = "red apple, twemoji style"


@pytest.fixture(scope="module")
def base64(tmp_path_factory):
    d = tmp_path_factory.mktemp("cg")
    make_official_checkpoint(d / "base.pt", OPTS)
    return convert_official(d / "base.pt", "base", d / "base", OPTS)


def test_clip_guidance_raises_clip_score(base64):
    pipe = Pipeline.from_pretrained(base64, device="cpu", clip=default_model("clip"))
    means = {}
    for scale in (0.0, 10.0):
        scores = []
        for seed in range(3):
            g = torch.Generator().manual_seed(seed)
            x = pipe.sample([PROMPT] * 2, guidance_scale=1.0, steps=8, generator=g,
                            cond_fn=pipe.clip_guidance([PROMPT] * 2, scale))
            scores.append(clip_score(pipe.clip, x, PROMPT).mean().item())
        means[scale] = sum(scores) / len(scores)
    assert means[10.0] > means[0.0] + 0.3, means
    assert all(-100 <= v <= 100 for v in means.values())


def test_clip_guidance_with_cfg_and_cli(base64, tmp_path):
    p = run_cli("sample", PROMPT, "--model", base64, "-n", "2", "--steps", "3", "--seed", "0", "-q",
                "--clip-guidance-scale", "3", "--guidance-scale", "2", "--out", tmp_path / "cg.png")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "cg.png").is_file()
    long_prompt = "a very long prompt " * 40  # longer than both text contexts: truncated, with a warning
    p = run_cli("sample", long_prompt, "--model", base64, "-n", "1", "--steps", "2", "-q",
                "--clip-guidance-scale", "3", "--out", tmp_path / "long.png")
    assert p.returncode == 0 and "truncated" in p.stderr, p.stderr


def test_clip_guidance_needs_a_matching_clip(base64, tmp_path):
    pipe = Pipeline.from_pretrained(base64, device="cpu")
    with pytest.raises(GlideError, match="CLIP guidance needs"):
        pipe("x", clip_guidance_scale=2.0, steps=2, progress=False)
    p = run_cli("sample", "x", "--model", base64, "--clip-model", base64, "--clip-guidance-scale", "1",
                "--out", tmp_path / "x.png")
    assert p.returncode == 2 and "CLIP folder" in p.stderr and "Traceback" not in p.stderr
