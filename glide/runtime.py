"""Where and how the models run: the default device, the default precision, and the CPU allocator setting.

This is the one home of these decisions; the pipeline, the CLI and the web page ask here. The figures behind them
are in docs/benchmarks.md (bench/cpu_profile.py, bench/cpu_sample.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform
import time
import warnings
from dataclasses import dataclass

import torch

MIXED = "mixed"  # bf16 at low noise, fp32 at high noise: see Precision and BF16_MIN_ALPHA_BAR
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def dtype_name(dtype: torch.dtype) -> str:
    """fp32, bf16 or fp16: the name `--dtype` takes (DTYPES lists each short name before its long one)."""
    return next(name for name, d in DTYPES.items() if d == dtype)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 dot-product instructions (AVX512-BF16, or AMX tiles). Elsewhere oneDNN emulates bf16,
    several times slower than fp32. Having them does not make bf16 faster: see `cpu_bf16_speedup`."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


# bf16 becomes a CPU default only where it beats fp32 by this much; the CPUs measured so far are far from it on
# either side (docs/benchmarks.md: AMD Zen 4 about 1.8x, an Intel Xeon without AMX about 0.55x).
BF16_MIN_SPEEDUP = 1.2


@functools.cache
def cpu_bf16_speedup() -> float | None:
    """How many times faster bf16 runs than fp32 on this CPU, measured once per process (about 50 ms): the best
    of 4 interleaved runs of a 3x3 convolution shaped like the bundled base's (128 channels, 32 px, channels_last),
    the op that takes most of a U-Net step. None on a CPU without bf16 instructions, where bf16 is emulated.

    Measured rather than read from the CPU flags because the flags do not tell: AMD's Zen 4 runs oneDNN's bf16
    kernels about twice as fast as fp32, while an Intel Xeon whose AMX tiles are hidden (as under some hypervisors)
    has the same AVX512-BF16 instructions and runs them at about half fp32's speed."""
    if not cpu_has_native_bf16():
        return None
    g = torch.Generator().manual_seed(0)  # its own: probing must not move the global random stream
    x = torch.randn(4, 128, 32, 32, generator=g).to(memory_format=torch.channels_last)
    w = torch.randn(128, 128, 3, 3, generator=g).to(memory_format=torch.channels_last)
    pairs = {dtype: (x.to(dtype), w.to(dtype)) for dtype in (torch.float32, torch.bfloat16)}
    best = dict.fromkeys(pairs, float("inf"))
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        for _ in range(4):
            for dtype, (xx, ww) in pairs.items():
                start = time.perf_counter()
                torch.nn.functional.conv2d(xx, ww, padding=1)
                best[dtype] = min(best[dtype], time.perf_counter() - start)
    return best[torch.float32] / best[torch.bfloat16]


def cpu_prefers_bf16() -> bool:
    """Whether bf16 is the faster precision on this CPU (`cpu_bf16_speedup` at least `BF16_MIN_SPEEDUP`)."""
    speedup = cpu_bf16_speedup()
    return speedup is not None and speedup >= BF16_MIN_SPEEDUP


def warn_if_bf16_is_slow(device: torch.device, dtype: torch.dtype, what: str) -> None:
    """Warn when bf16 is asked for on a CPU where it runs slower than fp32: emulated without bf16 instructions
    (about 8x slower for the bundled base on an AMD EPYC Zen 3: 7.5 s against 0.95 s per guided 4-image step),
    or with them but no faster units (about 0.55x on an Intel Xeon without AMX)."""
    if device.type != "cpu" or dtype != torch.bfloat16:
        return
    speedup = cpu_bf16_speedup()
    if speedup is None:
        warnings.warn(f"{what}: this CPU has no bf16 instructions (AVX512-BF16 or AMX), so bf16 is emulated and runs "
                      "several times slower than fp32; use fp32 here", stacklevel=3)
    elif speedup < 1:
        warnings.warn(f"{what}: bf16 runs at {speedup:.2f}x the speed of fp32 on this CPU (it has bf16 instructions "
                      "but no faster units for them); fp32 is faster here", stacklevel=3)


