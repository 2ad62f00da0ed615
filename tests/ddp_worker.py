"""Run under torchrun (2 gloo processes): train a few steps, then check every rank holds the same weights.
With a third argument `fsdp`, train sharded instead (the test compares its checkpoint with DDP's)."""

import hashlib
import os
import sys

import torch.distributed as dist

from glide.training import TrainConfig
from glide.training.trainer import Trainer


def exit_now() -> None:
    """Leave without running C++ static destructors. With torch 2.13 on CPU, about one run in five aborted at
    interpreter exit ("terminate called without an active exception") after the work and destroy_process_group
    had finished, so torchrun reported a failure; os._exit after a flush did 0 in 15 (3 in 15 without it)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


data, out = sys.argv[1], sys.argv[2]
fsdp = sys.argv[3:] == ["fsdp"]
cfg = TrainConfig(preset="tiny", data=data, out=out, max_steps=4, batch_size=4, checkpoint_every=4, workers=0,
                  ema_rate=0.9, log_every=2, warmup_steps=1, lr=1e-3, fsdp=fsdp)
trainer = Trainer(cfg)
trainer.run()
if fsdp:
    local = trainer.model.unet.input_conv.weight.to_local()
    assert local.shape[0] < trainer.model.unet.input_conv.weight.shape[0]  # each rank holds a shard only
    if dist.get_rank() == 0:
        print("FSDP-DONE")
    trainer.dist.close()
    exit_now()
h = hashlib.sha256()
for p in trainer.model.parameters():
    h.update(p.detach().numpy().tobytes())
digests = [None] * dist.get_world_size()
dist.all_gather_object(digests, h.hexdigest())
# each rank saw different data, so identical weights mean the gradients were all-reduced
positions = [None] * dist.get_world_size()
dist.all_gather_object(positions, trainer.stream.pos.to_dict())
if dist.get_rank() == 0:
    assert len(set(digests)) == 1, digests
    print("RANKS-IN-SYNC", digests[0][:16], positions)
trainer.dist.close()
exit_now()
