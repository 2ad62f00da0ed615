"""GLIDE: a text encoder and a U-Net, with the input variants for super-resolution and inpainting."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .layers import timestep_embedding
from .text_encoder import TextEncoder
from .unet import UNet


class TextEmbedding(NamedTuple):
    """What the U-Net needs from a caption; computed once per sampling call, not once per step."""

    pooled: torch.Tensor  # [B, 4*channels], added to the timestep embedding
    tokens: torch.Tensor  # [B, width, context], attended to by every attention layer

    def cat(self, other: "TextEmbedding") -> "TextEmbedding":
        return TextEmbedding(torch.cat([self.pooled, other.pooled]), torch.cat([self.tokens, other.tokens]))

    def repeat(self, n: int) -> "TextEmbedding":
        return TextEmbedding(self.pooled.repeat_interleave(n, 0), self.tokens.repeat_interleave(n, 0))


def guidance_mlp(cfg: ModelConfig) -> nn.Sequential:
    """The guidance scale's embedding (cfg.distilled_guidance), like the timestep's; its last layer starts at zero."""
    ch, emb = cfg.unet.channels, 4 * cfg.unet.channels
    mlp = nn.Sequential(nn.Linear(ch, emb), nn.SiLU(), nn.Linear(emb, emb))
    if not mlp[2].weight.is_meta:
        nn.init.zeros_(mlp[2].weight), nn.init.zeros_(mlp[2].bias)
    return mlp


class GLIDE(nn.Module):
    """eps and variance prediction: forward(x_t, t, text, ...) -> [B, 6, H, W] (eps | variance interpolation).

    A v-prediction model (cfg.prediction = "v") converts its U-Net's v to eps here, so everything downstream
    (samplers, guidance, the loss's VLB term) reads eps from every model."""

    OFFICIAL_NAMES = {"text": "", "text_proj": "transformer_proj", "unet": ""}

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.text = TextEncoder(cfg.text) if cfg.text is not None else None
        self.unet = UNet(cfg.unet, cfg.in_channels, cfg.out_channels, cfg.text.width if cfg.text else None)
        self.text_proj = nn.Linear(cfg.text.width, self.unet.emb_dim) if cfg.text is not None else None
        self.guidance_mlp = guidance_mlp(cfg) if cfg.distilled_guidance else None
        if cfg.prediction == "v":
            # A plain attribute, not a buffer: no state-dict entry, never on the meta device (from_numpy is always
            # on the CPU), and a constant to torch.compile, which a lazily created one would make recompile.
            from ..diffusion.schedule import beta_schedule

            betas = beta_schedule(cfg.noise_schedule, cfg.diffusion_steps)
            self._alphas_cumprod = torch.from_numpy(np.cumprod(1 - betas)).float()
        # A model built on the meta device is about to receive its weights from a file. Skipping the init there
        # also saves start-up time: normal_ on meta tensors imports torch._dynamo (1.4 s on 2 CPU cores).
        if not self.unet.input_conv.weight.is_meta:
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """ADM initialisation: every residual branch's last layer starts at zero, so each block starts as
        the identity; the network's final conv too, so an untrained model predicts eps = 0."""
        from .unet import Attention, ResBlock

        for m in self.modules():
            if isinstance(m, ResBlock):
                nn.init.zeros_(m.conv2.weight), nn.init.zeros_(m.conv2.bias)
            elif isinstance(m, Attention):
                nn.init.zeros_(m.proj.weight), nn.init.zeros_(m.proj.bias)
        nn.init.zeros_(self.unet.output_conv.weight), nn.init.zeros_(self.unet.output_conv.bias)
        if self.guidance_mlp is not None:  # a student starts as its teacher's conditional model, whatever w
            nn.init.zeros_(self.guidance_mlp[2].weight), nn.init.zeros_(self.guidance_mlp[2].bias)
        if self.text is not None:
            std = self.cfg.text.width**-0.5
            nn.init.normal_(self.text.token_embedding.weight, std=std)
            nn.init.normal_(self.text.pos_embedding, std=0.01)
            if self.text.pad_embedding is not None:
                nn.init.normal_(self.text.pad_embedding, std=0.01)

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> TextEmbedding:
        h = self.text(tokens, mask)
        # GLIDE pools by taking the LAST position (often a padding position): its attention sees the caption.
        return TextEmbedding(self.text_proj(h[:, -1]), h.transpose(1, 2))

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        text: TextEmbedding | None = None,
        *,
        tokens: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        low_res: torch.Tensor | None = None,
        inpaint_image: torch.Tensor | None = None,
        inpaint_mask: torch.Tensor | None = None,
        guidance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x [B, 3, H, W] noisy image, t [B] ORIGINAL timesteps (0..T-1).

        Give the caption either pre-encoded (`text`) or as `tokens`/`mask`. `inpaint_mask` is 1 where
        the image is known (kept) and 0 where it is to be generated. `guidance` [B]: the guidance scale a
        guidance-distilled model (cfg.distilled_guidance) predicts at (None: 1, the conditional model).
        """
        text_tokens = None
        if self.text is not None and text is None:
            if tokens is None:
                raise ValueError("a text-conditional model needs `text` or `tokens`")
            text = self.encode_text(tokens, mask)
        # The conditioning vector steers every block (AdaGN scale and shift): it is computed in fp32 even under
        # autocast, so that low precision touches only the convolutions and the attention over image positions.
        with torch.autocast(x.device.type, enabled=False):
            emb = self.unet.time_mlp(timestep_embedding(t, self.cfg.unet.channels).to(self.unet.time_mlp[0].weight.dtype))
            if text is not None:
                emb = emb + text.pooled.to(emb.dtype)
                text_tokens = text.tokens
            if self.guidance_mlp is not None:
                emb = emb + self.guidance_mlp(self.guidance_embedding(guidance, t).to(emb.dtype))
        h = x
        if self.cfg.inpaint:
            if inpaint_image is None:
                inpaint_image = torch.zeros_like(x)
            if inpaint_mask is None:
                inpaint_mask = torch.zeros_like(x[:, :1])
            h = torch.cat([h, inpaint_image * inpaint_mask, inpaint_mask], dim=1)
        if self.cfg.super_res:
            if low_res is None:
                raise ValueError("a super-resolution model needs `low_res`")
            h = torch.cat([h, F.interpolate(low_res, x.shape[2:], mode="bilinear", align_corners=False)], dim=1)
        out = self.unet(h, emb, text_tokens)
        return self.v_to_eps(out, x, t) if self.cfg.prediction == "v" else out

    def guidance_embedding(self, guidance: torch.Tensor | None, t: torch.Tensor) -> torch.Tensor:
        """Sinusoidal features of (w - 1) * 100 on the timestep embedding's frequencies (None: w = 1, the
        conditional model), so that the useful range of w (1 to about 10) spans hundreds, like timesteps."""
        w = torch.ones_like(t, dtype=torch.float32) if guidance is None else guidance.float().expand(t.shape)
        return timestep_embedding((w - 1) * 100, self.cfg.unet.channels)

    def v_to_eps(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps = sqrt(ab) v + sqrt(1 - ab) x_t, from x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps and the definition of v."""
        ab = self._alphas_cumprod.to(x.device)[t.long()].view(-1, 1, 1, 1)
        eps = ab.sqrt() * out[:, :3].float() + (1 - ab).sqrt() * x.float()
        return torch.cat([eps.to(out.dtype), out[:, 3:]], dim=1)
