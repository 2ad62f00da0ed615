"""torch.distributed plumbing: one process per device, launched by torchrun (NCCL on GPU, gloo on CPU)."""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_env(cls) -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available()
        device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
        return cls(rank, world, local, device)

    @property
    def active(self) -> bool:
        return self.world > 1 and dist.is_initialized()

    def wrap(self, model: torch.nn.Module, cfg) -> torch.nn.Module:
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def no_sync(self, net):
        return net.no_sync() if self.active and hasattr(net, "no_sync") else nullcontext()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast_path(self, path: Path | None) -> Path:
        if not self.active:
            return path
        box = [str(path) if path is not None else None]
        dist.broadcast_object_list(box, src=0)
        return Path(box[0])

    def mean(self, values: dict[str, float], keys) -> dict[str, float]:
        if not self.active:
            return values
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return {**values, **{k: float(v) / self.world for k, v in zip(keys, t.tolist())}}

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (so that all ranks stop together)."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def close(self) -> None:
        if self.active:
            dist.barrier()  # no rank tears down its communicator while another still uses it
            dist.destroy_process_group()
