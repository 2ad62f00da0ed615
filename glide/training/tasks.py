"""What is trained: a task builds the model, turns a data batch into inputs, and computes the loss.

`DiffusionTask` trains GLIDE models of every kind with the hybrid loss; `ClipTask` trains the noised
CLIP with a contrastive loss on noised images. The trainer around them (optimizer, EMA, checkpoints,
DDP) is shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ModelConfig
from ..data.masks import random_masks
from ..diffusion import Diffusion
from ..diffusion.losses import hybrid_loss
from ..images import from_uint8, quantize_8bit
from ..models import GLIDE
from ..text import get_tokenizer


def pick_captions(captions: list[list[str]], g: torch.Generator, dropout: float, alt_prob: float) -> list[str]:
    """One caption per item: the canonical one, sometimes an alternative, sometimes dropped ("")."""
    b = len(captions)
    drop, alt, pick = torch.rand(b, generator=g), torch.rand(b, generator=g), torch.rand(b, generator=g)
    texts = []
    for k, caps in enumerate(captions):
        text = caps[0]
        if len(caps) > 1 and alt[k] < alt_prob:
            text = caps[1 + int(pick[k] * (len(caps) - 1))]
        texts.append("" if drop[k] < dropout else text)
    return texts


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return from_uint8(images, device)


class DiffusionTask:
    def __init__(self, model_cfg: ModelConfig, train_cfg, device: torch.device):
        self.cfg, self.train_cfg, self.device = model_cfg, train_cfg, device
        self.diffusion = Diffusion.from_schedule(model_cfg.noise_schedule, model_cfg.diffusion_steps)
        self.tokenizer = get_tokenizer(model_cfg.text.tokenizer, model_cfg.text.vocab) if model_cfg.text else None
        self.image_size = model_cfg.unet.image_size

    def build(self) -> GLIDE:
        return GLIDE(self.cfg)

    def config_dict(self) -> dict:
        return self.cfg.to_dict()

    def make_inputs(self, images: np.ndarray, captions: list[list[str]], g: torch.Generator,
                    dgen: torch.Generator) -> dict:
        c, m = self.train_cfg, self.cfg
        x0 = to_tensor(images, self.device)
        b = len(x0)
        batch: dict = {"x0": x0}
        if self.tokenizer is not None:
            texts = pick_captions(captions, g, c.caption_dropout, c.alt_caption_prob)
            tokens, mask = self.tokenizer(texts, m.text.context, warn=False)
            batch["tokens"], batch["mask"] = tokens.to(self.device), mask.to(self.device)
        if m.inpaint:
            masks = random_masks(b, m.unet.image_size, g, p_unmasked=c.p_unmasked).to(self.device)
            batch["inpaint_mask"], batch["inpaint_image"] = masks, x0
        return self.add_noise(batch, dgen)

    def add_noise(self, batch: dict, dgen: torch.Generator) -> dict:
        """The device-side rest of a batch: the upsampler's low-res input, timesteps and noise."""
        x0 = batch["x0"]
        if self.cfg.super_res:
            batch["low_res"] = self.low_res(x0)
        batch["i"] = torch.randint(0, self.diffusion.num_timesteps, (len(x0),), generator=dgen, device=self.device)
        batch["noise"] = torch.randn(x0.shape, generator=dgen, device=self.device)
        return batch

    def low_res(self, x0: torch.Tensor) -> torch.Tensor:
        """The upsampler's input: the target downsampled and quantised to 8 bits, like a real 64 px sample."""
        s = self.cfg.low_res_size
        low = F.interpolate(x0, size=(s, s), mode="bicubic", antialias=True, align_corners=False)
        return quantize_8bit(low)

    def loss(self, net, batch: dict, sl: slice, autocast, dgen: torch.Generator) -> dict[str, torch.Tensor]:
        x0, i, noise = batch["x0"][sl], batch["i"][sl], batch["noise"][sl]
        xt = self.diffusion.q_sample(x0, i, noise)
        kw = {k: batch[k][sl] for k in ("tokens", "mask", "low_res", "inpaint_image", "inpaint_mask") if k in batch}
        with autocast:
            out = net(xt, self.diffusion.model_timesteps(i), **kw)
        return hybrid_loss(self.diffusion, out, x0, xt, i, noise, self.train_cfg.vlb_weight, self.train_cfg.snr_gamma,
                           self.cfg.prediction)

    def evaluate(self, model, run_dir: Path, step: int, source, precision) -> None:
        """A grid of samples for the fixed prompts (super-resolution: from fixed low-res data images)."""
        from ..images import grid, save_atomic, to_pil
        from ..pipeline import Pipeline

        prompts = list(self.train_cfg.sample_prompts)
        if not prompts:
            return
        inputs = None
        if self.cfg.super_res:
            n = min(len(prompts), len(source))
            imgs = np.stack([source.load(i)[0] for i in range(n)])
            inputs = {"low_res": self.low_res(to_tensor(imgs, self.device))}
            prompts = prompts[:n]
        pipe = Pipeline(model, self.device, precision)
        g = torch.Generator(self.device).manual_seed(1234)
        x = pipe.sample(prompts, guidance_scale=self.train_cfg.sample_guidance, steps=self.train_cfg.sample_steps,
                        sampler="ddim", generator=g, inputs=inputs)
        save_atomic(grid(to_pil(x), cols=len(prompts)), run_dir / "samples" / f"step_{step:08d}.png")


