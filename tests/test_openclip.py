"""Standard CLIP from open_clip weight files (glide/clip/openclip.py), checked against open_clip's own model.

open_clip's package __init__ imports torchvision, which does not work with this machine's torch build. Its
model code itself only needs one torchvision class at import time, so the reference is imported with a
stub package: the model code runs unchanged.
"""

import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

from glide.clip.openclip import MEAN, STD, load_open_clip
from glide.clip.tokenizer import get_clip_tokenizer
from glide.errors import GlideError


@pytest.fixture(scope="module")
def open_clip_model():
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        pytest.skip("open-clip-torch is not installed")
    before = set(sys.modules)
    saved = {k: sys.modules.get(k) for k in ("open_clip", "torchvision", "torchvision.ops", "torchvision.ops.misc")}
    pkg = types.ModuleType("open_clip")
    pkg.__path__, pkg.__spec__ = list(spec.submodule_search_locations), spec
    misc = types.ModuleType("torchvision.ops.misc")
    misc.FrozenBatchNorm2d = type("FrozenBatchNorm2d", (torch.nn.Module,), {})
    sys.modules.update({"open_clip": pkg, "torchvision": types.ModuleType("torchvision"),
                        "torchvision.ops": types.ModuleType("torchvision.ops"), "torchvision.ops.misc": misc})
    try:
        yield importlib.import_module("open_clip.model")
    finally:
        for k in set(sys.modules) - before:
            del sys.modules[k]
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _reference(open_clip_model, quick_gelu: bool):
    torch.manual_seed(0)
    m = open_clip_model.CLIP(
        embed_dim=32, quick_gelu=quick_gelu,
        vision_cfg=open_clip_model.CLIPVisionCfg(layers=2, width=128, patch_size=8, image_size=32),
        text_cfg=open_clip_model.CLIPTextCfg(context_length=77, vocab_size=49408, width=128, heads=2, layers=2))
    return m.eval()


@pytest.mark.parametrize("quick_gelu", [True, False])
@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_matches_open_clip(open_clip_model, tmp_path, quick_gelu, fmt):
    ref = _reference(open_clip_model, quick_gelu)
    path = tmp_path / f"open_clip_model.{fmt}"
    if fmt == "bin":
        torch.save(ref.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    ours = load_open_clip(path, quick_gelu=quick_gelu)
    assert ours.cfg.image_size == 32 and ours.cfg.patch_size == 8 and ours.cfg.vision_layers == 2

    x = torch.rand(3, 3, 32, 32) * 2 - 1
    normalised = ((x + 1) / 2 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    tokens, lens = get_clip_tokenizer()(["a red apple", "pizza, openmoji style", ""], 77)
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_image(x), ref.encode_image(normalised), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ours.encode_text(tokens, lens), ref.encode_text(tokens), atol=1e-5, rtol=1e-4)
        assert float(ours.scale()) == pytest.approx(float(ref.logit_scale.exp()))
        z = ours.image_embeddings(x)
        assert torch.allclose(z.norm(dim=-1), torch.ones(3))
        # the package's CLIP-score helper takes a standard CLIP as it takes a noised one
        from glide.clip import clip_score

        a, b = ref.encode_image(normalised), ref.encode_text(tokens)
        want = 100 * torch.nn.functional.cosine_similarity(a, b)
        torch.testing.assert_close(clip_score(ours, x, ["a red apple", "pizza, openmoji style", ""]), want,
                                   atol=1e-3, rtol=1e-4)


def test_preprocess_matches_pil_resize_and_crop(open_clip_model, tmp_path):
    """A 64x48 image is resized (shorter side to 32) and center-cropped as open_clip's PIL transform does."""
    from PIL import Image

    ref = _reference(open_clip_model, True)
    torch.save(ref.state_dict(), tmp_path / "m.bin")
    ours = load_open_clip(tmp_path / "m.bin")
    yy, xx = np.mgrid[0:48, 0:64]
    img = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).clip(0, 255).astype(np.uint8)  # smooth ramps
    pil = Image.fromarray(img).resize((43, 32), Image.BICUBIC)
    left = (43 - 32) // 2
    want = np.asarray(pil.crop((left, 0, left + 32, 32)), dtype=np.float32) / 255
    got = ours.preprocess(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1)
    got = got * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert got.shape == (1, 3, 32, 32)
    assert np.abs(got[0].permute(1, 2, 0).numpy() - want).max() < 3 / 255


def test_refuses_other_files(tmp_path):
    with pytest.raises(GlideError, match="not found"):
        load_open_clip(tmp_path / "none.bin")
    torch.save({"visual.attnpool.c_proj.weight": torch.zeros(1)}, tmp_path / "rn50.bin")
    with pytest.raises(GlideError, match="only ViT CLIPs"):
        load_open_clip(tmp_path / "rn50.bin")
    torch.save({"weight": torch.zeros(1)}, tmp_path / "other.bin")
    with pytest.raises(GlideError, match="not an open_clip CLIP"):
        load_open_clip(tmp_path / "other.bin")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.bin")
    with pytest.raises(GlideError, match="cannot read"):
        load_open_clip(tmp_path / "evil.bin")
