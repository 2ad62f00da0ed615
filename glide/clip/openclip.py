"""Standard CLIP (Radford et al. 2021, ViT image tower) from an open_clip weights file, for CLIP score.

The noised CLIP in this package is the one GLIDE guides with; a *standard* CLIP, trained on clean images by
someone else, is the usual judge of CLIP score. This module runs the ViT CLIPs that open_clip distributes
(OpenAI's ViT-B/32, B/16, L/14, and LAION's ViT models) from their weights file, `open_clip_pytorch_model.bin`
or `open_clip_model.safetensors`, with our own code: importing open_clip itself would pull in torchvision.
The architecture is read from the tensor shapes; only the activation cannot be: OpenAI's weights use
QuickGELU, LAION's use GELU (open_clip's "-quickgelu" model names), so it is a parameter.

`OpenCLIP` offers the interface the evaluation code uses for our noised CLIP (image_embeddings(x, t) with x in
[-1, 1] and t ignored, text_embeddings_from_tokens, scale()), so either can score samples.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import on_meta
from ..errors import GlideError

MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI's pixel statistics, on the 0..1 scale
STD = (0.26862954, 0.26130258, 0.27577711)
HEAD_DIM = 64  # every OpenAI / open_clip ViT CLIP uses 64-dimensional heads


@dataclass(frozen=True)
class OpenCLIPConfig:
    embed_dim: int
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    text_context: int
    vocab_size: int
    text_width: int
    text_layers: int
    quick_gelu: bool = True

    @classmethod
    def from_state_dict(cls, sd: dict[str, torch.Tensor], quick_gelu: bool = True) -> "OpenCLIPConfig":
        def layers(prefix: str) -> int:
            return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})

        width, _, patch, _ = sd["visual.conv1.weight"].shape
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        return cls(embed_dim=sd["text_projection"].shape[1], image_size=grid * patch, patch_size=patch,
                   vision_width=width, vision_layers=layers("visual.transformer.resblocks."),
                   text_context=sd["positional_embedding"].shape[0], vocab_size=sd["token_embedding.weight"].shape[0],
                   text_width=sd["ln_final.weight"].shape[0], text_layers=layers("transformer.resblocks."),
                   quick_gelu=quick_gelu)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention, with parameters laid out as torch's nn.MultiheadAttention (which open_clip
    saves): one packed input projection, then the output projection."""

    def __init__(self, width: int, causal: bool):
        super().__init__()
        self.heads, self.causal = width // HEAD_DIM, causal
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, n, 3, self.heads, -1).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=self.causal)
        return self.out_proj(y.transpose(1, 2).reshape(b, n, w))


class Block(nn.Module):
    def __init__(self, width: int, causal: bool, quick_gelu: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, causal)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(c_fc=nn.Linear(width, 4 * width),
                                             gelu=QuickGELU() if quick_gelu else nn.GELU(),
                                             c_proj=nn.Linear(4 * width, width)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, causal: bool, quick_gelu: bool):
        super().__init__()
        self.resblocks = nn.ModuleList(Block(width, causal, quick_gelu) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class VisionTransformer(nn.Module):
    """Patches + a class token -> transformer -> the class token's output, projected."""

    def __init__(self, cfg: OpenCLIPConfig):
        super().__init__()
        w, grid = cfg.vision_width, cfg.image_size // cfg.patch_size
        self.conv1 = nn.Conv2d(3, w, cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(w))
        self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, cfg.vision_layers, causal=False, quick_gelu=cfg.quick_gelu)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.empty(w, cfg.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).transpose(1, 2)  # [B, patches, width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype))
        return self.ln_post(self.transformer(x)[:, 0]) @ self.proj


class OpenCLIP(nn.Module):
    def __init__(self, cfg: OpenCLIPConfig):
        super().__init__()
        self.cfg = cfg
        self.visual = VisionTransformer(cfg)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.text_context, cfg.text_width))
        self.transformer = Transformer(cfg.text_width, cfg.text_layers, causal=True, quick_gelu=cfg.quick_gelu)
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.text_projection = nn.Parameter(torch.empty(cfg.text_width, cfg.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(0.0))
        self.register_buffer("pixel_mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], any size -> the network's input: shorter side resized to the model's size
        (bicubic, antialiased when shrinking), center-cropped, normalised with OpenAI's statistics. open_clip
        does the same on PIL images; the two resizes differ by about one 8-bit level."""
        s = self.cfg.image_size
        h, w = x.shape[-2:]
        if (h, w) != (s, s):
            scale = s / min(h, w)
            size = (max(s, round(h * scale)), max(s, round(w * scale)))
            x = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False, antialias=scale < 1)
            top, left = (size[0] - s) // 2, (size[1] - s) // 2
            x = x[..., top : top + s, left : left + s]
        return ((x.float() + 1) / 2 - self.pixel_mean) / self.pixel_std

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(self.preprocess(x))

    def encode_text(self, tokens: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.ln_final(self.transformer(x))
        # the end-of-text token's output: position lens - 1 (open_clip takes the argmax id, the same token)
        return x[torch.arange(len(x), device=x.device), lens - 1] @ self.text_projection

    # The interface of our noised CLIP, so either can score samples.
    def image_embeddings(self, x: torch.Tensor, t: torch.Tensor | int = 0) -> torch.Tensor:
        return F.normalize(self.encode_image(x), dim=-1)

    def text_embeddings_from_tokens(self, tokens: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encode_text(tokens, lens), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp()


REQUIRED = ["visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding", "visual.proj",
            "token_embedding.weight", "positional_embedding", "text_projection", "ln_final.weight", "logit_scale"]


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # loaders raise many types (unpickling refusals, zip, header errors)
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise GlideError(f"cannot read open_clip weights {path}: {first[:200]}") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]  # open_clip training checkpoints
    if not isinstance(sd, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
        raise GlideError(f"{path} is not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_open_clip(path: str | os.PathLike, device: str | torch.device = "cpu", quick_gelu: bool = True) -> OpenCLIP:
    """An open_clip ViT CLIP from its weights file, in eval mode. `quick_gelu`: True for OpenAI's weights,
    False for models trained by open_clip (LAION, DataComp)."""
    path = Path(path)
    if not path.is_file():
        raise GlideError(f"open_clip weights not found: {path}")
    sd = _read(path)
    if "visual.attnpool.c_proj.weight" in sd or any(k.startswith(("visual.trunk.", "text.")) for k in sd):
        raise GlideError(f"{path}: only ViT CLIPs in the OpenAI layout are supported (not ResNet, timm or HF towers)")
    missing = [k for k in REQUIRED if k not in sd]
    if missing:
        raise GlideError(f"{path} is not an open_clip CLIP state dict (missing {', '.join(missing[:3])})")
    sd = {k: v for k, v in sd.items() if k != "attn_mask"}  # a constant some files carry
    model = on_meta(lambda: OpenCLIP(OpenCLIPConfig.from_state_dict(sd, quick_gelu)))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    wrong = sorted(set(sd) ^ set(expected)) + [k for k in expected if k in sd and tuple(sd[k].shape) != expected[k]]
    if wrong:
        raise GlideError(f"{path} does not match a standard ViT CLIP: {', '.join(wrong[:3])}"
                         + (f" (+{len(wrong) - 3} more)" if len(wrong) > 3 else ""))
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True, assign=True)
    model.pixel_mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    model.pixel_std = torch.tensor(STD).view(1, 3, 1, 1)
    return model.requires_grad_(False).to(device).eval()
