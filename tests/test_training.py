"""Training: exact resume (two ways), DDP, corrupt data, fine-tuning, configuration errors."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from helpers import TINY_OPTIONS, free_port, make_official_checkpoint, make_toy_data, run_cli

from glide.errors import GlideError
from glide.runtime import cpu_has_native_bf16
from glide.training import TrainConfig, export_run
from glide.training.trainer import Trainer, train


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory) -> Path:
    return make_toy_data(tmp_path_factory.mktemp("data"))


def train_args(data, out, steps, *extra):
    return ["train", "--preset", "tiny", "--data", data, "--out", out, "--max-steps", steps, "--batch-size", 4,
            "--checkpoint-every", 2, "--set", "ema_rate=0.9", "--set", "warmup_steps=2", "--lr", "0.001", *extra]


def exported(run, tmp, raw):
    out = tmp / ("raw" if raw else "ema")
    export_run(run, out, raw=raw)
    return load_file(str(out / "model.safetensors"))


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_export_writes_example_captions_drawn_from_the_training_data(toy_data, tmp_path):
    """prompts.txt (the web page's examples): distinct training captions, drawn the same way each time; none
    when the data is no longer where the run read it, and the export still works."""
    import shutil

    from glide.checkpoint import read_prompts

    data = tmp_path / "toy.npz"
    shutil.copy(toy_data, data)
    run_cli(*train_args(data, tmp_path / "run", 2), check=True)
    export_run(tmp_path / "run", tmp_path / "m1")
    prompts = read_prompts(tmp_path / "m1")
    assert len(prompts) == len(set(prompts)) >= 4
    assert set(prompts) <= set(np.load(toy_data)["captions"].tolist())
    export_run(tmp_path / "run", tmp_path / "m2")
    assert read_prompts(tmp_path / "m2") == prompts
    data.unlink()
    export_run(tmp_path / "run", tmp_path / "m3")
    assert not (tmp_path / "m3" / "prompts.txt").exists() and read_prompts(tmp_path / "m3") == []
    assert (tmp_path / "m3" / "model.safetensors").is_file()


def test_resume_is_exact(toy_data, tmp_path):
    run_cli(*train_args(toy_data, tmp_path / "full", 6), check=True)
    run_cli(*train_args(toy_data, tmp_path / "split", 3), check=True)
    p = run_cli("train", "--out", tmp_path / "split", "--resume", "--max-steps", 6, check=True)
    assert "done" in p.stdout
    for raw in (True, False):
        assert_identical(exported(tmp_path / "full", tmp_path / "e1", raw), exported(tmp_path / "split", tmp_path / "e2", raw))


def test_sigkill_then_resume_is_exact(toy_data, tmp_path):
    log = ("--set", "log_every=1")
    run_cli(*train_args(toy_data, tmp_path / "full", 8, *log), check=True)
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "glide", *map(str, train_args(toy_data, killed, 1000, *log))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (killed / "checkpoints" / "step_00000004" / "state.json").exists():
            assert time.time() < deadline and proc.poll() is None, "training did not reach step 4"
            time.sleep(0.05)
        time.sleep(0.3)  # let it get on with later steps (and maybe a checkpoint write) before the kill
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    logged_before = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    p = run_cli("train", "--out", killed, "--resume", "--max-steps", 8)
    assert p.returncode == 0, p.stderr
    for raw in (True, False):
        assert_identical(exported(tmp_path / "full", tmp_path / "e1", raw), exported(killed, tmp_path / "e2", raw))
    # metrics.jsonl: the steps after the checkpoint were logged again by the resumed run, and only once
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9)), (logged_before, steps)


def test_ddp_two_processes_stay_in_sync(toy_data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_port", str(free_port()),
                        str(Path(__file__).parent / "ddp_worker.py"), str(toy_data), str(tmp_path / "ddp")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "RANKS-IN-SYNC" in p.stdout
    # the checkpoint loads in a single process
    export_run(tmp_path / "ddp", tmp_path / "model")
    from glide.pipeline import load_model

    model, _ = load_model(tmp_path / "model")
    assert sum(p.numel() for p in model.parameters()) > 0


def test_fsdp_trains_like_ddp(toy_data, tmp_path):
    """FSDP (2 gloo processes) computes the same training as DDP: same data, same randomness, the same
    weights, EMA and optimizer state up to float rounding; its checkpoint is the usual full one."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for mode in ("ddp", "fsdp"):
        p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                            str(free_port()), str(Path(__file__).parent / "ddp_worker.py"), str(toy_data), str(tmp_path / mode),
                            mode], capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
    assert "FSDP-DONE" in p.stdout
    ckpt = {mode: tmp_path / mode / "checkpoints" / "step_00000004" for mode in ("ddp", "fsdp")}
    for name in ("model", "ema", "optimizer"):
        a, b = (load_file(str(ckpt[m] / f"{name}.safetensors")) for m in ("ddp", "fsdp"))
        assert a.keys() == b.keys() and len(a) > 10
        for k in a:
            # float rounding only (reduce-scatter and all-reduce sum in different orders); a real mismatch,
            # e.g. ranks starting from different weights, differs by 1e-2 and more
            assert torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-3), (name, k, (a[k] - b[k]).abs().max())
    assert (ckpt["ddp"] / "optimizer.json").read_text() == (ckpt["fsdp"] / "optimizer.json").read_text()
    # an FSDP run resumes in a single process
    cfg = TrainConfig(preset="tiny", data=str(toy_data), out=str(tmp_path / "fsdp"), max_steps=5, batch_size=4,
                      checkpoint_every=5, workers=0, ema_rate=0.9, log_every=1, warmup_steps=1, lr=1e-3)
    train(cfg, resume=True)
    assert (tmp_path / "fsdp" / "checkpoints" / "step_00000005").is_dir()


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    d = tmp_path / "folder"
    d.mkdir()
    for i in range(10):
        Image.new("RGBA", (40, 30), (255, 0, 0, 128 if i % 2 else 255)).save(d / f"img{i}.png")
        (d / f"img{i}.txt").write_text(f"red thing {i}")
    (d / "broken1.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (d / "broken2.jpg").write_bytes(b"")
    (d / "broken1.txt").write_text("broken")
    (d / "broken2.txt").write_text("broken")
    Image.new("RGB", (40, 30), "blue").save(d / "uncaptioned1.png")
    Image.new("RGB", (40, 30), "green").save(d / "uncaptioned2.png")
    p = run_cli(*train_args(d, tmp_path / "run", 6))
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["skipped_images"] >= 2
    assert "skipped" in p.stderr and "unreadable" in p.stderr
    assert "broken1.png" in p.stderr or "broken2.jpg" in p.stderr  # the warning names a file
    assert "2 of 14 images" in p.stderr and "no .txt caption" in p.stderr


# bf16 on a CPU: autocast to its bf16 kernels (2.1x fp32's images/s on AVX-512 BF16); the weights stay fp32.
# Where the CPU has no bf16 instructions, bf16 is emulated (about 8x slower than fp32): there the bf16 run is cut
# to 5 steps, which checks the plumbing (fp32 weights, finite losses, the warning), not the learning.
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_loss_falls(toy_data, tmp_path, precision):
    learn = precision == "fp32" or cpu_has_native_bf16()
    steps = 60 if learn else 5
    cfg = TrainConfig(preset="tiny", data=str(toy_data), out=str(tmp_path / "r"), max_steps=steps, batch_size=16,
                      lr=2e-3, warmup_steps=5, ema_rate=0.0, log_every=1 if not learn else 5,
                      checkpoint_every=steps, workers=0, precision=precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(cfg)
    assert any("emulated" in str(w.message) for w in caught) == (not learn)
    trainer.run()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(np.isfinite(r["mse"]) for r in rows)
    if learn:
        first = np.mean([r["mse"] for r in rows[:2]])
        last = np.mean([r["mse"] for r in rows[-2:]])
        assert last < 0.7 * first, (first, last)


def test_fine_tune_official_text2im_into_inpainting(tmp_path, toy_data):
    """New input channels start at zero: the inpainting model first behaves exactly like the text2im one."""
    from glide import official

    ckpt = make_official_checkpoint(tmp_path / "tiny.pt")
    cfg = TrainConfig(kind="inpaint", data=str(toy_data), out=str(tmp_path / "ft"), init_from=str(ckpt),
                      init_kind="base", init_options=TINY_OPTIONS, max_steps=1, batch_size=2, workers=0)
    trainer = Trainer(cfg)
    assert trainer.model_cfg.inpaint and trainer.model_cfg.in_channels == 7
    w = trainer.model.unet.input_conv.weight
    assert w[:, 3:].abs().max() == 0 and w[:, :3].abs().max() > 0
    src = official.load_model(torch.load(ckpt, weights_only=True), **TINY_OPTIONS)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([3, 700])
    toks, mask = official.tokenize("a red apple", 16)
    toks, mask = torch.tensor([toks] * 2), torch.tensor([mask] * 2)
    trainer.model.eval()
    with torch.no_grad():
        a = src(x, t, tokens=toks, mask=mask)
        b = trainer.model(x, t, tokens=toks, mask=mask, inpaint_image=torch.randn(2, 3, 32, 32),
                          inpaint_mask=torch.ones(2, 1, 32, 32))
    torch.testing.assert_close(a, b)
    trainer.run()  # and it trains
    assert (tmp_path / "ft" / "checkpoints" / "step_00000001").is_dir()


def test_fine_tune_eps_model_into_v_prediction(tmp_path, toy_data):
    """init_from with [model] prediction = "v": the same weights, reinterpreted; any other [model] key is refused."""
    from glide.pipeline import Pipeline

    ckpt = make_official_checkpoint(tmp_path / "tiny.pt")
    common = dict(data=str(toy_data), init_from=str(ckpt), init_kind="base", init_options=TINY_OPTIONS,
                  max_steps=1, batch_size=2, workers=0)
    trainer = Trainer(TrainConfig(out=str(tmp_path / "v"), model={"prediction": "v"}, **common))
    assert trainer.model_cfg.prediction == "v"
    trainer.run()
    export_run(tmp_path / "v", tmp_path / "vm")
    assert Pipeline.from_pretrained(tmp_path / "vm").model.cfg.prediction == "v"
    with pytest.raises(GlideError, match="may set only prediction"):
        Trainer(TrainConfig(out=str(tmp_path / "w"), model={"unet": {"channels": 64}}, **common))


@pytest.mark.parametrize("kind", ["superres", "superres-inpaint"])
def test_superres_kinds_train(kind, toy_data, tmp_path):
    cfg = TrainConfig(preset="tiny", kind=kind, data=str(toy_data), out=str(tmp_path / kind), max_steps=2,
                      batch_size=2, workers=0, sample_every=2, sample_steps=2, sample_prompts=["a red square"])
    Trainer(cfg).run()
    assert (tmp_path / kind / "samples" / "step_00000002.png").is_file()


def test_config_errors(toy_data, tmp_path):
    p = run_cli("train", "--preset", "tiny", "--data", toy_data, "--out", tmp_path / "r", "--set", "learning_rate=1")
    assert p.returncode == 2 and "unknown key" in p.stderr and "Traceback" not in p.stderr
    p = run_cli("train", "--preset", "tiny", "--data", tmp_path / "missing", "--out", tmp_path / "r")
    assert p.returncode == 2 and "data not found" in p.stderr
    (tmp_path / "bad.toml").write_text("preset = 'tiny'\nmax_step = 3\n")
    p = run_cli("train", tmp_path / "bad.toml", "--data", toy_data, "--out", tmp_path / "r")
    assert p.returncode == 2 and "max_step" in p.stderr
    # data stored at 32 px cannot train a 64 px model
    with pytest.raises(GlideError, match="32 px"):
        Trainer(TrainConfig(preset="small", data=str(toy_data), out=str(tmp_path / "r2")))
    p = run_cli("train", "--out", tmp_path / "nothing", "--resume")
    assert p.returncode == 2


def test_caption_filter_trains_on_a_slice(toy_data, tmp_path):
    """caption_filter keeps only the matching images (here the 16 red squares) and says so; bad patterns
    and patterns that match nothing are clear errors, before any training."""
    from glide.data.datasets import CaptionFilter, open_source

    src = CaptionFilter(open_source(toy_data, 32), r"^a red square")
    assert len(src) == 16 and all(src.load(i)[1][0].startswith("a red square") for i in range(len(src)))
    assert all(tuple(src.load(i)[0][14, 8 if "left" in src.caption(i) else 24]) == (220, 30, 30) for i in range(16))
    cfg = TrainConfig(preset="tiny", data=str(toy_data), out=str(tmp_path / "r"), max_steps=1, batch_size=4,
                      caption_filter="red square")
    assert len(Trainer(cfg).source) == 16
    p = run_cli(*train_args(toy_data, tmp_path / "r2", 1, "--set", 'caption_filter="purple"'))
    assert p.returncode == 2 and "no training caption matches" in p.stderr and "Traceback" not in p.stderr
    p = run_cli(*train_args(toy_data, tmp_path / "r3", 1, "--set", 'caption_filter="(red"'))
    assert p.returncode == 2 and "not a valid regular expression" in p.stderr
    with pytest.raises(GlideError, match="snr_gamma"):
        TrainConfig(preset="tiny", data=str(toy_data), out="x", snr_gamma=-1).validate()
    with pytest.raises(GlideError, match="profile_at"):
        TrainConfig(preset="tiny", data=str(toy_data), out="x", profile_at=-1).validate()


def test_ema_warms_up():
    """Early EMA updates follow the weights closely, so a short run's EMA is not mostly initial weights."""
    from types import SimpleNamespace

    t = SimpleNamespace(cfg=SimpleNamespace(ema_rate=0.9999))
    assert Trainer.ema_decay(t, 0) == pytest.approx(0.1)
    assert Trainer.ema_decay(t, 90) == pytest.approx(0.91)
    assert Trainer.ema_decay(t, 10**7) == 0.9999
    share_of_init = np.prod([Trainer.ema_decay(t, n) for n in range(820)])
    assert share_of_init < 0.02


def test_cosine_lr_follows_the_time_limit():
    """With a time limit the cosine schedule decays by whichever is further along, steps or time, so a run cut
    by its time limit still ends at a learning rate near 0."""
    from types import SimpleNamespace

    t = SimpleNamespace(cfg=SimpleNamespace(lr=1e-3, warmup_steps=10, lr_schedule="cosine", max_steps=100_000),
                        time_progress=0.0)
    assert Trainer.lr_at(t, 4) == pytest.approx(5e-4)  # warm-up
    assert Trainer.lr_at(t, 10) == pytest.approx(1e-3)
    t.time_progress = 0.5
    assert Trainer.lr_at(t, 11) == pytest.approx(5e-4)
    t.time_progress = 1.02  # the last steps after the limit, before the check that stops the run
    assert Trainer.lr_at(t, 12) == 0.0
    t.time_progress = 0.0
    assert Trainer.lr_at(t, 100_000) == 0.0  # steps alone still decay it
    t.cfg.lr_schedule = "constant"
    t.time_progress = 0.9
    assert Trainer.lr_at(t, 50) == 1e-3


def test_webdataset_shards_train(tmp_path, toy_data):
    """WebDataset tar shards (png + txt per sample) stream into training; a broken sample is skipped."""
    import io
    import tarfile

    pytest.importorskip("webdataset")
    z = np.load(toy_data)
    for shard in range(2):
        with tarfile.open(tmp_path / f"shard-{shard:04d}.tar", "w") as tar:
            for k in range(8):
                i = shard * 8 + k
                buf = io.BytesIO()
                Image.fromarray(z["images"][i]).save(buf, format="PNG")
                data = buf.getvalue() if (shard, k) != (1, 3) else b"garbage"
                for name, payload in ((f"{i:05d}.png", data), (f"{i:05d}.txt", str(z["captions"][i]).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    cfg = TrainConfig(preset="tiny", data=str(tmp_path / "shard-*.tar"), out=str(tmp_path / "run"), max_steps=5,
                      batch_size=4, workers=0, checkpoint_every=5)
    trainer = Trainer(cfg)
    trainer.run()
    assert trainer.stream.pos.skipped >= 1 and trainer.stream.pos.epoch >= 1
    assert (tmp_path / "run" / "checkpoints" / "step_00000005").is_dir()


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_documented_configs_are_valid(path):
    from glide.training.config import load_toml

    cfg = TrainConfig.from_dict({**load_toml(path), "data": "d", "out": "o"}, where=str(path)).validate()
    if cfg.kind == "clip":
        from glide.clip.model import get_clip_preset

        assert get_clip_preset(cfg.preset).image_size > 0
    elif not cfg.init_from:
        assert cfg.model_config().kind == cfg.kind


def test_resume_truncates_the_metrics_log_to_the_checkpoint(tmp_path):
    from glide.training.trainer import _truncate_metrics

    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 8)) + '{"step": 8, "lo')
    _truncate_metrics(log, 5)  # the checkpoint is at step 5; steps 6-7 and the torn line go
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3, 4, 5]


def test_packaged_configs_are_found_by_name(tmp_path):
    from glide.training.config import PACKAGED_CONFIGS, find_config, packaged_configs

    assert find_config("emoji-base") == PACKAGED_CONFIGS / "emoji-base.toml"
    assert find_config("configs/emoji-base.toml").name == "emoji-base.toml"
    assert "emoji-base" in packaged_configs() and len(packaged_configs()) >= 10
    own = tmp_path / "emoji-base.toml"  # a file of that name wins over the packaged config
    own.write_text("max_steps = 1\n")
    assert find_config(own) == own
    with pytest.raises(GlideError, match="packaged configs: .*emoji-base"):
        find_config("emoji-bsae")
