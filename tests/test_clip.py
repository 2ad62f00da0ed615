"""The noised CLIP: numerical equivalence with the official code, checkpoints, and training.

The fixture tests read everything (configs, prompts, timesteps) from the fixture set, so another set
made with other tiny configs runs unchanged (GLIDE_FIXTURES=/path/to/set pytest tests/test_clip.py).
"""

import json
import math
import re
from pathlib import Path

import pytest
import torch

from conftest import FIXTURES, HERE
from reference import assert_close, io, manifest, state_dict

from glide import official
from glide.clip import (
    CLIP_PRESETS,
    CLIPConfig,
    NoisedCLIP,
    clip_score,
    contrastive_loss,
    convert_official_clip,
    get_clip_tokenizer,
    load_clip,
    read_clip_dir,
    retrieval_accuracy,
    save_clip_dir,
)
from glide.diffusion import Diffusion
from glide.errors import GlideError
from glide.official.clip import clip_config_from_options


pytestmark = pytest.mark.usefixtures("one_thread")


needs_clip_case = pytest.mark.skipif(not (FIXTURES / "clip" / "manifest.json").is_file(), reason="no clip case")


def case_state_dicts(m: dict) -> tuple[dict, dict]:
    w = m["weights"]
    return state_dict(FIXTURES / "clip", w["image_encoder"]), state_dict(FIXTURES / "clip", w["text_encoder"])


def load_case_clip() -> official.clip.OfficialCLIP:
    m = manifest("clip")
    return official.load_clip(*case_state_dicts(m), **m["config"])


def tol(m: dict) -> float:
    return m.get("suggested_tolerance", {}).get("rtol", 1e-4)


@needs_clip_case
def test_clip_embeddings_and_cond_fn():
    m, d = manifest("clip"), io("clip")
    clip = load_case_clip()
    tokens, lens = clip.encode_prompts(m["prompts"])
    assert torch.equal(tokens, d["tokens"]) and torch.equal(lens, d["lens"])
    with torch.no_grad():
        assert_close(clip.model.encode_text(d["tokens"], d["lens"]), d["z_t_raw"], tol(m), "z_t_raw")
        assert_close(clip.text_embeddings(m["prompts"]), d["z_t"], tol(m), "z_t")
        assert_close(clip.model.encode_image(d["x"], d["t"]), d["z_i_raw"], tol(m), "z_i_raw")
        z_i = clip.image_embeddings(d["x"], d["t"])
        assert_close(z_i, d["z_i"], tol(m), "z_i")
        loss = clip.logit_scale.exp() * (clip.text_embeddings(m["prompts"]) * z_i).sum()
        assert_close(loss.view(-1), d["loss"].view(-1), tol(m), "loss")
    assert math.isclose(clip.logit_scale.exp().item(), m["config"].get("logit_scale", 100.0), rel_tol=1e-6)
    grad = clip.cond_fn(m["prompts"], m["grad_scale"])(d["x"], d["t"])
    assert_close(grad, d["cond_grad"], tol(m), "cond_grad")
    assert_close(clip.cond_grad(d["x"], d["t"], d["tokens"], d["lens"], m["grad_scale"]), d["cond_grad"], tol(m), "cond_grad")


