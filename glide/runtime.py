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


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 dot-product instructions (AVX512-BF16, or AMX tiles), where oneDNN runs bf16
    convolutions and matmuls at about twice the fp32 rate. Elsewhere bf16 is emulated and no faster."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def default_dtype(device: torch.device) -> torch.dtype:
    """The compute precision for sampling when none is asked for: bf16 autocast on CUDA, fp32 elsewhere.

    On a CPU with native bf16 (`cpu_has_native_bf16`), `dtype="bf16"` (`--dtype bf16`) samples about 1.8x faster:
    the convolutions and image attention run in bf16, while the conditioning (timestep and caption embeddings,
    AdaGN projections, the caption's keys and values), the normalisation statistics, the attention softmax and
    the output layer stay fp32. It is not yet the default: on the old eps base the quality check told it apart
    (FD +0.006 +- 0.002, paired bootstrap, n = 128); on the shipped v base it no longer does (+0.0002 +- 0.0004),
    and making it the default is the next step (docs/benchmarks.md, "bf16 on the CPU: the quality check").
    """
    return torch.bfloat16 if device.type == "cuda" else torch.float32


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
