"""Guidance distillation (Meng et al. 2023, "On distillation of guided diffusion models", stage one).

A student learns to predict in ONE forward pass what its frozen teacher predicts with classifier-free
guidance, which costs two (the caption's row and the empty caption's). The student is the teacher plus an
embedding of the guidance scale w (ModelConfig.distilled_guidance), whose last layer starts at zero: at the first
step the student is the teacher's conditional model at every w. Each example draws its own w from
`distill_scales`, so one student serves every scale in that range; at w = 1 the target is the teacher's
conditional prediction, so the classic two-row guidance still works on the student.

The target is the teacher's guided eps with the conditional row's variance; the loss is the MSE in the space
the model predicts (v's for a v model, like the hybrid loss) plus the variance channels' MSE. Everything else
(data, caption dropout, inpainting masks, optimizer, EMA, checkpoints) is the ordinary trainer's.
"""

from __future__ import annotations

import torch

from ..config import ModelConfig
from ..models import GLIDE
from .tasks import DiffusionTask


class GuidanceDistillTask(DiffusionTask):
    def __init__(self, model_cfg: ModelConfig, train_cfg, device: torch.device):
        from .init import adapt_inputs, load_source, source_config

        super().__init__(model_cfg, train_cfg, device)
        sd, src_cfg = load_source(train_cfg)
        teacher_cfg = source_config(train_cfg, src_cfg)
        self.teacher = GLIDE(teacher_cfg)
        self.teacher.load_state_dict(adapt_inputs(sd, src_cfg, teacher_cfg))
        self.teacher.to(device).eval().requires_grad_(False)
        if train_cfg.channels_last:
            self.teacher.to(memory_format=torch.channels_last)
        self.low, self.high = (float(v) for v in train_cfg.distill_scales)
        tokens, mask = self.tokenizer([""], model_cfg.text.context, warn=False)
        self.empty = tokens.to(device), mask.to(device)

    def add_noise(self, batch: dict, dgen: torch.Generator) -> dict:
        batch = super().add_noise(batch, dgen)
        u = torch.rand(len(batch["x0"]), generator=dgen, device=self.device)
        batch["scale"] = self.low + (self.high - self.low) * u
        return batch

    @torch.no_grad()
    def guided_target(self, xt: torch.Tensor, t: torch.Tensor, scale: torch.Tensor, kw: dict, autocast) -> torch.Tensor:
        """The teacher's classifier-free-guided output at `scale` (one per row): guided eps, conditional variance."""
        b, c = len(xt), xt.shape[1]
        tokens = torch.cat([kw["tokens"], self.empty[0].expand(b, -1)])
        mask = torch.cat([kw["mask"], self.empty[1].expand(b, -1)])
        extra = {k: torch.cat([kw[k], kw[k]]) for k in ("inpaint_image", "inpaint_mask", "low_res") if k in kw}
        with autocast:
            out = self.teacher(torch.cat([xt, xt]), torch.cat([t, t]), tokens=tokens, mask=mask, **extra)
        cond, uncond = out.float().chunk(2)
        w = scale.view(-1, 1, 1, 1)
        eps = uncond[:, :c] + w * (cond[:, :c] - uncond[:, :c])
        return torch.cat([eps, cond[:, c:]], dim=1)

    def loss(self, net, batch: dict, sl: slice, autocast, dgen: torch.Generator) -> dict[str, torch.Tensor]:
        x0, i, noise, scale = batch["x0"][sl], batch["i"][sl], batch["noise"][sl], batch["scale"][sl]
        xt = self.diffusion.q_sample(x0, i, noise)
        t = self.diffusion.model_timesteps(i)
        kw = {k: batch[k][sl] for k in ("tokens", "mask", "low_res", "inpaint_image", "inpaint_mask") if k in batch}
        target = self.guided_target(xt, t, scale, kw, autocast)
        with autocast:
            out = net(xt, t, guidance=scale, **kw)
        out = out.float()
        c = x0.shape[1]
        dims = tuple(range(1, x0.ndim))
        mse = ((out[:, :c] - target[:, :c]) ** 2).mean(dims)
        var = ((out[:, c:] - target[:, c:]) ** 2).mean(dims)
        # v's MSE for a v model: |v - v*|^2 = |eps - eps*|^2 / ab, as in the hybrid loss
        weighted = mse / self.diffusion.extract("alphas_cumprod", i, 1) if self.cfg.prediction == "v" else mse
        return {"loss": weighted + var, "mse": mse, "var": var}
