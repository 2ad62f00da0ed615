"""Model structure: presets, official checkpoint layouts, attention and conditioning behaviour."""

import json

import pytest
import torch

from conftest import HERE
from helpers import randomize

from glide import GLIDE, PRESETS, ModelConfig, official
from glide.config import get_preset
from glide.errors import GlideError
from glide.models.unet import Attention
from glide.keys import key_map

OFFICIAL = json.loads((HERE / "fixtures" / "official_checkpoints.json").read_text())


def n_params(cfg: ModelConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in GLIDE(cfg).parameters())


def test_official_parameter_counts():
    assert n_params(PRESETS["base"]) == 385_030_726
    assert n_params(PRESETS["upsample"]) == 398_361_286
    for name in ("base", "upsample", "base-inpaint", "upsample-inpaint"):
        assert n_params(PRESETS[name]) == OFFICIAL["models"][name]["total_params"]


def test_paper_model_size():
    with torch.device("meta"):
        m = GLIDE(PRESETS["glide-3.5b"])
    text = sum(p.numel() for p in m.text.parameters())
    visual = sum(p.numel() for p in m.parameters()) - text
    # GLIDE §4.1: ~2.3B visual and ~1.2B text parameters, 3.5B in all.
    assert 2.1e9 < visual < 2.5e9
    assert 1.1e9 < text < 1.4e9


def test_paper_upsampler_size():
    with torch.device("meta"):
        m = GLIDE(PRESETS["glide-3.5b-upsample"])
    total = sum(p.numel() for p in m.parameters())
    text = sum(p.numel() for p in m.text.parameters())
    # GLIDE §4.1: a 1.5 billion parameter text-conditional 64 -> 256 upsampler.
    assert total == 1_540_932_998 and 1.4e9 < total < 1.6e9
    assert 1.2e9 < total - text < 1.35e9 and 0.2e9 < text < 0.3e9
    cfg = m.cfg
    assert cfg.super_res and cfg.low_res_size == 64 and cfg.unet.image_size == 256 and cfg.text is not None
    assert cfg.kind == "superres" and cfg.noise_schedule == "linear"


def test_small_presets():
    assert n_params(PRESETS["tiny"]) < 1_000_000
    assert 10e6 <= n_params(PRESETS["small"]) <= 40e6


@pytest.mark.parametrize("name", ["base", "upsample", "base-inpaint", "upsample-inpaint"])
def test_official_layout_loads_strictly(name):
    """A random state dict with every official key and shape loads through glide.official.load_model."""
    entry = OFFICIAL["models"][name]
    g = torch.Generator().manual_seed(0)
    sd = {e["key"]: torch.randn(e["shape"], generator=g) * 0.02 for e in entry["state_dict"]}
    model = official.load_model(sd, **entry["hyperparameters_official"])
    assert sum(p.numel() for p in model.parameters()) == entry["total_params"]
    # round trip: our state dict, renamed back, is the input
    back = model.official_state_dict()
    assert set(back) == set(sd)
    k = entry["state_dict"][-1]["key"]
    assert torch.equal(back[k], sd[k])
    # a missing key is named
    sd.pop(k)
    with pytest.raises(GlideError, match="missing"):
        official.load_model(sd, **entry["hyperparameters_official"])


def test_presets_match_official_defaults():
    for name in ("base", "upsample", "base-inpaint", "upsample-inpaint"):
        hp = OFFICIAL["models"][name]["hyperparameters_official"]
        assert official.config_from_options(**hp) == get_preset(name)


def test_every_parameter_has_an_official_name():
    with torch.device("meta"):
        m = GLIDE(PRESETS["base"])
    mapping = key_map(m)
    assert len(mapping) == len(m.state_dict())  # one-to-one


def test_attention_matches_explicit_softmax():
    """SDPA over [text keys, image keys] equals the official einsum formulation."""
    torch.manual_seed(0)
    attn = Attention(64, heads=2, text_width=16)
    randomize(attn, 1)
    x, text = torch.randn(2, 64, 4, 4), torch.randn(2, 16, 5)
    b, c, heads = 2, 64, 2
    qkv = attn.qkv(attn.norm(x).reshape(b, c, -1))
    ch = c // heads
    q, k, v = qkv.reshape(b * heads, 3 * ch, -1).split(ch, dim=1)
    ek, ev = attn.text_kv(text).reshape(b * heads, 2 * ch, -1).split(ch, dim=1)
    k, v = torch.cat([ek, k], -1), torch.cat([ev, v], -1)
    s = ch**-0.25
    w = torch.softmax(torch.einsum("bct,bcs->bts", q * s, k * s), -1)
    h = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, -1)
    expected = x + attn.proj(h).reshape(x.shape)
    torch.testing.assert_close(attn(x, text), expected, atol=1e-5, rtol=1e-5)


