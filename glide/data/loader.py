"""Deterministic, resumable batches of (images, captions) for training.

The order is a seeded permutation per epoch, split between ranks (`perm[rank::world]`); with draw weights
(concept balancing, glide.data.balance) an epoch is instead as many seeded draws with replacement. The position
(epoch, cursor) is saved in checkpoints, so a resumed run sees exactly the batches it would have seen.
Unreadable images are skipped and counted, never fatal.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from .datasets import BadImage, decode_image


@dataclass
class Position:
    epoch: int = 0
    cursor: int = 0  # items of this rank's share of the epoch already consumed
    skipped: int = 0  # unreadable images so far

    def to_dict(self) -> dict:
        return asdict(self)


class BatchStream:
    def __init__(self, source, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1,
                 position: Position | None = None, workers: int = 2, hflip: bool = False,
                 weights: np.ndarray | None = None):
        self.source, self.batch_size, self.seed = source, batch_size, seed
        self.weights = weights  # draw probabilities per item (glide.data.balance), or None: uniform
        self.rank, self.world = rank, world
        self.pos = position or Position()
        self.hflip = hflip
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers)) if workers > 0 else None
        self._warned_at = 0
        self.last_bad = ""  # the latest unreadable image and why, for the warnings

    def _order(self, epoch: int) -> np.ndarray:
        n, rng = len(self.source), np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n) if self.weights is None else rng.choice(n, size=n, p=self.weights)
        return order[self.rank :: self.world]

    def _load(self, i: int):
        try:
            return self.source.load(int(i))
        except (BadImage, OSError) as e:
            self.last_bad = str(e)
            return None

    def _flip(self, img: np.ndarray, epoch: int, i: int) -> np.ndarray:
        if self.hflip and np.random.default_rng([self.seed, epoch, int(i), 7]).random() < 0.5:
            return img[:, ::-1]
        return img

    def next_batch(self) -> tuple[np.ndarray, list[list[str]]]:
        """uint8 [B, S, S, 3] and each item's captions (the first is canonical)."""
        if getattr(self.source, "streaming", False):
            return self._next_streaming()
        images, captions = [], []
        while len(images) < self.batch_size:
            order = self._order(self.pos.epoch)
            if len(order) == 0:
                raise RuntimeError("this rank has no data (fewer items than processes)")
            want = self.batch_size - len(images)
            idx = order[self.pos.cursor : self.pos.cursor + want]
            loaded = list(self.pool.map(self._load, idx)) if self.pool else [self._load(i) for i in idx]
            for i, item in zip(idx, loaded):
                if item is None:
                    self.pos.skipped += 1
                    continue
                images.append(self._flip(item[0], self.pos.epoch, i))
                captions.append(item[1])
            self.pos.cursor += len(idx)
            if self.pos.cursor >= len(order):
                self.pos.epoch += 1
                self.pos.cursor = 0
            if self.pos.skipped and self.pos.skipped != self._warned_at and self.pos.cursor == 0:
                warnings.warn(f"skipped {self.pos.skipped} unreadable image(s) so far (latest: {self.last_bad})",
                              stacklevel=2)
                self._warned_at = self.pos.skipped
        return np.stack(images), captions

    def _next_streaming(self):
        src = self.source
        images, captions = [], []
        if not hasattr(self, "_it"):
            self._it, self._it_epoch = self._stream(self.pos.epoch), self.pos.epoch
            for _ in range(self.pos.cursor):  # resume: skip what this epoch already consumed
                next(self._it, None)
        while len(images) < self.batch_size:
            item = next(self._it, None)
            if item is None:
                self.pos.epoch += 1
                self.pos.cursor = 0
                self._it = self._stream(self.pos.epoch)
                continue
            self.pos.cursor += 1
            data, caps, name = item
            try:
                if data is None:
                    raise BadImage("no image in sample")
                img = decode_image(data, src.size, src.background)
            except BadImage as e:
                self.pos.skipped += 1
                self.last_bad = f"{name}: {e}"
                continue
            images.append(img)
            captions.append(caps)
        return np.stack(images), captions

    def _stream(self, epoch: int):
        return iter(self.source.iterate(self.seed, epoch, self.rank, self.world))

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(wait=False)
