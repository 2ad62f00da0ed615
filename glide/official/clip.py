"""The official noised-CLIP API (glide_text2im.clip.model_creation.CLIPModel) over our NoisedCLIP.

`load_clip(image_state_dict, text_state_dict, **config)` takes the two released state dicts and the
official config.yaml keys; the returned object has the official methods (text_embeddings, image_embeddings,
cond_fn) and numbers. As there, `t` are ORIGINAL timesteps and cond_fn sums its loss over the batch.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..checkpoint import on_meta
from ..clip.guidance import clip_cond_fn
from ..clip.io import build_clip
from ..clip.model import CLIPConfig, NoisedCLIP, from_official_state_dicts, to_official_state_dicts
from ..clip.tokenizer import get_clip_tokenizer
from ..errors import GlideError

# official config.yaml key -> CLIPConfig field; missing keys take the release's values (CLIPConfig defaults).
CLIP_OPTIONS = {
    "n_embd": "embed_dim", "n_vocab": "vocab_size", "max_text_len": "text_context",
    "n_xf_blocks_text": "text_layers", "n_head_text": "text_heads", "n_head_state_text": "text_head_dim",
    "image_size": "image_size", "patch_size": "patch_size", "n_xf_blocks_image": "image_layers",
    "n_head_image": "image_heads", "n_head_state_image": "image_head_dim", "n_timesteps": "timesteps",
    "beta_schedule": "noise_schedule", "logit_scale": "logit_scale",
}


def clip_config_from_options(**config: Any) -> CLIPConfig:
    unknown = set(config) - set(CLIP_OPTIONS)
    if unknown:
        raise GlideError(f"unknown CLIP config keys: {', '.join(sorted(unknown))}")
    return CLIPConfig(**{CLIP_OPTIONS[k]: v for k, v in config.items()}).validate()


def clip_tokenize(prompts: str | list[str], text_ctx: int = 77) -> tuple[torch.Tensor, torch.Tensor]:
    """Official SimpleTokenizer `encode` + `padded_tokens_and_len`, stacked: (tokens [B, ctx], lens [B]) int64."""
    return get_clip_tokenizer()(prompts, text_ctx)


class OfficialCLIP(nn.Module):
    def __init__(self, model: NoisedCLIP):
        super().__init__()
        self.model = model

    @property
    def config(self) -> CLIPConfig:
        return self.model.cfg

    @property
    def device(self) -> torch.device:
        return self.model.logit_scale.device

    @property
    def logit_scale(self) -> torch.Tensor:
        """log(100), as the official stores it."""
        return self.model.logit_scale

    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, lens = clip_tokenize(prompts, self.config.text_context)
        return tokens.to(self.device), lens.to(self.device)

    def text_embeddings(self, prompts: list[str]) -> torch.Tensor:
        return self.model.text_embeddings_from_tokens(*self.encode_prompts(prompts))

    def text_embeddings_from_tokens(self, tokens: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        return self.model.text_embeddings_from_tokens(tokens, lens)

    def image_embeddings(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x in [-1, 1]; t original timesteps."""
        return self.model.image_embeddings(x, t)

    def cond_fn(self, prompts: list[str], grad_scale: float) -> Callable[..., torch.Tensor]:
        return clip_cond_fn(self.model, *self.encode_prompts(prompts), grad_scale)

    def cond_grad(self, x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor, lens: torch.Tensor,
                  grad_scale: float) -> torch.Tensor:
        return clip_cond_fn(self.model, tokens, lens, grad_scale)(x, t)

    def official_state_dicts(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(image encoder, text encoder) state dicts in the release's key naming."""
        return to_official_state_dicts(self.model)


def load_clip(image_state_dict: dict[str, torch.Tensor] | None = None,
              text_state_dict: dict[str, torch.Tensor] | None = None,
              device: str | torch.device = "cpu", **config: Any) -> OfficialCLIP:
    """The noised CLIP the official config describes, holding the given official state dicts (strict);
    with no state dicts, freshly initialised."""
    cfg = clip_config_from_options(**config)
    if image_state_dict is None and text_state_dict is None:
        return OfficialCLIP(NoisedCLIP(cfg).to(device)).eval()
    if image_state_dict is None or text_state_dict is None:
        raise GlideError("load_clip needs both the image and the text encoder state dicts")
    skeleton = on_meta(lambda: NoisedCLIP(cfg))
    native = from_official_state_dicts(skeleton, image_state_dict, text_state_dict, "CLIP state dicts")
    return OfficialCLIP(build_clip(cfg, native, device)).eval()


__all__ = ["CLIP_OPTIONS", "OfficialCLIP", "clip_config_from_options", "clip_tokenize", "load_clip"]
