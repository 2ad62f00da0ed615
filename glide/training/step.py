"""The differentiable part of a train step (forward + loss), eager or compiled as one graph.

`torch.compile` of this function captures the model's forward and the whole hybrid loss (q_sample, the
eps MSE, the VLB's Gaussian KL and decoder NLL) in one graph; AOTAutograd derives and compiles the matching
backward graph, so `.backward()` on its loss runs compiled kernels too. That matters for small diffusion
models, whose eager step is hundreds of short kernel launches (the loss alone is dozens of elementwise
ops). The optimizer step stays eager: fused AdamW (`fused_adamw`), gradient clipping and the EMA are each a
few multi-tensor kernels already.

Modes (`compile_mode`): "default"; "reduce-overhead" adds CUDA graphs (the batch shapes are static, so one
graph is recorded and replayed each step); "max-autotune-no-cudagraphs" also benchmarks matmul/conv kernels
while compiling (minutes); "max-autotune" both.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch

LossFn = Callable[[dict, slice], dict[str, torch.Tensor]]


def make_loss_fn(task, net, dgen: torch.Generator, autocast_dtype: torch.dtype | None = None,
                 compile: bool = False, mode: str = "default") -> LossFn:
    """(batch, slice) -> per-sample losses; autocast (bf16 on CUDA) is entered inside, where torch.compile
    sees it."""
    device_type = task.device.type

    def loss(batch: dict, sl: slice) -> dict[str, torch.Tensor]:
        autocast = torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
        return task.loss(net, batch, sl, autocast, dgen)

    if not compile:
        return loss
    # The diffusion's per-device tables are made on first use; made inside the first compiled call, they would
    # change a dict the graph is guarded on, and the second step would compile again.
    task.diffusion._tensors(task.device)
    compiled = torch.compile(loss, mode=None if mode == "default" else mode)
    if mode in ("reduce-overhead", "max-autotune"):
        # A CUDA graph's outputs live in memory its next replay overwrites: mark the step boundary so
        # torch knows the previous step's outputs are no longer read from the graph's memory.
        def stepped(batch: dict, sl: slice) -> dict[str, torch.Tensor]:
            torch.compiler.cudagraph_mark_step_begin()
            return compiled(batch, sl)

        return stepped
    return compiled
