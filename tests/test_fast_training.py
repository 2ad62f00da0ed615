"""The fast training path (docs/training.md, "Fast GPU training"), checked on the CPU: the compiled step equals
the eager one, no host synchronisation inside a step, and the resident data path's rates and exact resume."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from glide.data.masks import brush_mask, device_masks
from glide.training import TrainConfig
from glide.training.trainer import Trainer


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """32 coloured squares at 32 px; every other item has two alternative captions."""
    d = tmp_path_factory.mktemp("fastdata")
    rng = np.random.default_rng(0)
    images = np.full((32, 32, 32, 3), 255, np.uint8)
    for i in range(32):
        y, x = rng.integers(0, 20, 2)
        images[i, y : y + 12, x : x + 12] = rng.integers(0, 256, 3)
    caps = [f"square {i}" for i in range(32)]
    alt = [[f"alt a {i}", f"alt b {i}"] if i % 2 else [] for i in range(32)]
    path = d / "toy.npz"
    np.savez(path, images=images, captions=np.array(caps), captions_alt=json.dumps(alt), split=np.array(["train"] * 32))
    return path


def trainer(data, out, **kw) -> Trainer:
    base = dict(preset="tiny", kind="inpaint", data=str(data), out=str(out), batch_size=4, max_steps=6,
                warmup_steps=1, lr=1e-3, ema_rate=0.9, checkpoint_every=3, log_every=3, resident=True, seed=3)
    return Trainer(TrainConfig(**{**base, **kw}))


def test_compiled_step_equals_eager(data, tmp_path):
    """Two full steps (data, forward, hybrid loss, backward, clipping, AdamW, EMA), eager and compiled; the
    compiled one compiles once (a recompile costs minutes on a GPU lease and re-records CUDA graphs)."""
    runs = {}
    for compile in (False, True):
        torch.manual_seed(0)
        # a v-prediction model, as configs/emoji-base-gpu.toml trains: its v -> eps conversion is in the graph too
        t = trainer(data, tmp_path / f"c{compile}", compile=compile, model={"prediction": "v"})
        grads, weights = [], []
        t.opt.register_step_pre_hook(lambda *_: grads.append([p.grad.clone() for p in t.model.parameters()]))
        t.opt.register_step_post_hook(lambda *_: weights.append([p.detach().clone() for p in t.model.parameters()]))
        losses = [float(t.train_step()["loss"])]
        with torch.compiler.set_stance("fail_on_recompile"):
            losses.append(float(t.train_step()["loss"]))
        runs[compile] = losses, grads, weights
    (l0, g0, w0), (l1, g1, w1) = runs[False], runs[True]
    assert l1 == pytest.approx(l0, rel=1e-5)
    for step in range(2):
        scale = max(float(a.abs().max()) for a in g0[step])
        for a, b in zip(g0[step], g1[step]):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6 * scale)
    # Adam's first step moves each weight by about lr * sign(gradient): where a gradient is within rounding of
    # zero its sign is arbitrary, so compare the updated weights where the gradient is clearly not zero.
    for a, b, g in zip(w0[0], w1[0], g0[0]):
        sure = g.abs() > 1e-6
        torch.testing.assert_close(b[sure], a[sure], rtol=0, atol=1e-6)


SYNCS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")


@pytest.mark.parametrize("resident", [True, False])
def test_no_host_sync_inside_steps(data, tmp_path, monkeypatch, resident):
    n = 4
    # fused AdamW keeps its step counts on the device (the foreach one reads CPU step counts with .item())
    t = trainer(data, tmp_path / "run", resident=resident, fused_adamw=True, max_steps=n, log_every=n,
                checkpoint_every=n)
    seen: list[tuple[str, int]] = []
    for name in SYNCS:
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, _orig=orig, _name=name, **kw):
            seen.append((_name, t.step))
            return _orig(self, *a, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)
    t.run()
    monkeypatch.undo()
    inside = [s for s in seen if s[1] < n]  # t.step < n while steps 1..n run; == n when logging after step n
    assert any(step == n for _, step in seen), "the log step reads the metrics"
    if resident:
        assert not inside, f"host syncs inside steps: {inside[:5]}"
    else:  # the streamed path draws its masks from CPU tensors: what this test exists to catch
        assert inside


def test_resident_draws_at_the_configured_rates(data, tmp_path):
    t = trainer(data, tmp_path / "run", caption_dropout=0.2, alt_caption_prob=0.5, p_unmasked=0.3)
    s = t.stream
    dropped = alt = alt_eligible = unmasked = rect = 0
    total = 0
    for _ in range(25):
        b = s.next_inputs(64)
        empty = (b["tokens"] == s.empty_tokens).all(1)
        dropped += int(empty.sum())
        for k in range(64):
            if empty[k]:
                continue
            text = bytes(v for v in b["tokens"][k].tolist() if 0 < v < 256).decode()
            if int(text.split()[-1]) % 2:  # items with alternatives
                alt_eligible += 1
                alt += text.startswith("alt")
            else:
                assert not text.startswith("alt")
        erased = 1 - b["inpaint_mask"][:, 0]
        unmasked += int((erased == 1).flatten(1).all(1).sum())
        rows, cols = erased.amax(2), erased.amax(1)  # a rectangle fills its bounding box
        rect += int(((erased.sum((1, 2)) == rows.sum(1) * cols.sum(1)) & (erased.amin((1, 2)) == 0)).sum())
        total += 64
    assert dropped / total == pytest.approx(0.2, abs=0.035)
    assert alt / alt_eligible == pytest.approx(0.5, abs=0.06)
    assert unmasked / total == pytest.approx(0.3, abs=0.04)
    assert rect / total == pytest.approx(0.35, abs=0.05)
    # brush strokes cover about what the CPU path's Pillow strokes cover
    g = torch.Generator().manual_seed(0)
    dev = 1 - device_masks(300, 32, g, p_unmasked=0, p_rect=0).mean().item()
    pil = 1 - float(np.mean([brush_mask(32, g).mean() for _ in range(300)]))
    assert dev == pytest.approx(pil, abs=0.03)
    # one epoch of the order visits every item once
    s.pos.cursor = 0
    idx = torch.cat([s._indices(4) for _ in range(8)])
    assert sorted(idx.tolist()) == list(range(32))


def test_profile_window_writes_a_table(data, tmp_path):
    """profile_at: a few steps under torch's profiler, written as a table (what a GPU lease brings back)."""
    trainer(data, tmp_path / "run", max_steps=8, profile_at=2).run()
    text = (tmp_path / "run" / "profile.txt").read_text()
    assert text.startswith("steps 2..6 of 4 images on cpu, sorted by self_cpu_time_total")
    assert "aten::convolution" in text or "aten::mkldnn_convolution" in text
    trainer(data, tmp_path / "short", max_steps=4, profile_at=2).run()  # ends inside the window: no table
    assert not (tmp_path / "short" / "profile.txt").exists()


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "channels_last+fused"])
def test_resident_resume_is_exact(data, tmp_path, fast):
    """Also with channels_last and fused AdamW, whose resume once failed on a GPU lease: the loaded moments were
    contiguous and the fused kernel refused parameters laid out otherwise."""
    kw = dict(channels_last=True, fused_adamw=True) if fast else {}
    trainer(data, tmp_path / "full", max_steps=6, **kw).run()
    trainer(data, tmp_path / "split", max_steps=3, **kw).run()
    cfg = TrainConfig(**{**json.loads((tmp_path / "split" / "config.json").read_text())["train"], "max_steps": 6})
    Trainer(cfg, resume=True).run()
    for name in ("model", "ema", "optimizer"):
        a = load_file(str(tmp_path / "full" / "checkpoints" / "step_00000006" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "split" / "checkpoints" / "step_00000006" / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
