"""Where and how the models run: the default device, the default precision, and the CPU allocator setting.

This is the one home of these decisions; the pipeline, the CLI and the web page ask here. The figures behind them
are in docs/benchmarks.md (bench/cpu_profile.py, bench/cpu_sample.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import torch

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def dtype_name(dtype: torch.dtype) -> str:
    """fp32, bf16 or fp16: the name `--dtype` takes (DTYPES lists each short name before its long one)."""
    return next(name for name, d in DTYPES.items() if d == dtype)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 dot-product instructions (AVX512-BF16, or AMX tiles), where oneDNN runs bf16
    convolutions and matmuls at about twice the fp32 rate. Elsewhere bf16 is emulated and no faster."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def default_dtype(device: torch.device, cfg=None) -> torch.dtype:
    """The compute precision for sampling with a model (its `ModelConfig`, `cfg`) when none is asked for.

    - CUDA: bf16 autocast.
    - A CPU with native bf16 (`cpu_has_native_bf16`), for a v-prediction model: bf16, about 1.7x faster. The
      convolutions and image attention run in bf16; the conditioning (timestep and caption embeddings, AdaGN
      projections, the caption's keys and values), the normalisation statistics, the attention softmax and the
      output layer stay fp32. On the bundled v base the quality check cannot tell it from fp32 (FD +0.0002 +-
      0.0004, paired bootstrap, n = 128; docs/benchmarks.md, "bf16 on the CPU: the quality check").
    - Otherwise fp32. That includes eps models on a CPU (the official checkpoints, the bundled upsampler): an eps
      model's x_0 estimate divides by sqrt(alpha_bar_t), which magnifies bf16's rounding at high noise, and on the
      old eps base the check did tell bf16 apart (FD +0.006 +- 0.002). `dtype="bf16"` still asks for it.
    """
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu" and getattr(cfg, "prediction", "eps") == "v" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of returning it to the system.

    A U-Net step allocates and frees activations of several MB each; with glibc's defaults (blocks over 128 KiB,
    a threshold that adapts, come from mmap and go back when freed) many of them are fresh mappings whose pages
    fault in again, zeroed by the kernel, on first touch. Keeping them cuts a 256 px
    upsampler step by 1.2-1.7x on 2 CPU cores (bench/cpu_sample.py). The cost: the process keeps its peak memory
    until it exits. Process-wide, so the CLI and `glide serve` call it, not the library; Python users may.
    Returns False where malloc is not glibc's (nothing is changed).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30)) and bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30))
