"""Training objective of the noised CLIP: CLIP's contrastive loss on noised images (GLIDE §3.2, App. A.2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..diffusion import Diffusion

MAX_LOGIT_SCALE = math.log(100.0)


def contrastive_loss(clip, x0: torch.Tensor, tokens: torch.Tensor, lens: torch.Tensor, diffusion: Diffusion,
                     generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE between the batch's noised images and captions.

    Each image is noised to its own uniformly drawn step i (x_t = q_sample(x0, i, noise)); the image
    encoder sees the ORIGINAL timestep of i, as it will during guided sampling. `clip` may be wrapped
    in DistributedDataParallel (it is called through forward). Negatives are this batch only.
    """
    module = getattr(clip, "module", clip)
    with torch.no_grad():  # as CLIP: the temperature may not go past 100
        module.logit_scale.clamp_(max=MAX_LOGIT_SCALE)
    b, device = x0.shape[0], x0.device
    rng_device = generator.device if generator is not None else device
    i = torch.randint(0, diffusion.num_timesteps, (b,), generator=generator, device=rng_device).to(device)
    noise = torch.randn(x0.shape, generator=generator, device=rng_device, dtype=x0.dtype).to(device)
    x_t = diffusion.q_sample(x0, i, noise)
    z_img, z_txt, scale = clip(x_t, diffusion.model_timesteps(i), tokens, lens)
    logits = scale * z_img.float() @ z_txt.float().T
    target = torch.arange(b, device=device)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    acc = (logits.argmax(1) == target).float().mean()
    return {"loss": loss, "acc_i2t": acc.detach(), "logit_scale": scale.detach()}
