"""Using a noised CLIP: the guidance gradient for the samplers, and scores for evaluation."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from .model import NoisedCLIP
from .tokenizer import get_clip_tokenizer

CondFn = Callable[..., torch.Tensor]


def clip_cond_fn(clip: NoisedCLIP, tokens: torch.Tensor, lens: torch.Tensor, grad_scale: float) -> CondFn:
    """`cond_fn(x_t, t) -> grad_scale * d/dx_t sum_b logit_scale * <z_text_b, z_image(x_t, t)_b>` (GLIDE §3.2).

    `t` are ORIGINAL timesteps (our samplers pass `diffusion.model_timesteps(i)`). The captions are
    embedded once; one caption is broadcast over the whole batch. Summing over the batch gives each
    image the gradient of its own term only. As the official, a call may override grad_scale; other
    keyword arguments (model_kwargs) are ignored.
    """
    with torch.no_grad():
        z_text = clip.text_embeddings_from_tokens(tokens, lens)
        scale = clip.scale()

    def cond_fn(x: torch.Tensor, t: torch.Tensor, grad_scale: float = grad_scale, **_) -> torch.Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            loss = scale * (z_text * clip.image_embeddings(x, t)).sum()
            grad = torch.autograd.grad(loss, x)[0]
        return grad.detach() * grad_scale

    return cond_fn


def _tokens(clip: NoisedCLIP, captions) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(captions, (str, list)):
        captions = get_clip_tokenizer()(captions, clip.cfg.text_context)
    device = clip.logit_scale.device
    return captions[0].to(device), captions[1].to(device)


@torch.no_grad()
def clip_score(clip: NoisedCLIP, images: torch.Tensor, captions: str | list[str] | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """100 x cosine similarity of each clean image (t = 0) with its caption, in [-100, 100].

    Unlike CLIPScore (Hessel et al. 2021) negative similarities are not clipped to 0, so scores of poor
    matches stay comparable. `captions`: one per image (or a single one for all), as strings or as
    `(tokens, lens)`. Images are in [-1, 1]: at the CLIP's resolution for a noised CLIP; any size for a standard
    CLIP loaded with `load_open_clip`, which resizes them as open_clip would.
    """
    tokens, lens = _tokens(clip, captions)
    z_i = clip.image_embeddings(images.to(clip.logit_scale.device), 0)
    z_t = clip.text_embeddings_from_tokens(tokens, lens)
    return 100 * (z_i * z_t).sum(-1)


@torch.no_grad()
def retrieval_accuracy(clip: NoisedCLIP, images: torch.Tensor, tokens: torch.Tensor, lens: torch.Tensor,
                       t: torch.Tensor | int = 0, k: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Image -> text top-k accuracy among the batch's own captions, images noised to timestep(s) `t`.

    Image b's caption is b; a caption with exactly the same tokens counts as correct too (a batch of
    emoji may repeat a caption). Returns {"top1": ..., "top5": ...}.
    """
    z_i = clip.image_embeddings(images, t)
    z_t = clip.text_embeddings_from_tokens(tokens, lens)
    sim = z_i @ z_t.T
    same = (tokens[:, None] == tokens[None]).all(-1)
    # Rank of the true caption = number of other captions that score strictly higher.
    rank = ((sim > sim.diagonal()[:, None]) & ~same).sum(1)
    return {f"top{n}": (rank < n).float().mean().item() for n in k}
