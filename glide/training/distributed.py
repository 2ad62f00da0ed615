"""torch.distributed plumbing: one process per device, launched by torchrun (NCCL on GPU, gloo on CPU).

Two ways to spread a model: DDP (every rank holds all weights; gradients are averaged), or FSDP2
(`fsdp = true`: every rank holds 1/world of the weights, gradients, optimizer state and EMA; each block's
weights are gathered just for its forward and backward). Checkpoints are the same full, unsharded files
either way, so a run can be resumed, exported or sampled in one process.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from ..errors import GlideError


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    sharded: bool = False  # FSDP is on
    _mesh: object = field(default=None, repr=False)

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
        if cfg.fsdp:
            self.sharded = True
            return self.shard(model)
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def shard(self, module: torch.nn.Module) -> torch.nn.Module:
        """FSDP2 in place: each residual/attention/transformer block is one unit (gathered for its own
        compute only), the rest of the model a last unit."""
        try:
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import fully_shard
        except ImportError:
            raise GlideError(f"fsdp = true needs torch >= 2.6 (torch.distributed.fsdp.fully_shard); this is torch "
                             f"{torch.__version__}. Upgrade torch, or train with DDP (fsdp = false)") from None

        from ..models.text_encoder import Block
        from ..models.unet import Attention, ResBlock

        if self._mesh is None:
            self._mesh = init_device_mesh(self.device.type, (self.world,))
        with torch.no_grad():  # every rank starts from rank 0's weights, as DDP does (each seeded its own)
            for t in module.state_dict().values():
                dist.broadcast(t, src=0)
        for m in list(module.modules()):
            if isinstance(m, (ResBlock, Attention, Block)) and m is not module:
                fully_shard(m, mesh=self._mesh)
        fully_shard(module, mesh=self._mesh)
        return module

    def no_sync(self, net):
        if self.sharded:
            return _gradient_sync_off(net)
        return net.no_sync() if self.active and hasattr(net, "no_sync") else nullcontext()

    # -- full (unsharded) state, for checkpoints: every rank calls these; rank 0 gets the tensors ---------
    def full_state_dict(self, module: torch.nn.Module) -> dict:
        if not self.sharded:
            return module.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def full_optimizer_state(self, module: torch.nn.Module, opt: torch.optim.Optimizer) -> dict:
        """The optimizer's state as `opt.state_dict()` of an unsharded run would give it (parameters by index)."""
        if not self.sharded:
            return opt.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        osd = get_optimizer_state_dict(module, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not osd:  # ranks other than 0
            return {}
        index = {name: i for i, (name, _) in enumerate(module.named_parameters())}
        return {"state": {index[k]: v for k, v in osd["state"].items()},
                "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in osd["param_groups"]]}

    def load_optimizer_state(self, module: torch.nn.Module, opt: torch.optim.Optimizer, sd: dict) -> None:
        if not self.sharded:
            opt.load_state_dict(sd)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        names = [name for name, _ in module.named_parameters()]
        osd = {"state": {names[int(i)]: v for i, v in sd["state"].items()},
               "param_groups": [{**g, "params": [names[int(i)] for i in g["params"]]} for g in sd["param_groups"]]}
        set_optimizer_state_dict(module, opt, osd, options=StateDictOptions(full_state_dict=True))

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


@contextmanager
def _gradient_sync_off(module):
    """FSDP's no_sync: keep gradients local across micro-batches; the last one reduce-scatters them all."""
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


def local(tensors):
    """The tensors a rank updates in place: the local shard of an FSDP parameter, or the tensor itself."""
    return [t.to_local() if hasattr(t, "to_local") else t for t in tensors]
