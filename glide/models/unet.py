"""The ADM U-Net (Dhariwal & Nichol 2021) with GLIDE's text conditioning.

Two things make it GLIDE's: the conditioning vector `emb` given to every residual block is the
timestep embedding plus the projected final text token, and every attention layer attends over the
projected text tokens as well as over image positions (text keys first, then image keys).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..config import UNetConfig
from .layers import GroupNorm32


class ResBlock(nn.Module):
    """Residual block conditioned on `emb`; optionally resamples (x2 up or down) inside the block."""

    OFFICIAL_NAMES = {
        "norm1": "in_layers.0",
        "conv1": "in_layers.2",
        "emb_proj": "emb_layers.1",
        "norm2": "out_layers.0",
        "conv2": "out_layers.3",
        "skip": "skip_connection",
    }

    def __init__(
        self, channels: int, emb_dim: int, out_channels: int, dropout: float,
        scale_shift_norm: bool, resample: str | None = None,
    ):
        super().__init__()
        self.resample = resample
        self.scale_shift_norm = scale_shift_norm
        self.norm1 = GroupNorm32(channels)
        self.conv1 = nn.Conv2d(channels, out_channels, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * out_channels if scale_shift_norm else out_channels)
        self.norm2 = GroupNorm32(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(x))
        # Resample after the first norm, as in BigGAN-style blocks; the skip path is resampled too.
        h = self.conv1(self._resample(h))
        x = self._resample(x)
        e = self.emb_proj(F.silu(emb)).to(h.dtype)[..., None, None]
        if self.scale_shift_norm:  # AdaGN: norm(h) * (1 + scale) + shift
            scale, shift = e.chunk(2, dim=1)
            h = F.silu(self.norm2(h) * (1 + scale) + shift)
        else:
            h = F.silu(self.norm2(h + e))
        h = self.conv2(self.dropout(h))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over image positions, with the text tokens as extra keys and values."""

    OFFICIAL_NAMES = {"text_kv": "encoder_kv", "proj": "proj_out"}

    def __init__(self, channels: int, heads: int, text_width: int | None):
        super().__init__()
        self.heads = heads
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.text_kv = nn.Conv1d(text_width, 2 * channels, 1) if text_width else None
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        # Work on [batch, positions, channels]: a free view of channels_last activations, and a layout whose
        # heads have unit stride, which SDPA's fused CPU kernel needs (otherwise it falls back to the math
        # kernel). The 1x1 convolutions are linear maps over channels; their weights keep the official shapes.
        seq = self.norm(x).reshape(b, c, -1).transpose(1, 2)
        qkv = F.linear(seq, self.qkv.weight[..., 0], self.qkv.bias)
        # Channel layout is head-major: [head0 (q k v), head1 (q k v), ...].
        q, k, v = qkv.view(b, -1, self.heads, 3 * c // self.heads).transpose(1, 2).chunk(3, dim=-1)
        if self.text_kv is not None and text is not None:
            tkv = F.linear(text.transpose(1, 2), self.text_kv.weight[..., 0], self.text_kv.bias)
            tk, tv = tkv.view(b, -1, self.heads, 2 * c // self.heads).transpose(1, 2).chunk(2, dim=-1)
            k, v = torch.cat([tk, k], dim=2), torch.cat([tv, v], dim=2)
        h = F.scaled_dot_product_attention(q, k, v)  # [b, heads, hw, ch]
        h = F.linear(h.transpose(1, 2).reshape(b, -1, c), self.proj.weight[..., 0], self.proj.bias)
        return x + h.transpose(1, 2).reshape(b, c, hgt, wid)


class Downsample(nn.Module):
    OFFICIAL_NAMES = {"conv": "op"}

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Stage(nn.Module):
    """One step of the U-Net: a residual block and/or attention, then an optional resampling layer."""

    def __init__(self, res: nn.Module | None = None, attn: Attention | None = None, resample: nn.Module | None = None):
        super().__init__()
        self.res, self.attn, self.resample = res, attn, resample

    def official_name(self, child: str) -> str:
        # The official checkpoint numbers a stage's layers in order of presence.
        present = [n for n in ("res", "attn", "resample") if getattr(self, n) is not None]
        return str(present.index(child))

    def forward(self, x: torch.Tensor, emb: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        if self.res is not None:
            x = self.res(x, emb)
        if self.attn is not None:
            x = self.attn(x, text)
        if self.resample is not None:
            x = self.resample(x, emb)
        return x


class StageList(nn.ModuleList):
    """A list of stages; `offset` aligns its numbering with the official checkpoint's."""

    def __init__(self, offset: int = 0):
        super().__init__()
        self.offset = offset

    def official_name(self, child: str) -> str:
        return str(int(child) + self.offset)


class UNet(nn.Module):
    OFFICIAL_NAMES = {
        "time_mlp": "time_embed",
        "input_conv": "input_blocks.0.0",
        "middle": "middle_block",
        "output_norm": "out.0",
        "output_conv": "out.2",
    }

    def __init__(self, cfg: UNetConfig, in_channels: int, out_channels: int, text_width: int | None):
        super().__init__()
        self.cfg = cfg
        self.grad_checkpointing = False
        ch0 = cfg.channels
        emb_dim = 4 * ch0
        self.emb_dim = emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(ch0, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        def heads(ch: int, decoder: bool) -> int:
            if cfg.head_channels != -1:
                return ch // cfg.head_channels
            return cfg.num_heads_upsample if decoder and cfg.num_heads_upsample != -1 else cfg.num_heads

        def res(c_in: int, c_out: int, resample: str | None = None) -> ResBlock:
            return ResBlock(c_in, emb_dim, c_out, cfg.dropout, cfg.scale_shift_norm, resample)

        def attn(ch: int, size: int, decoder: bool) -> Attention | None:
            return Attention(ch, heads(ch, decoder), text_width) if size in cfg.attention_resolutions else None

        ch = cfg.channel_mult[0] * ch0
        self.input_conv = nn.Conv2d(in_channels, ch, 3, padding=1)
        skips = [ch]
        size = cfg.image_size
        self.down = StageList(offset=1)  # official input_blocks.0 is input_conv
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                self.down.append(Stage(res(ch, mult * ch0), attn(mult * ch0, size, False)))
                ch = mult * ch0
                skips.append(ch)
            if level != len(cfg.channel_mult) - 1:
                down = res(ch, ch, "down") if cfg.resblock_updown else Downsample(ch)
                self.down.append(Stage(res=down) if cfg.resblock_updown else Stage(resample=down))
                skips.append(ch)
                size //= 2

        # The middle always attends, whatever attention_resolutions says.
        self.middle = nn.ModuleList([res(ch, ch), Attention(ch, heads(ch, False), text_width), res(ch, ch)])

        self.up = StageList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                block = res(ch + skips.pop(), mult * ch0)
                ch = mult * ch0
                up = None
                if level and i == cfg.num_res_blocks:
                    up = res(ch, ch, "up") if cfg.resblock_updown else Upsample(ch)
                self.up.append(Stage(block, attn(ch, size, True), up))
                if up is not None:
                    size *= 2

        self.output_norm = GroupNorm32(ch)
        self.output_conv = nn.Conv2d(ch, out_channels, 3, padding=1)

    def official_name(self, child: str) -> str:
        return {"down": "input_blocks", "up": "output_blocks"}.get(child) or self.OFFICIAL_NAMES.get(child, child)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, in, H, W], emb [B, 4*channels] (already includes time and pooled text), text [B, width, L]."""
        def run(stage, *args):
            if self.grad_checkpointing and self.training:  # recompute activations in backward: less memory
                return checkpoint(stage, *args, use_reentrant=False)
            return stage(*args)

        h = self.input_conv(x)
        skips = [h]
        for stage in self.down:
            h = run(stage, h, emb, text)
            skips.append(h)
        res1, attn, res2 = self.middle
        h = res2(attn(res1(h, emb), text), emb)
        for stage in self.up:
            h = run(stage, torch.cat([h, skips.pop()], dim=1), emb, text)
        h = F.silu(self.output_norm(h))
        # eps and the variance leave in full precision, as in the official model (its `out` layers stay fp32).
        with torch.autocast(h.device.type, enabled=False):
            return self.output_conv(h.to(self.output_conv.weight.dtype))