def test_text_conditioning_matters():
    model = GLIDE(PRESETS["tiny"]).eval()
    randomize(model, 0)
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([500])
    from glide.text import get_tokenizer

    tok = get_tokenizer("bytes")
    a = model(x, t, tokens=tok(["a red apple"], 32)[0], mask=tok(["a red apple"], 32)[1])
    b = model(x, t, tokens=tok(["a blue car"], 32)[0], mask=tok(["a blue car"], 32)[1])
    assert a.shape == (1, 6, 32, 32)
    assert (a - b).abs().max() > 1e-3


def test_fresh_model_predicts_zero_eps():
    """ADM init: output layers start at zero, so training starts from the identity."""
    model = GLIDE(PRESETS["tiny"]).eval()
    out = model(torch.randn(2, 3, 32, 32), torch.tensor([1, 999]), tokens=torch.zeros(2, 32, dtype=torch.long),
                mask=torch.ones(2, 32, dtype=torch.bool))
    assert out.abs().max() == 0


def test_variants_take_their_inputs():
    for kind in ("superres", "inpaint", "superres-inpaint"):
        cfg = PRESETS["tiny"].with_kind(kind).replace(low_res_size=8 if "superres" in kind else None)
        model = GLIDE(cfg).eval()
        randomize(model, 0)
        x, t = torch.randn(1, 3, 32, 32), torch.tensor([10])
        tok = torch.zeros(1, 32, dtype=torch.long)
        mask = torch.ones(1, 32, dtype=torch.bool)
        kw = {}
        if "superres" in kind:
            kw["low_res"] = torch.randn(1, 3, 8, 8)
        out = model(x, t, tokens=tok, mask=mask, **kw)
        assert out.shape == (1, 6, 32, 32)
        if "inpaint" in kind:
            out2 = model(x, t, tokens=tok, mask=mask, inpaint_image=torch.randn(1, 3, 32, 32),
                         inpaint_mask=torch.ones(1, 1, 32, 32), **kw)
            assert (out - out2).abs().max() > 1e-4


def test_bad_config_is_a_clear_error():
    with pytest.raises(GlideError, match="multiple of 32"):
        GLIDE(PRESETS["tiny"].replace(unet=PRESETS["tiny"].unet.__class__(channels=40)))
    with pytest.raises(GlideError, match="unknown preset"):
        get_preset("huge")
    with pytest.raises(GlideError, match="unknown official option"):
        official.config_from_options(num_chanels=3)


def test_compiled_pipeline_samples_like_the_eager_one():
    """Pipeline(compile=True) runs the U-Net through torch.compile: same samples (within float tolerance);
    unknown modes are refused."""
    from glide import Pipeline

    model = GLIDE(get_preset("tiny"))
    randomize(model, 0)
    # fp32: the check is of compilation; in bf16 inductor's fused kernels round differently from eager ones.
    eager = Pipeline(model, "cpu", "fp32").sample(["a red apple"], steps=3, generator=torch.Generator().manual_seed(1))
    fast = Pipeline(model, "cpu", "fp32", compile=True).sample(["a red apple"], steps=3,
                                                               generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(fast, eager, atol=1e-4, rtol=1e-4)
    with pytest.raises(GlideError, match="compile mode"):
        Pipeline(model, "cpu", compile="fastest")


def test_official_load_model_turns_a_weight_mismatch_into_a_clear_error():
    """Names and shapes right, but a weight that cannot be one (an integer tensor): the same one-line GlideError
    that glide.pipeline.load_model gives, not a torch traceback."""
    opts = dict(image_size=16, channel_mult="1,2", num_channels=32, num_res_blocks=1, num_head_channels=16, xf_width=32, xf_layers=1,
                xf_heads=2, attention_resolutions="8", text_ctx=8)
    skeleton = official.load_model(None, **opts).official_state_dict()
    sd = {k: torch.zeros(v.shape) for k, v in skeleton.items()}
    assert official.load_model(sd, **opts) is not None
    key = next(k for k in sd if k.endswith(".weight"))
    sd[key] = torch.zeros(sd[key].shape, dtype=torch.int64)
    with pytest.raises(GlideError, match="the weights in the state dict do not match its config"):
        official.load_model(sd, **opts)
