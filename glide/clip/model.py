"""The noised CLIP of GLIDE §3.2: a CLIP whose image encoder sees noisy images x_t and their timestep.

Its gradient steers sampling towards a caption (CLIP guidance): the gradient of
`logit_scale * <z_text, z_image(x_t, t)>` with respect to x_t is added to the reverse-process mean.

Two pre-LN transformers embed into one space:
  * text: token + position embeddings, causal attention, read out at the end token (`lens - 1`);
  * image (a ViT): patches of `((x + 1) * 127.5 - mean) / std` (OpenAI CLIP's pixel statistics), with the
    learned embedding of the ORIGINAL timestep t in place of the class token, then a LayerNorm before
    the blocks, read out at that first position.
Both outputs go through LayerNorm and a bias-free projection and are L2-normalised (+1e-12).

The released weights are two state dicts (clip_image_enc.pt, clip_text_enc.pt); `OFFICIAL_NAMES` map
our parameter names to theirs (see glide.keys). Their `Affine` stores its weight [out, in],
exactly like nn.Linear, so no weight is transposed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GlideError
from ..checkpoint import fp32
from ..keys import from_official, to_official
from ..models.layers import LayerNorm as _LayerNorm
from .tokenizer import get_clip_tokenizer

CLIP_VOCAB = 49408  # ids the CLIP tokenizer can emit (the release's table has 65536 rows)
PIXEL_MEAN = (122.77093945, 116.74601272, 104.09373519)  # OpenAI CLIP, on the 0..255 scale
PIXEL_STD = (68.50053285, 66.63215831, 70.32316309)


@dataclass(frozen=True)
class CLIPConfig:
    """Noised-CLIP hyperparameters (official config.yaml names in brackets)."""

    embed_dim: int = 512  # [n_embd] the joint embedding
    vocab_size: int = 65536  # [n_vocab]
    text_context: int = 77  # [max_text_len]
    text_layers: int = 12  # [n_xf_blocks_text]
    text_heads: int = 8  # [n_head_text]
    text_head_dim: int = 64  # [n_head_state_text]
    image_size: int = 64
    patch_size: int = 4
    image_layers: int = 12  # [n_xf_blocks_image]
    image_heads: int = 12  # [n_head_image]
    image_head_dim: int = 64  # [n_head_state_image]
    timesteps: int = 1000  # [n_timesteps] rows of the timestep table: original diffusion steps
    noise_schedule: str = "squaredcos_cap_v2"  # [beta_schedule] the process whose x_t it was trained on
    logit_scale: float = 100.0  # initial exp(logit scale); the release keeps it fixed at 100

    @property
    def text_width(self) -> int:
        return self.text_heads * self.text_head_dim

    @property
    def image_width(self) -> int:
        return self.image_heads * self.image_head_dim

    def validate(self) -> "CLIPConfig":
        if self.vocab_size < CLIP_VOCAB:
            raise GlideError(f"CLIP vocab_size must be at least {CLIP_VOCAB} (the tokenizer's ids), got {self.vocab_size}")
        if self.text_context < 2:
            raise GlideError("CLIP text_context must hold at least the start and end tokens")
        if self.image_size % self.patch_size:
            raise GlideError(f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}")
        if self.noise_schedule not in ("squaredcos_cap_v2", "linear"):
            raise GlideError(f"unknown noise schedule {self.noise_schedule!r}")
        if min(self.embed_dim, self.text_layers, self.text_heads, self.text_head_dim, self.image_layers,
               self.image_heads, self.image_head_dim, self.timesteps) < 1 or self.logit_scale <= 0:
            raise GlideError("CLIP sizes and logit_scale must be positive")
        return self

    def replace(self, **changes: Any) -> "CLIPConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CLIPConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise GlideError(f"unknown CLIP config keys: {', '.join(sorted(unknown))}")
        return cls(**d).validate()


CLIP_PRESETS: dict[str, CLIPConfig] = {
    # The released noised CLIP (glide_text2im/clip/config.yaml): text 71.7M + image 86.4M parameters.
    "official": CLIPConfig(),
    # 64 px emoji on a CPU or one GPU, ~10.7M parameters. The vocabulary table dominates the text side, so
    # the text tower is narrow (width 128) and the table only has the tokenizer's 49408 rows.
    "small": CLIPConfig(embed_dim=256, vocab_size=CLIP_VOCAB, text_layers=4, text_heads=4, text_head_dim=32,
                        patch_size=8, image_layers=4, image_heads=4, image_head_dim=64),
    # For tests: a few milliseconds per step.
    "tiny": CLIPConfig(embed_dim=32, vocab_size=CLIP_VOCAB, text_layers=2, text_heads=2, text_head_dim=16,
                       image_size=32, patch_size=8, image_layers=2, image_heads=2, image_head_dim=16),
}


def get_clip_preset(name: str) -> CLIPConfig:
    try:
        return CLIP_PRESETS[name]
    except KeyError:
        raise GlideError(f"unknown CLIP preset {name!r}; choose one of {', '.join(CLIP_PRESETS)}") from None


# -- layers (official parameter names: LayerNorm g/b, Affine w/b) ----------------------------------------
class LayerNorm(_LayerNorm):
    """LayerNorm in float32, eps 1e-5."""

    OFFICIAL_NAMES = {"weight": "g", "bias": "b"}


class Affine(nn.Linear):
    OFFICIAL_NAMES = {"weight": "w", "bias": "b"}

    def __init__(self, n_in: int, n_out: int, bias: bool = True, std: float | None = None):
        super().__init__(n_in, n_out, bias=bias)
        nn.init.normal_(self.weight, std=std if std is not None else n_in**-0.5)
        if bias:
            nn.init.zeros_(self.bias)


class Attention(nn.Module):
    OFFICIAL_NAMES = {"q": "f_q", "k": "f_k", "v": "f_v", "proj": "f_c"}

    def __init__(self, width: int, heads: int, layers: int, causal: bool):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.q = Affine(width, width)
        self.k = Affine(width, width, bias=False)  # a key bias adds the same logit to every key: useless
        self.v = Affine(width, width)
        self.proj = Affine(width, width, std=(width * (2 * layers) ** 2) ** -0.5)  # residual branch: scaled down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = (f(x).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
        # The official code pads the context to a multiple of 32 and masks the padded keys with -1e10:
        # exactly attention over the real positions, which is what we compute.
        h = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.proj(h.transpose(1, 2).reshape(b, n, w))


class MLP(nn.Module):
    OFFICIAL_NAMES = {"fc": "f_1", "proj": "f_2"}

    def __init__(self, width: int, layers: int):
        super().__init__()
        self.fc = Affine(width, 4 * width, std=(2 / (4 * width)) ** 0.5)
        self.proj = Affine(4 * width, width, std=(width * (2 * layers) ** 2) ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    # Officially each residual branch owns its LayerNorm: f_attn = (ln, f_q, f_k, f_v, f_c), f_mlp = (ln, f_1, f_2).
    OFFICIAL_NAMES = {"norm1": "f_attn.ln", "attn": "f_attn", "norm2": "f_mlp.ln", "mlp": "f_mlp"}

    def __init__(self, width: int, heads: int, layers: int, causal: bool):
        super().__init__()
        self.norm1 = LayerNorm(width)
        self.attn = Attention(width, heads, layers, causal)
        self.norm2 = LayerNorm(width)
        self.mlp = MLP(width, layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Blocks(nn.ModuleList):
    def official_name(self, part: str) -> str:
        return f"block_{part}"


# -- the two towers ----------------------------------------------------------------------------------------
class TextTower(nn.Module):
    OFFICIAL_NAMES = {"token_embedding": "blocks.input.w_voc", "pos_embedding": "blocks.input.w_pos",
                      "final_norm": "blocks.output.ln", "proj": "blocks.output.f"}

    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        w = cfg.text_width
        self.token_embedding = nn.Parameter(torch.randn(cfg.vocab_size, w) * 0.02)
        self.pos_embedding = nn.Parameter(torch.randn(cfg.text_context, w) * 0.01)
        self.blocks = Blocks(Block(w, cfg.text_heads, cfg.text_layers, causal=True) for _ in range(cfg.text_layers))
        self.final_norm = LayerNorm(w)
        self.proj = Affine(w, cfg.embed_dim, bias=False)

    def forward(self, tokens: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """tokens [B, context] int64, lens [B] (start and end tokens included) -> [B, embed_dim], unnormalised."""
        x = F.embedding(tokens.long(), self.token_embedding) + self.pos_embedding[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        x = x[torch.arange(x.shape[0], device=x.device), lens.long() - 1]  # the end token has seen the caption
        return self.proj(self.final_norm(x))


class ImageTower(nn.Module):
    OFFICIAL_NAMES = {"time_embedding": "blocks.input.w_t", "patch_embedding": "blocks.input.patch_proj",
                      "pos_embedding": "blocks.input.w_pos", "input_norm": "blocks.input.ln",
                      "final_norm": "blocks.output.ln", "proj": "blocks.output.f"}

    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        w, p = cfg.image_width, cfg.patch_size
        self.image_size, self.patch_size = cfg.image_size, p
        n_tokens = 1 + (cfg.image_size // p) ** 2
        self.time_embedding = nn.Parameter(torch.randn(cfg.timesteps, w) * w**-0.5)
        self.patch_embedding = nn.Parameter(torch.randn(w, 3, p, p) * (2 / (w * p * p)) ** 0.5)
        self.pos_embedding = nn.Parameter(torch.randn(n_tokens, w) * w**-0.5)
        self.input_norm = LayerNorm(w)
        self.blocks = Blocks(Block(w, cfg.image_heads, cfg.image_layers, causal=False) for _ in range(cfg.image_layers))
        self.final_norm = LayerNorm(w)
        self.proj = Affine(w, cfg.embed_dim, bias=False)
        self.reset_pixel_stats()

    def reset_pixel_stats(self, device: str | torch.device | None = None) -> None:
        for name, value in (("pixel_mean", PIXEL_MEAN), ("pixel_std", PIXEL_STD)):
            self.register_buffer(name, torch.tensor(value, device=device).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """x [B, 3, S, S] in [-1, 1], t original timesteps ([B] or one for all) -> [B, embed_dim], unnormalised."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != self.image_size or x.shape[3] != self.image_size:
            raise GlideError(f"CLIP expects images [B, 3, {self.image_size}, {self.image_size}], got {list(x.shape)}")
        t = torch.as_tensor(t, device=x.device).long().expand(x.shape[0])
        x = x.to(self.patch_embedding.dtype)
        x = ((x + 1) * 127.5 - self.pixel_mean) / self.pixel_std
        x = F.conv2d(x, self.patch_embedding, stride=self.patch_size).flatten(2).transpose(1, 2)
        t_emb = self.time_embedding[t][:, None]  # the timestep takes the class token's place
        x = self.input_norm(torch.cat([t_emb, x], dim=1) + self.pos_embedding)
        for block in self.blocks:
            x = block(x)
        return self.proj(self.final_norm(x[:, 0]))