@needs_clip_case
def test_clip_guided_condition_mean():
    """p_mean_variance of the tiny text2im model, shifted by variance * CLIP gradient (official condition_mean)."""
    m, d = manifest("clip"), io("clip")
    # The manifest names the model and the respaced diffusion in words; read them from there.
    call = next((v for k, v in m["calls"].items() if k.startswith("guided")), "")
    found = re.search(r"\(\.\./(models/\w+)\)", call)
    case = found[1] if found else "models/text2im"
    found = re.search(r"create_gaussian_diffusion\((\d+), [^,]+, '([^']*)'\)", call)
    steps, respacing = (int(found[1]), found[2]) if found else (1000, "100")
    if "guided_x_t" not in d or not (FIXTURES / case).is_dir():
        pytest.skip("no CLIP-guided outputs in this fixture set")
    mm = manifest(case)
    model = official.load_model(state_dict(FIXTURES / case, mm["weights"]), **mm["config"])
    diff = official.create_diffusion(steps, mm["config"].get("noise_schedule", "squaredcos_cap_v2"), respacing)
    clip = load_case_clip()
    cond_fn = clip.cond_fn(m["prompts"], m["grad_scale"])
    x_t = d["guided_x_t"]
    for tv in m["guided_t_values"]:
        ti = tv["t_respaced"]
        assert diff.timestep_map[ti] == tv["t_original"]
        t = torch.full((x_t.shape[0],), ti, dtype=torch.long)
        with torch.no_grad():
            out = diff.p_mean_variance(model, x_t, t, clip_denoised=True,
                                       model_kwargs=dict(tokens=d["guided_tokens"], mask=d["guided_mask"]))
        grad = cond_fn(x_t, diff.diffusion.model_timesteps(t))  # CLIP sees original timesteps
        new_mean = out["mean"].float() + out["variance"] * grad.float()
        for key, value in (("mean", out["mean"]), ("variance", out["variance"]), ("cond_grad", grad), ("new_mean", new_mean)):
            assert_close(value, d[f"guided_t{ti}.{key}"], tol(m), f"t={ti} {key}")


def test_clip_tokenizer_fixture():
    path = FIXTURES / "tokenizer" / "clip_simple.json"
    if not path.is_file():
        pytest.skip("no CLIP tokenizer fixture")
    doc = json.loads(path.read_text())
    tok = get_clip_tokenizer()
    assert (tok.start_token, tok.end_token) == (doc["start_token"], doc["end_token"])
    prompts = [bytes.fromhex(c["prompt_utf8_hex"]).decode("utf-8") for c in doc["cases"]]
    tokens, lens = official.clip_tokenize(prompts, doc["text_ctx"])
    for case, prompt, row, n in zip(doc["cases"], prompts, tokens.tolist(), lens.tolist()):
        assert tok.encode(prompt) == case["ids"], prompt
        assert row == case["padded_tokens"], prompt
        assert n == case["text_len"], prompt


def _official_manifest() -> dict:
    return json.loads((HERE / "fixtures" / "official_checkpoints.json").read_text())["clip"]


def test_official_preset_matches_release():
    ref = _official_manifest()
    cfg = clip_config_from_options(**ref["config"])
    assert cfg == CLIP_PRESETS["official"]
    with torch.device("meta"):
        model = NoisedCLIP(cfg)
    assert sum(p.numel() for p in model.text.parameters()) == ref["text_encoder"]["total_params"] == 71_679_488
    assert sum(p.numel() for p in model.image.parameters()) == ref["image_encoder"]["total_params"] == 86_443_776
    assert CLIPConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(GlideError, match="unknown CLIP config keys"):
        CLIPConfig.from_dict({**cfg.to_dict(), "width": 3})


def test_random_official_state_dicts_load_strictly():
    ref = _official_manifest()
    g = torch.Generator().manual_seed(0)

    def random_sd(entries):
        return {e["key"]: torch.empty(e["shape"]).uniform_(-0.05, 0.05, generator=g) for e in entries}

    image_sd, text_sd = random_sd(ref["image_encoder"]["state_dict"]), random_sd(ref["text_encoder"]["state_dict"])
    clip = official.load_clip(image_sd, text_sd, **ref["config"])
    image_back, text_back = clip.official_state_dicts()
    assert list(image_back) == list(image_sd) and list(text_back) == list(text_sd)  # official key order too
    assert all(torch.equal(image_back[k], v) for k, v in image_sd.items())
    assert all(torch.equal(text_back[k], v) for k, v in text_sd.items())
    with torch.no_grad():
        size = ref["config"]["image_size"]
        z = clip.image_embeddings(torch.zeros(1, 3, size, size), torch.tensor([500]))
    assert torch.isfinite(z).all() and abs(z.norm().item() - 1) < 1e-4

    missing = dict(text_sd)
    missing.pop("blocks.block_3.f_attn.f_k.w")
    with pytest.raises(GlideError, match="1 missing key.*blocks.block_3.f_attn.f_k.w"):
        official.load_clip(image_sd, missing, **ref["config"])
    with pytest.raises(GlideError, match="swapped"):
        official.load_clip(text_sd, image_sd, **ref["config"])


