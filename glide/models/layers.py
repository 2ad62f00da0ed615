"""Small building blocks shared by the networks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GroupNorm32(nn.GroupNorm):
    """GroupNorm over 32 groups, always computed in float32 (fp16 statistics are too coarse)."""

    def __init__(self, channels: int):
        super().__init__(32, channels, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and x.device.type == "cpu":
            # The CPU kernel reads bf16 and accumulates the statistics in fp32 itself: the same numbers as
            # upcasting first, without two full-size copies (bench/cpu_profile.py).
            return F.group_norm(x, 32, self.weight.float(), self.bias.float(), self.eps)
        return F.group_norm(x.float(), 32, self.weight.float(), self.bias.float(), self.eps).to(x.dtype)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps).to(x.dtype)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (original, integer) timesteps, laid out [cos | sin] as in GLIDE."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb
