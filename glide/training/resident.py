"""The whole dataset resident on the training device, with every per-step draw made there (`resident = true`).

The streamed path (`BatchStream` + `DiffusionTask.make_inputs`) decodes, picks captions, tokenizes and draws
inpainting masks on the CPU, then copies each batch to the device: a host round trip per step that a fast
GPU waits on. Here the images live on the device as one uint8 tensor and every caption of every image is
tokenized once into a device table, so a step is only indexing and random draws on a device generator:

- order: a seeded permutation per epoch (made on the device), split between ranks like `BatchStream`, or with
  concept balancing as many weighted draws with replacement;
- captions: the canonical one, an alternative with probability `alt_caption_prob`, the empty one with
  probability `caption_dropout`;
- inpainting masks: `glide.data.masks.device_masks` (rectangles, brush strokes, a share with nothing known);
- horizontal flips when `hflip` is on.

Resumable: the position (epoch, cursor) and the generator's state go into checkpoints like the streamed path's.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from ..data.loader import Position
from ..data.masks import device_masks
from ..errors import GlideError
from ..images import from_uint8


class ResidentStream:
    def __init__(self, source, task, cfg, device: torch.device, rank: int = 0, world: int = 1,
                 position: Position | None = None, weights: np.ndarray | None = None):
        if getattr(source, "streaming", False):
            raise GlideError("resident = true needs random-access data (.npz, folder or .jsonl), not WebDataset shards")
        if task.tokenizer is None:
            raise GlideError("resident = true needs a text-conditional model")
        self.task, self.cfg, self.device = task, cfg, device
        self.rank, self.world = rank, world
        self.pos = position or Position()
        self.n = len(source)
        if self.n < world:
            raise RuntimeError("this rank has no data (fewer items than processes)")
        images, captions = self._read(source)
        self.images = torch.from_numpy(images).to(device)  # uint8 [N, S, S, 3]
        self.tokens, self.masks, self.n_caps = self._caption_table(captions)
        empty_t, empty_m = task.tokenizer([""], task.cfg.text.context, warn=False)
        self.empty_tokens, self.empty_mask = empty_t.to(device), empty_m.to(device)
        self.gen = torch.Generator(device).manual_seed(cfg.seed * 1000 + rank + 700)
        self._perm_epoch, self._perm = -1, None
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=device)

    @staticmethod
    def _read(source) -> tuple[np.ndarray, list[list[str]]]:
        if hasattr(source, "images") and hasattr(source, "captions"):  # NpzSource: already one array
            return np.ascontiguousarray(source.images), source.captions
        items = [source.load(i) for i in tqdm(range(len(source)), desc="resident data", leave=False)]
        return np.stack([im for im, _ in items]), [caps for _, caps in items]

    def _caption_table(self, captions: list[list[str]]):
        """tokens/masks [N, K, ctx] (K = most captions of any item; short rows repeat their canonical caption)
        and the number of captions of each item."""
        k = max(len(c) for c in captions)
        flat = [caps[j] if j < len(caps) else caps[0] for caps in captions for j in range(k)]
        tokens, masks = self.task.tokenizer(flat, self.task.cfg.text.context, warn=False)
        ctx = tokens.shape[-1]
        n_caps = torch.tensor([len(c) for c in captions])
        return (tokens.view(self.n, k, ctx).to(self.device), masks.view(self.n, k, ctx).to(self.device),
                n_caps.to(self.device))

    # -- order --------------------------------------------------------------------------------------
    def _order(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator(self.device).manual_seed(self.cfg.seed * 100_003 + epoch)
            if self.weights is None:
                perm = torch.randperm(self.n, generator=g, device=self.device)
            else:
                perm = torch.multinomial(self.weights, self.n, replacement=True, generator=g)
            self._perm, self._perm_epoch = perm[self.rank :: self.world], epoch
        return self._perm

    def _indices(self, b: int) -> torch.Tensor:
        """The next b items of this rank's order (host-side arithmetic only: no device sync)."""
        parts, want = [], b
        while want:
            order = self._order(self.pos.epoch)
            take = order[self.pos.cursor : self.pos.cursor + want]
            parts.append(take)
            want -= len(take)
            self.pos.cursor += len(take)
            if self.pos.cursor >= len(order):
                self.pos.epoch, self.pos.cursor = self.pos.epoch + 1, 0
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    # -- one batch ----------------------------------------------------------------------------------
    def next_inputs(self, b: int) -> dict[str, torch.Tensor]:
        """x0 (float in [-1, 1], channels-last strides), caption tokens and mask, and inpainting inputs."""
        c, m, g = self.cfg, self.task.cfg, self.gen
        idx = self._indices(b)
        x0 = from_uint8(self.images[idx])  # NHWC storage: channels_last for free
        if c.hflip:
            flip = torch.rand(b, generator=g, device=self.device) < 0.5
            x0 = torch.where(flip.view(b, 1, 1, 1), x0.flip(-1), x0)
        drop, alt, pick = torch.rand(3, b, generator=g, device=self.device).unbind(0)
        n_caps = self.n_caps[idx]
        use_alt = (alt < c.alt_caption_prob) & (n_caps > 1)
        choice = torch.where(use_alt, 1 + (pick * (n_caps - 1)).long().clamp(min=0), torch.zeros_like(n_caps))
        dropped = (drop < c.caption_dropout).view(b, 1)
        batch = {
            "x0": x0,
            "tokens": torch.where(dropped, self.empty_tokens, self.tokens[idx, choice]),
            "mask": torch.where(dropped, self.empty_mask, self.masks[idx, choice]),
        }
        if m.inpaint:
            batch["inpaint_mask"] = device_masks(b, m.unet.image_size, g, p_unmasked=c.p_unmasked)
            batch["inpaint_image"] = x0
        return batch

    def close(self) -> None:
        pass