def normalize(z: torch.Tensor) -> torch.Tensor:
    return z / (torch.linalg.norm(z, dim=-1, keepdim=True) + 1e-12)


class NoisedCLIP(nn.Module):
    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.text = TextTower(cfg)
        self.image = ImageTower(cfg)
        # Stored as a log so that it stays positive when learned; training clamps it at log(100).
        self.logit_scale = nn.Parameter(torch.tensor(math.log(cfg.logit_scale)))

    def encode_text(self, tokens: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        return self.text(tokens, lens)

    def encode_image(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        return self.image(x, t)

    def text_embeddings_from_tokens(self, tokens: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        return normalize(self.text(tokens, lens))

    def text_embeddings(self, prompts: str | list[str]) -> torch.Tensor:
        tokens, lens = get_clip_tokenizer()(prompts, self.cfg.text_context)
        return self.text_embeddings_from_tokens(tokens.to(self.logit_scale.device), lens.to(self.logit_scale.device))

    def image_embeddings(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        return normalize(self.image(x, t))

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp()

    def forward(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor, lens: torch.Tensor):
        """Both embeddings and the logit scale in one call (what a DDP-wrapped training step needs)."""
        return self.image_embeddings(x, t), self.text_embeddings_from_tokens(tokens, lens), self.scale()


# -- official checkpoints -----------------------------------------------------------------------------------
def from_official_state_dicts(model: NoisedCLIP, image_sd: dict, text_sd: dict, what: str = "official CLIP") -> dict:
    """Our state dict from the released image and text encoder state dicts (missing/extra/misshapen keys raise).
    The release's logit scale is not a tensor in either file: it is log(config logit_scale)."""
    if "blocks.input.w_voc" in image_sd and "blocks.input.w_t" in text_sd:
        raise GlideError(f"{what}: the image and text encoder state dicts are swapped")
    out = {"text." + k: v for k, v in from_official(model.text, text_sd, f"{what} text encoder").items()}
    out.update({"image." + k: v for k, v in from_official(model.image, image_sd, f"{what} image encoder").items()})
    out = fp32(out)
    out["logit_scale"] = torch.tensor(math.log(model.cfg.logit_scale))
    return out


def to_official_state_dicts(model: NoisedCLIP) -> tuple[dict, dict]:
    """(image encoder, text encoder) state dicts in the official key naming."""
    return to_official(model.image, model.image.state_dict()), to_official(model.text, model.text.state_dict())