def cpu_description() -> dict:
    """What a benchmark row records about the CPU, the things that decide its figures: the model name, the
    vector instruction set torch's kernels dispatch to (AVX512, AVX2, ...), whether it has bf16 instructions and
    how much faster than fp32 they run (`cpu_bf16_speedup`)."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:  # not Linux
        pass
    speedup = cpu_bf16_speedup()
    return {"cpu": name, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": speedup is not None, "bf16_speedup": None if speedup is None else round(speedup, 2)}


def device_text(device: torch.device) -> str:
    """The device a benchmark ran on, in a line: the GPU's name, or `cpu_description` and the threads
    ("AMD EPYC (AVX2, no bf16 instructions), 2 threads"; "... (AVX512, bf16 at 1.85x fp32), 2 threads")."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    d = cpu_description()
    bf16 = f"bf16 at {d['bf16_speedup']:.2f}x fp32" if d["native_bf16"] else "no bf16 instructions"
    return f"{d['cpu']} ({d['cpu_capability']}, {bf16}), {torch.get_num_threads()} threads"


# An eps model's x_0 estimate, (x_t - sqrt(1 - ab) eps) / sqrt(ab), scales the rounding error of eps by
# sqrt((1 - ab) / ab). That factor is at most 1 where ab >= 1/2: there bf16 costs an eps model no more than it
# costs a v model, whose x_0 estimate never magnifies its output's rounding.
BF16_MIN_ALPHA_BAR = 0.5


@dataclass(frozen=True)
class Precision:
    """How a model computes: `dtype` (autocast) at every step, except the steps noisier than `min_alpha_bar`
    (alpha_bar_t below it), which run in fp32. `min_alpha_bar = 0`: `dtype` throughout."""

    dtype: torch.dtype
    min_alpha_bar: float = 0.0

    @property
    def name(self) -> str:
        """What `--dtype` takes, and what a PNG's settings record: fp32, bf16, fp16 or mixed."""
        return MIXED if self.min_alpha_bar > 0 else dtype_name(self.dtype)

    def at(self, alpha_bar: float) -> torch.dtype:
        """The precision of a step whose noise level is alpha_bar_t."""
        return self.dtype if alpha_bar >= self.min_alpha_bar else torch.float32

    @classmethod
    def parse(cls, spec: "str | torch.dtype | Precision") -> "Precision":
        """fp32, bf16, fp16 (or their long names, or a torch.dtype), or mixed: bf16 where alpha_bar_t >= 1/2 and
        fp32 at higher noise."""
        if isinstance(spec, Precision):
            return spec
        if isinstance(spec, torch.dtype):
            return cls(spec)
        if spec == MIXED:
            return cls(torch.bfloat16, BF16_MIN_ALPHA_BAR)
        if spec not in DTYPES:
            raise ValueError(f"unknown dtype {spec!r}; choose fp32, bf16, fp16 or mixed")
        return cls(DTYPES[spec])


def default_precision(device: torch.device, cfg=None) -> Precision:
    """The compute precision for sampling with a model (its `ModelConfig`, `cfg`) when none is asked for.

    - CUDA: bf16 autocast.
    - A CPU where bf16 runs faster than fp32 (`cpu_prefers_bf16`: about 1.8x on AMD Zen 4):
      - a v-prediction model (the bundled base): bf16 at every step. The convolutions and image attention run in
        bf16; the conditioning (timestep and caption embeddings, AdaGN projections, the caption's keys and
        values), the normalisation statistics, the attention softmax and the output layer stay fp32. On the
        bundled base the quality check cannot tell it from fp32 (FD -0.0004 +- 0.0005, paired bootstrap,
        n = 128; docs/benchmarks.md, "bf16 on the CPU: the quality check").
      - an eps model (the bundled upsampler, the official checkpoints): mixed, bf16 only at the steps where
        alpha_bar_t >= 1/2 (`BF16_MIN_ALPHA_BAR`) and fp32 at higher noise. bf16 at every step cost the bundled
        upsampler 0.072 dB of fidelity to the true art; mixed costs 0.004 dB (fp32 on NCHW instead of
        channels_last, the same maths summed in another order: 0.002 dB) and runs the upsampler 1.28x faster
        (docs/benchmarks.md, "Mixed precision for eps models").
    - Otherwise fp32: without bf16 instructions, and where they are no faster (an Intel Xeon without AMX).
    """
    if device.type == "cuda":
        return Precision(torch.bfloat16)
    if device.type == "cpu" and cpu_prefers_bf16():
        if getattr(cfg, "prediction", "eps") == "v":
            return Precision(torch.bfloat16)
        return Precision.parse(MIXED)
    return Precision(torch.float32)


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
