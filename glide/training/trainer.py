"""The GLIDE training loop, for every model kind, from one CPU to many GPUs (torchrun + DDP or FSDP).

One step: take a batch, drop 20% of captions (classifier-free guidance), build the kind's extra inputs
(low-res image, inpainting mask), noise the images at uniform random timesteps, and minimise the hybrid
loss (eps MSE + lambda * VLB). AdamW with warmup and gradient clipping; EMA of the weights; bf16 autocast
on CUDA. Checkpoints hold everything needed to continue bit-exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import ModelConfig
from ..data.datasets import CaptionFilter, open_source
from ..text import fit_vocab
from ..data.filter import data_filter_record
from ..data import balance
from ..data.loader import BatchStream, Position
from ..errors import GlideError
from ..files import write_text_atomic
from ..runtime import warn_if_bf16_is_slow
from . import state as ckpt_io
from .config import TrainConfig
from .distributed import Distributed, local
from .init import init_model
from .resident import ResidentStream
from .step import make_loss_fn
from .distill import GuidanceDistillTask
from .tasks import ClipTask, DiffusionTask

PROFILE_STEPS = 5  # steps in the profile window of TrainConfig.profile_at


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.cfg = cfg.validate()
        self.dist = Distributed.from_env()
        self.time_progress = 0.0  # share of time_limit_minutes used, updated at each log step (cosine lr)
        self.device = self.dist.device
        self.run_dir = Path(cfg.out)
        self.resume = resume
        torch.manual_seed(cfg.seed + self.dist.rank)

        ckpt = ckpt_io.latest_checkpoint(self.run_dir) if resume else None
        if resume and ckpt is None:
            raise GlideError(f"--resume: no checkpoint in {self.run_dir}")
        if not resume and ckpt_io.latest_checkpoint(self.run_dir) is not None:
            raise GlideError(f"{self.run_dir} already has checkpoints: pass --resume to continue, or choose a new --out")
        saved = ckpt_io.read_checkpoint(ckpt) if ckpt else None

        # The model: decided in one place (init.py), then built and filled.
        choice = init_model(cfg, saved, fit_vocab=self._fit_vocab)
        task = ClipTask if choice.kind == "clip" else GuidanceDistillTask if cfg.distill_scales else DiffusionTask
        self.task = task(choice.config, cfg, self.device)
        self.model_cfg = self.task.cfg
        self.model = self.task.build().to(self.device)
        if choice.state is not None:
            self.model.load_state_dict(choice.state)
        del choice
        for part in ("unet", "text"):
            if hasattr(getattr(self.model, part, None), "grad_checkpointing"):
                getattr(self.model, part).grad_checkpointing = cfg.grad_checkpointing
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.ema = None
        if cfg.ema_rate > 0:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
            if saved and "ema" in saved:
                self.ema.load_state_dict(saved["ema"])

        # Wrap (DDP, or FSDP which shards the parameters in place) before the optimizer sees them.
        self.net = self.dist.wrap(self.model, cfg)
        if self.dist.sharded and self.ema is not None:
            self.dist.shard(self.ema)  # the EMA is sharded like the weights it follows
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=cfg.adam_betas,
                                     weight_decay=cfg.weight_decay, **({"fused": True} if cfg.fused_adamw else {}))
        if saved and "optimizer" in saved:
            self.dist.load_optimizer_state(self.model, self.opt, saved["optimizer"])
            _match_state_strides(self.opt)

        self.step = saved["state"]["step"] if saved else 0

        # Data: each process reads its own share of every epoch.
        self.source = source = self._open_source(self.task.image_size)
        # What `glide data filter` did to this data (policy and its hash), for the run and the model card.
        self.data_filter = data_filter_record(cfg.data)
        if self.data_filter and self.dist.rank == 0:
            tqdm.write(f"data filtered by policy {self.data_filter['policy']!r} "
                       f"(sha256 {self.data_filter['policy_sha256'][:16]}...)")
        if cfg.batch_size % self.dist.world:
            raise GlideError(f"batch size {cfg.batch_size} does not split over {self.dist.world} processes")
        self.local_batch = cfg.batch_size // self.dist.world
        rank_state = saved["ranks"].get(self.dist.rank) if saved else None
        position = Position(**rank_state["position"]) if rank_state else None
        weights = self._concept_weights(source)
        if cfg.resident:  # the dataset on the device, every per-step draw made there
            self.stream = ResidentStream(source, self.task, cfg, self.device, self.dist.rank, self.dist.world, position,
                                         weights)
            if rank_state:
                if "resident" not in rank_state["rng"]:
                    raise GlideError("this run was trained with resident = false; resume it with the same setting")
                self.stream.gen.set_state(ckpt_io.rng_from_str(rank_state["rng"]["resident"]))
        else:
            self.stream = BatchStream(source, self.local_batch, cfg.seed, self.dist.rank, self.dist.world, position,
                                      workers=cfg.workers, hflip=cfg.hflip, weights=weights)

        # Training randomness (timesteps, noise, caption dropout, masks) has its own generators.
        # On the CPU: caption dropout and masks. On the training device: timesteps and noise (no transfer).
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + self.dist.rank)
        self.dgen = torch.Generator(self.device).manual_seed(cfg.seed * 1000 + self.dist.rank + 500)
        if rank_state:
            self.gen.set_state(ckpt_io.rng_from_str(rank_state["rng"]["train"]))
            self.dgen.set_state(ckpt_io.rng_from_str(rank_state["rng"]["device"]))
            torch.set_rng_state(ckpt_io.rng_from_str(rank_state["rng"]["torch"]))
            if self.device.type == "cuda" and "cuda" in rank_state["rng"]:
                torch.cuda.set_rng_state(ckpt_io.rng_from_str(rank_state["rng"]["cuda"]), self.device)

        # forward + loss, eager or compiled as one graph (step.py)
        amp = torch.bfloat16 if self._precision() == "bf16" else None
        if amp is not None and self.dist.rank == 0:
            warn_if_bf16_is_slow(self.device, amp, 'precision = "bf16"')
        self.loss_fn = make_loss_fn(self.task, self.net, self.dgen, amp, cfg.compile, cfg.compile_mode)

    def _open_source(self, size: int):
        if getattr(self, "_source", (None, None))[0] != size:
            cfg = self.cfg
            source = open_source(cfg.data, size, cfg.background)
            if cfg.caption_filter:
                source = CaptionFilter(source, cfg.caption_filter)
                if self.dist.rank == 0:
                    tqdm.write(f"caption_filter {cfg.caption_filter!r}: training on {len(source)} image(s)")
            self._source = (size, source)
        return self._source[1]

    def _concept_weights(self, source):
        """Draw probabilities for concept balancing (glide.data.balance), or None for a uniform order."""
        weights = balance.source_weights(source, self.cfg.concept_pattern, self.cfg.concept_power)
        if weights is not None and self.dist.rank == 0:
            tqdm.write(balance.summary(source, self.cfg.concept_pattern, self.cfg.concept_power, weights))
        return weights

    def _fit_vocab(self, model_cfg: ModelConfig) -> ModelConfig:
        """Prune the GPT-2 table to the tokens of the training captions (alternatives included)."""
        if model_cfg.text is None or model_cfg.text.tokenizer != "gpt2":
            raise GlideError("fit_vocab needs a model with the gpt2 tokenizer ([model.text] tokenizer = \"gpt2\")")
        source = self._open_source(model_cfg.unet.image_size)
        if not hasattr(source, "texts"):
            raise GlideError("fit_vocab needs a folder, a .jsonl manifest or an .npz file, not WebDataset shards")
        vocab = fit_vocab(t for i in range(len(source)) for t in source.texts(i))
        if self.dist.rank == 0:
            tqdm.write(f"fit_vocab: {len(vocab)} of GPT-2's 50257 tokens, from {len(source)} items' captions")
        return model_cfg.replace(text=dataclasses.replace(model_cfg.text, vocab=vocab))

    def _precision(self) -> str:
        if self.cfg.precision == "auto":
            return "bf16" if self.device.type == "cuda" else "fp32"
        return self.cfg.precision  # bf16 on a CPU: autocast to its bf16 kernels (fast with AVX-512 BF16)

    # -- one batch ------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        c = self.cfg
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        if c.lr_schedule == "cosine":
            # With a time limit the run ends at whichever comes first, so the decay follows the further along.
            p = max((step - c.warmup_steps) / max(1, c.max_steps - c.warmup_steps), self.time_progress)
            return c.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
        return c.lr

    def ema_decay(self, step: int) -> float:
        """EMA decay with a warm-up, min(rate, (1 + n) / (10 + n)): without it a short run's EMA still
        holds a large share of the initial weights (0.998^820 = 19% after 820 steps), which ruins samples."""
        return min(self.cfg.ema_rate, (1 + step) / (10 + step))

    def train_step(self) -> dict[str, float | torch.Tensor]:
        lr = self.lr_at(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        if self.cfg.resident:
            batch = self.task.add_noise(self.stream.next_inputs(self.local_batch), self.dgen)
        else:
            images, captions = self.stream.next_batch()
            batch = self.task.make_inputs(images, captions, self.gen, self.dgen)
        micro = self.cfg.microbatch or self.local_batch
        chunks = [slice(s, min(s + micro, self.local_batch)) for s in range(0, self.local_batch, micro)]
        totals: dict[str, torch.Tensor] = {}
        for k, sl in enumerate(chunks):
            last = k == len(chunks) - 1
            with self.dist.no_sync(self.net) if not last else nullcontext():
                losses = self.loss_fn(batch, sl)
                weight = (sl.stop - sl.start) / self.local_batch
                (losses["loss"].mean() * weight).backward()
            for name, v in losses.items():
                totals[name] = totals.get(name, 0.0) + v.detach().mean() * weight
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        if hasattr(grad_norm, "full_tensor"):  # FSDP: a replicated DTensor
            grad_norm = grad_norm.full_tensor()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.ema is not None:
            with torch.no_grad():  # under FSDP each rank updates its own shard
                torch._foreach_lerp_(local(self.ema.parameters()), local(self.model.parameters()),
                                     1 - self.ema_decay(self.step))
        self.step += 1
        return {**totals, "grad_norm": grad_norm, "lr": lr}

    # -- outputs --------------------------------------------------------------------------------
    def save(self) -> Path:
        cfg = self.cfg
        tmp = None
        if self.dist.rank == 0:
            tmp = ckpt_io.begin_checkpoint(self.run_dir, self.step)
        tmp = self.dist.broadcast_path(tmp)
        rng = {"train": ckpt_io.rng_to_str(self.gen.get_state()), "device": ckpt_io.rng_to_str(self.dgen.get_state()),
               "torch": ckpt_io.rng_to_str(torch.get_rng_state())}
        if self.device.type == "cuda":
            rng["cuda"] = ckpt_io.rng_to_str(torch.cuda.get_rng_state(self.device))
        if self.cfg.resident:
            rng["resident"] = ckpt_io.rng_to_str(self.stream.gen.get_state())
        ckpt_io.write_rank_state(tmp, self.dist.rank, {"position": self.stream.pos.to_dict(), "rng": rng})
        # Full tensors (gathered on rank 0 under FSDP: every rank takes part).
        model_sd = self.dist.full_state_dict(self.model)
        ema_sd = self.dist.full_state_dict(self.ema) if self.ema is not None else None
        opt_sd = self.dist.full_optimizer_state(self.model, self.opt)
        self.dist.barrier()
        if self.dist.rank == 0:
            ckpt_io.write_weights(tmp, model_sd, ema_sd, opt_sd)
            state = {
                "step": self.step, "kind": "clip" if isinstance(self.task, ClipTask) else self.model_cfg.kind, "preset": cfg.preset if not cfg.init_from else None,
                "model_config": self.task.config_dict(), "train_config": cfg.to_dict(), "world": self.dist.world,
                "lr": self.lr_at(self.step), "skipped_images": self.stream.pos.skipped,
                "data_filter": self.data_filter,
            }
            ckpt_io.finish_checkpoint(tmp, self.step, state, cfg.keep_checkpoints)
        self.dist.barrier()
        return self.run_dir / "checkpoints" / f"step_{self.step:08d}"

    def evaluate(self) -> None:
        """Periodic look at the model (EMA weights): sample grids, or CLIP retrieval by timestep."""
        model = self.ema if self.ema is not None else self.model
        if self.dist.sharded:  # sample with an unsharded copy: gather the weights (every rank takes part)
            sd = self.dist.full_state_dict(model)
            if self.dist.rank != 0:
                return
            model = self.task.build().to(self.device)
            model.load_state_dict(sd)
            model.eval()
        if self.dist.rank != 0:
            return
        precision = torch.bfloat16 if self._precision() == "bf16" else torch.float32
        with torch.no_grad():
            self.task.evaluate(model, self.run_dir, self.step, self.source, precision)
        self.model.train()

    def _start_profiler(self) -> torch.profiler.profile:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if self.device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        profiler = torch.profiler.profile(activities=activities)
        profiler.start()
        return profiler

    def _write_profile(self, profiler: torch.profiler.profile) -> None:
        """Where a step's time goes, per op or kernel (self time, the device's on a GPU), over PROFILE_STEPS steps:
        what a GPU lease needs to see to make training faster, for the price of a few steps."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        profiler.stop()
        key = "self_device_time_total" if self.device.type == "cuda" else "self_cpu_time_total"
        try:
            table = profiler.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=80)
        except Exception as e:  # a profiler quirk of some torch build must not end a training run
            tqdm.write(f"warning: no profile table ({type(e).__name__}: {e})")
            return
        head = (f"steps {self.cfg.profile_at}..{self.cfg.profile_at + PROFILE_STEPS - 1} of {self.cfg.batch_size} "
                f"images on {self.device}, sorted by {key}\n")
        (self.run_dir / "profile.txt").write_text(head + table)
        tqdm.write(f"profile of {PROFILE_STEPS} steps written to {self.run_dir / 'profile.txt'}")

    def run(self) -> Path:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.rank == 0:
            (self.run_dir / "config.json").write_text(json.dumps(
                {"train": cfg.to_dict(), "model": self.task.config_dict(), "data_filter": self.data_filter}, indent=1))
        if self.resume and self.dist.rank == 0:
            _truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        metrics = open(self.run_dir / "metrics.jsonl", "a") if self.dist.rank == 0 else None
        writer = self._tensorboard()
        self.model.train()
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc="train", dynamic_ncols=True,
                   disable=self.dist.rank != 0)
        t_last, step_last = time.perf_counter(), self.step
        t_start = t_last
        last_saved = None
        profiler = None
        try:
            while self.step < cfg.max_steps:
                if cfg.profile_at and self.step == cfg.profile_at and self.dist.rank == 0:
                    profiler = self._start_profiler()
                out = self.train_step()
                if profiler is not None and self.step == cfg.profile_at + PROFILE_STEPS:
                    self._write_profile(profiler)
                    profiler = None
                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                    vals = {k: float(v) for k, v in out.items()}
                    vals = self.dist.mean(vals, keys=tuple(k for k in vals if k not in ("lr", "grad_norm")))
                    now = time.perf_counter()
                    ips = (self.step - step_last) * cfg.batch_size / max(now - t_last, 1e-9)
                    t_last, step_last = now, self.step
                    row = {"step": self.step, **{k: round(v, 6) for k, v in vals.items()}, "img_per_s": round(ips, 2),
                           "skipped_images": self.stream.pos.skipped}
                    if metrics:
                        metrics.write(json.dumps(row) + "\n")
                        metrics.flush()
                    if writer:
                        for k, v in row.items():
                            writer.add_scalar(f"train/{k}", v, self.step)
                    bar.set_postfix(loss=f"{vals['loss']:.4f}", img_s=f"{ips:.1f}")
                bar.update(1)
                out_of_time = False
                if cfg.time_limit_minutes and self.step % cfg.log_every == 0:
                    elapsed = (time.perf_counter() - t_start) / 60
                    out_of_time = self.dist.any(elapsed > cfg.time_limit_minutes)
                    # Averaged over ranks so that every rank steps with the same learning rate.
                    self.time_progress = self.dist.mean({"p": elapsed / cfg.time_limit_minutes}, keys=("p",))["p"]
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps or out_of_time:
                    last_saved = self.save()
                if cfg.sample_every and (self.step % cfg.sample_every == 0 or out_of_time):
                    self.evaluate()
                if out_of_time:
                    tqdm.write(f"time limit of {cfg.time_limit_minutes} min reached at step {self.step}")
                    break
        finally:
            if profiler is not None:  # the run ended inside the window: no table
                profiler.stop()
            bar.close()
            self.stream.close()
            if metrics:
                metrics.close()
            if writer:
                writer.close()
        if self.stream.pos.skipped and self.dist.rank == 0:
            latest = f" (latest: {self.stream.last_bad})" if self.stream.last_bad else ""
            tqdm.write(f"warning: skipped {self.stream.pos.skipped} unreadable image(s) during training{latest}")
        return last_saved or self.run_dir

    def _tensorboard(self):
        if not self.cfg.tensorboard or self.dist.rank != 0:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GlideError("tensorboard = true needs the `tensorboard` package: pip install tensorboard") from None
        return SummaryWriter(str(self.run_dir / "tensorboard"))


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop the log rows after the checkpoint's step: the resumed run logs those steps again."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = []
    for line in lines:
        try:
            if json.loads(line).get("step", 0) > step:
                continue
        except (json.JSONDecodeError, AttributeError):
            continue  # a line cut short by the interruption
        keep.append(line)
    if len(keep) != len(lines):
        write_text_atomic(path, "".join(keep))


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    trainer = Trainer(cfg, resume)
    try:
        return trainer.run()
    finally:
        trainer.dist.close()


def _match_state_strides(opt: torch.optim.Optimizer) -> None:
    """Give loaded moments their parameter's memory format. Checkpoints store them contiguous and the optimizer's
    load keeps that, but with channels_last the fused AdamW needs each moment laid out like its parameter."""
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    opt.state[p][k] = torch.empty_like(p, dtype=v.dtype).copy_(v)