@needs_clip_case
def test_convert_official_clip_and_folder_roundtrip(tmp_path):
    m, d = manifest("clip"), io("clip")
    image_sd, text_sd = case_state_dicts(m)
    torch.save(image_sd, tmp_path / "clip_image_enc.pt")
    torch.save(text_sd, tmp_path / "clip_text_enc.pt")
    cfg = clip_config_from_options(**m["config"])
    out = tmp_path / "clip"
    for _ in range(2):  # the second conversion replaces the folder
        convert_official_clip(tmp_path / "clip_image_enc.pt", tmp_path / "clip_text_enc.pt", out, config=cfg)
    got_cfg, _, doc = read_clip_dir(out)
    assert got_cfg == cfg and doc["type"] == "clip" and doc["format"] == "glide-diffusion" and doc["version"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left
    clip = load_clip(out)
    with torch.no_grad():
        assert_close(clip.image_embeddings(d["x"], d["t"]), d["z_i"], tol(m), "z_i")
        assert_close(clip.text_embeddings_from_tokens(d["tokens"], d["lens"]), d["z_t"], tol(m), "z_t")
    with pytest.raises(GlideError, match="not a CLIP folder"):
        load_clip(tmp_path)


class _Hostile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_hostile_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"blocks.input.w_t": _Hostile(marker)}, tmp_path / "evil.pt")
    with pytest.raises(GlideError, match="refused"):
        convert_official_clip(tmp_path / "evil.pt", tmp_path / "evil.pt", tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()


def _tiny(seed: int = 0) -> NoisedCLIP:
    torch.manual_seed(seed)
    return NoisedCLIP(CLIP_PRESETS["tiny"])


def test_clip_score_bounded(tmp_path):
    clip = _tiny().eval()
    s = CLIP_PRESETS["tiny"].image_size
    images = torch.rand(4, 3, s, s) * 2 - 1
    captions = ["a red square", "a blue circle", "", "grinning face"]
    scores = clip_score(clip, images, captions)
    assert scores.shape == (4,) and (scores.abs() <= 100).all()
    assert torch.allclose(scores, clip_score(clip, images, get_clip_tokenizer()(captions, 77)))
    # A folder round trip keeps the scores (random, unconverted model: our own format).
    save_clip_dir(tmp_path / "c", clip.state_dict(), clip.cfg.to_dict())
    assert torch.allclose(scores, clip_score(load_clip(tmp_path / "c"), images, captions), atol=1e-6)


def test_contrastive_loss_decreases():
    clip = _tiny()
    cfg = clip.cfg
    colours = torch.tensor([[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]], dtype=torch.float32)
    x0 = colours[:, :, None, None].expand(-1, -1, cfg.image_size, cfg.image_size).contiguous()
    tokens, lens = get_clip_tokenizer()(["red", "green", "blue", "yellow"], cfg.text_context)
    diffusion = Diffusion.from_schedule(cfg.noise_schedule, cfg.timesteps)
    opt = torch.optim.AdamW(clip.parameters(), lr=3e-3, weight_decay=0.0)

    def eval_loss():
        with torch.no_grad():
            return contrastive_loss(clip, x0, tokens, lens, diffusion, torch.Generator().manual_seed(123))["loss"].item()

    before = eval_loss()
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        out = contrastive_loss(clip, x0, tokens, lens, diffusion, g)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert set(out) >= {"loss", "acc_i2t"}
    after = eval_loss()
    assert after < 0.5 * before, (before, after)
    # (Retrieval is not asserted at a fixed t: each timestep has its own embedding row, and 40 steps see few.)
    acc = retrieval_accuracy(clip, x0, tokens, lens, torch.tensor([10, 200, 500, 900]), k=(1, 5))
    assert set(acc) == {"top1", "top5"} and 0 <= acc["top1"] <= acc["top5"] == 1.0
    same = retrieval_accuracy(clip, x0, tokens[:1].expand(4, -1), lens[:1].expand(4), 0, k=(1,))
    assert same == {"top1": 1.0}  # identical captions all count as the right one
    # The learned temperature never passes 100.
    with torch.no_grad():
        clip.logit_scale.fill_(10.0)
    assert contrastive_loss(clip, x0, tokens, lens, diffusion, g)["logit_scale"].item() <= 100.0 + 1e-3