class ClipTask:
    """The noised CLIP: symmetric InfoNCE between captions and images noised at uniform timesteps."""

    def __init__(self, clip_cfg, train_cfg, device: torch.device):
        from ..clip.tokenizer import get_clip_tokenizer

        self.cfg, self.train_cfg, self.device = clip_cfg, train_cfg, device
        self.diffusion = Diffusion.from_schedule(clip_cfg.noise_schedule, clip_cfg.timesteps)
        self.tokenizer = get_clip_tokenizer()
        self.image_size = clip_cfg.image_size

    def build(self):
        from ..clip.model import NoisedCLIP

        return NoisedCLIP(self.cfg)

    def config_dict(self) -> dict:
        return self.cfg.to_dict()

    def make_inputs(self, images, captions, g, dgen) -> dict:
        texts = pick_captions(captions, g, 0.0, self.train_cfg.alt_caption_prob)  # no empty captions here
        tokens, lens = self.tokenizer(texts, self.cfg.text_context)
        return {"x0": to_tensor(images, self.device), "tokens": tokens.to(self.device), "lens": lens.to(self.device)}

    def loss(self, net, batch: dict, sl: slice, autocast, dgen: torch.Generator) -> dict[str, torch.Tensor]:
        from ..clip.loss import contrastive_loss

        with autocast:
            out = contrastive_loss(net, batch["x0"][sl], batch["tokens"][sl], batch["lens"][sl], self.diffusion, dgen)
        return {"loss": out["loss"].float(), "acc": out["acc_i2t"].float()}

    def _heldout(self):
        """Up to 256 fixed held-out images with their captions, prepared once per run (None if there are none)."""
        if not hasattr(self, "_held"):
            from ..data.datasets import open_source
            from ..errors import GlideError

            try:
                src = open_source(self.train_cfg.data, self.image_size, splits=("heldout_pair", "heldout_emoji"))
            except GlideError:
                self._held = None
                return None
            n = min(len(src), 256)
            idx = np.random.default_rng(0).choice(len(src), n, replace=False)
            items = [src.load(int(i)) for i in idx]
            x0 = to_tensor(np.stack([im for im, _ in items]), self.device)
            tokens, lens = self.tokenizer([caps[0] for _, caps in items], self.cfg.text_context)
            self._held = (x0, tokens.to(self.device), lens.to(self.device))
        return self._held

    def evaluate(self, model, run_dir: Path, step: int, source, precision) -> None:
        """Image -> text retrieval on the held-out split, by timestep (appended to retrieval.jsonl)."""
        from ..clip.guidance import retrieval_accuracy

        held = self._heldout()
        if held is None:
            return  # no held-out split in this data
        x0, tokens, lens = held
        n = len(x0)
        row = {"step": step, "n": n, "chance_top1": 1 / n, "chance_top5": 5 / n}
        g = torch.Generator(self.device).manual_seed(0)
        model.eval()
        for t in (0, 250, 500, 750):
            i = torch.full((n,), t, device=self.device)
            xt = self.diffusion.q_sample(x0, i, torch.randn(x0.shape, generator=g, device=self.device))
            acc = retrieval_accuracy(model, xt, tokens, lens, self.diffusion.model_timesteps(i))
            row[f"t{t}"] = acc
        with open(run_dir / "retrieval.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
