"""The caption encoder: a pre-LN transformer over token ids (GLIDE §2.3).

Its token sequence feeds every attention layer of the U-Net; its last position, projected, is added to
the timestep embedding. Like the official model it attends over padding too: padded positions carry a
learned per-position padding embedding instead of a token embedding, so the network still knows they
are padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..config import TextConfig
from .layers import LayerNorm


class SelfAttention(nn.Module):
    OFFICIAL_NAMES = {"qkv": "c_qkv", "proj": "c_proj"}

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        # Per head, the projection's channels are laid out [q | k | v].
        q, k, v = self.qkv(x).view(b, n, self.heads, -1).transpose(1, 2).chunk(3, dim=-1)
        h = F.scaled_dot_product_attention(q, k, v)
        return self.proj(h.transpose(1, 2).reshape(b, n, w))


class MLP(nn.Module):
    OFFICIAL_NAMES = {"fc": "c_fc", "proj": "c_proj"}

    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, 4 * width)
        self.proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    OFFICIAL_NAMES = {"norm1": "ln_1", "norm2": "ln_2"}

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1 = LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.norm2 = LayerNorm(width)
        self.mlp = MLP(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    OFFICIAL_NAMES = {
        "token_embedding": "token_embedding",
        "pos_embedding": "positional_embedding",
        "pad_embedding": "padding_embedding",
        "blocks": "transformer.resblocks",
        "final_norm": "final_ln",
    }

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.grad_checkpointing = False
        # Initialised by GLIDE.reset_parameters (std = width^-1/2); passing the tensor skips nn.Embedding's own init.
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width, _weight=torch.empty(cfg.vocab_size, cfg.width))
        self.pos_embedding = nn.Parameter(torch.empty(cfg.context, cfg.width))
        self.pad_embedding = nn.Parameter(torch.empty(cfg.context, cfg.width)) if cfg.padding_embedding else None
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads) for _ in range(cfg.layers))
        self.final_norm = LayerNorm(cfg.width) if cfg.final_ln else None

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [B, context] int, mask [B, context] bool (True = real token) -> features [B, context, width]."""
        x = self.token_embedding(tokens.long()) + self.pos_embedding[None]
        if self.pad_embedding is not None:
            if mask is None:
                raise ValueError("this text encoder needs the token mask (padding embedding)")
            x = torch.where(mask[..., None], x, self.pad_embedding[None].to(x.dtype))
        for block in self.blocks:
            if self.grad_checkpointing and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x
