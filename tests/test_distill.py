"""Guidance distillation: the student starts as its teacher, learns its guided prediction, and samples in one row."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import make_toy_data, randomize, run_cli

from glide import guidance
from glide.checkpoint import save_model_dir
from glide.config import get_preset
from glide.errors import GlideError
from glide.models import GLIDE
from glide.pipeline import Pipeline
from glide.training import TrainConfig, export_run
from glide.training.trainer import Trainer


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory) -> Path:
    return make_toy_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A tiny inpainting model with random weights: its guided and conditional predictions differ."""
    cfg = get_preset("tiny").with_kind("inpaint")
    model = GLIDE(cfg)
    randomize(model, 0)
    return save_model_dir(tmp_path_factory.mktemp("teacher") / "model", model.state_dict(), cfg)


def distill_config(teacher, toy_data, out, **kw) -> TrainConfig:
    base = dict(kind="inpaint", init_from=str(teacher), distill_scales=[1.0, 6.0], data=str(toy_data), out=str(out),
                max_steps=1, batch_size=4, workers=0, ema_rate=0.0, warmup_steps=1, lr=1e-3, caption_dropout=0.0)
    return TrainConfig(**{**base, **kw})


def batch_inputs(task, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    tokens, mask = task.tokenizer(["a red square on the left"] * n, task.cfg.text.context)
    xt = torch.randn(n, 3, 32, 32, generator=g)
    t = torch.tensor([100, 400, 700, 950][:n])
    kw = {"tokens": tokens, "mask": mask, "inpaint_image": x0, "inpaint_mask": (torch.rand(n, 1, 32, 32, generator=g) > 0.5).float()}
    return xt, t, kw


def test_the_student_starts_as_the_teachers_conditional_model_at_every_scale(teacher, toy_data, tmp_path):
    trainer = Trainer(distill_config(teacher, toy_data, tmp_path / "run"))
    student, task = trainer.model.eval(), trainer.task
    assert student.cfg.distilled_guidance == (1.0, 6.0) and task.teacher.cfg.distilled_guidance is None
    xt, t, kw = batch_inputs(task)
    with torch.no_grad():
        cond = task.teacher(xt, t, **kw)
        for w in (1.0, 3.0, 6.0):
            torch.testing.assert_close(student(xt, t, guidance=torch.full((4,), w), **kw), cond)


def test_the_target_is_the_teachers_classifier_free_guidance(teacher, toy_data, tmp_path):
    task = Trainer(distill_config(teacher, toy_data, tmp_path / "run")).task
    xt, t, kw = batch_inputs(task)
    target = task.guided_target(xt, t, torch.full((4,), 3.0), kw, torch.autocast("cpu", enabled=False))
    empty = task.tokenizer([""] * 4, task.cfg.text.context)
    extra = {k: kw[k] for k in ("inpaint_image", "inpaint_mask")}
    cond = {"text": task.teacher.encode_text(kw["tokens"], kw["mask"]), **extra}
    uncond = {"text": task.teacher.encode_text(*empty), **extra}
    with torch.no_grad():
        expected = guidance.classifier_free(task.teacher, cond, uncond, 3.0)(xt, t)
    torch.testing.assert_close(target, expected, rtol=1e-4, atol=1e-5)
    assert (target[:, :3] - cond_out(task, xt, t, kw)[:, :3]).abs().mean() > 1e-3  # guidance changes it


def cond_out(task, xt, t, kw):
    with torch.no_grad():
        return task.teacher(xt, t, **kw)


def test_distillation_learns_the_guided_prediction(teacher, toy_data, tmp_path, one_thread):
    """The distillation loss pulls the student's one-row prediction to the teacher's guided one at the scale each
    row asks for: on one batch whose rows ask for 2 and 5, both errors fall. (A random teacher's guidance is far
    slower to learn from fresh batches than a trained one's; a fixed batch isolates the loss and the scale input.)"""
    trainer = Trainer(distill_config(teacher, toy_data, tmp_path / "run", max_steps=2))
    task, student = trainer.task, trainer.model
    z = np.load(toy_data)
    batch = task.make_inputs(z["images"][:8], [[c] for c in z["captions"][:8]], torch.Generator().manual_seed(1),
                             torch.Generator().manual_seed(2))
    batch["scale"] = torch.tensor([2.0, 5.0] * 4)
    fp32 = torch.autocast("cpu", enabled=False)

    def errors() -> tuple[float, float]:
        with torch.no_grad():
            mse = task.loss(student.eval(), batch, slice(None), fp32, None)["mse"]
        return float(mse[0::2].mean()), float(mse[1::2].mean())

    before = errors()
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    for _ in range(30):
        loss = task.loss(student.train(), batch, slice(None), fp32, None)["loss"].mean()
        opt.zero_grad(), loss.backward(), opt.step()
    after = errors()
    assert after[0] < 0.6 * before[0] and after[1] < 0.6 * before[1], (before, after)

    trainer.run()  # the trainer runs the task, and its export is a distilled model that samples
    export_run(tmp_path / "run", tmp_path / "model")
    pipe = Pipeline.from_pretrained(tmp_path / "model")
    assert pipe.cfg.distilled_guidance == (1.0, 6.0)
    assert "guidance-distilled from" in (tmp_path / "model" / "README.md").read_text()
    # the command line: one row per image by default, the two rows on request, and the PNG says which
    for flag, expected in (([], True), (["--no-distilled-guidance"], False)):
        out = tmp_path / f"s{len(flag)}.png"
        run_cli("sample", "a red square on the left", "--model", tmp_path / "model", "-n", "1", "--steps", "2",
                "--seed", "0", "-q", "--out", out, *flag, check=True)
        meta = json.loads(Image.open(out).text["glide"])
        assert meta["distilled_guidance"] is expected
        assert ("--no-distilled-guidance" in meta["command"]) is (not expected)
    assert pipe(["a red square on the left"], 1, steps=2, seed=0, progress=False)[0].size == (32, 32)
    # ordinary training from a distilled model makes an ordinary one: its scale embedding would fall behind
    plain = Trainer(distill_config(tmp_path / "model", toy_data, tmp_path / "plain", distill_scales=[])).model
    assert plain.cfg.distilled_guidance is None and plain.guidance_mlp is None


def test_a_distilled_model_samples_with_one_row_per_image_within_its_scales(teacher, toy_data, tmp_path):
    from glide.evaluation.evaluate import _interval_key

    trainer = Trainer(distill_config(teacher, toy_data, tmp_path / "run"))
    pipe = Pipeline(trainer.model, "cpu", "fp32")
    rows: list[int] = []
    scales: list[float | None] = []
    forward = pipe.model.forward

    def spy(x, t, *args, guidance=None, **kw):
        rows.append(len(x))
        scales.append(None if guidance is None else float(guidance[0]))
        return forward(x, t, *args, guidance=guidance, **kw)

    pipe.model.forward = spy
    prompts = ["a red square on the left"] * 2

    def run(scale, **kw):
        rows.clear(), scales.clear()
        pipe.sample(prompts, guidance_scale=scale, steps=3, sampler="ddim", generator=pipe.generator(0), **kw)
        return set(rows), set(scales)

    assert run(3.0) == ({2}, {3.0})  # one row per image, asked for the scale
    assert run(8.0) == ({4}, {None})  # outside the distilled range: classifier-free guidance's two rows
    assert run(1.0) == ({2}, {None})
    assert run(3.0, guidance_interval=(0.5, float("inf")))[1] == {3.0, 1.0}  # outside the interval: scale 1
    assert _interval_key(pipe, None) == []
    pipe.distilled_guidance = False
    assert run(3.0) == ({4}, {None})
    assert _interval_key(pipe, None) == ["two-row"]  # eval caches keep the two apart


def test_distill_scales_need_a_teacher(toy_data, tmp_path):
    with pytest.raises(GlideError, match="needs init_from"):
        TrainConfig(data=str(toy_data), out=str(tmp_path), distill_scales=[1.0, 4.0]).validate()
    with pytest.raises(GlideError, match=r"\[low, high\]"):
        TrainConfig(data=str(toy_data), out=str(tmp_path), init_from="x", distill_scales=[4.0, 1.0]).validate()
