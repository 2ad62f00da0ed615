"""Run under torchrun (2 gloo processes): train a few steps, then check every rank holds the same weights."""

import hashlib
import sys

import torch.distributed as dist

from glide.training import TrainConfig
from glide.training.trainer import Trainer

data, out = sys.argv[1], sys.argv[2]
cfg = TrainConfig(preset="tiny", data=data, out=out, max_steps=4, batch_size=4, checkpoint_every=4, workers=0,
                  ema_rate=0.9, log_every=2, warmup_steps=1, lr=1e-3)
trainer = Trainer(cfg)
trainer.run()
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
