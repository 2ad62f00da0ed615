"""Per-op CPU profile of one guided forward pass of the bundled base (4 images: 8 rows, 64 px, channels_last), in
fp32 and under bf16 autocast, side by side. It answers "which op is slow in bf16, and why": every op's self time in
both precisions, their ratio, and the SDPA kernel that attention dispatched to.

    python bench/cpu_profile.py [--rows 8] [--t 500] [--top 25] [--json docs/results/cpu_profile.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from glide.pipeline import default_model, load_model
from glide.runtime import cpu_description
from glide.text import get_tokenizer


def guided_forward(rows: int = 8, t: int = 500):
    """The bundled base (channels_last, eval) and `forward(net, dtype)`, which makes one forward pass of `net` (the
    model, or a compiled wrapper of it) over `rows` rows of fixed noise at timestep `t`, captioned with the
    README's prompt, under autocast to `dtype`. bench/cpu_conv_peak.py measures the same pass."""
    model, _ = load_model(default_model("base"))
    model = model.to(memory_format=torch.channels_last).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 3, 64, 64, generator=gen).contiguous(memory_format=torch.channels_last)
    steps = torch.full((rows,), t)
    tokens, mask = get_tokenizer(model.cfg.text.tokenizer)(["red apple, twemoji style"] * rows, model.cfg.text.context)
    with torch.no_grad():
        text = model.encode_text(tokens, mask)

    def forward(net, dtype: torch.dtype):
        def run():
            with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                return net(x, steps, text).float()
        return run

    return model, forward


def op_times(fn, repeats: int) -> tuple[dict[str, list[float]], float]:
    """{op name: [self CPU ms per forward, calls per forward]} and the wall time of one forward (best of repeats)."""
    fn()  # warm-up: oneDNN builds its primitives on the first call
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    ops: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for e in prof.key_averages():
        ops[e.key][0] += e.self_cpu_time_total / 1000
        ops[e.key][1] += e.count
    return dict(ops), best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=8, help="batch rows (4 guided images = 8)")
    ap.add_argument("--t", type=int, default=500, help="timestep")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--json", help="append the per-op rows to this JSON-lines file")
    args = ap.parse_args()

    model, forward = guided_forward(args.rows, args.t)
    results = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        results[name] = op_times(forward(model, dtype), args.repeats)
    (fp32, wall32), (bf16, wall16) = results["fp32"], results["bf16"]
    machine = {**cpu_description(), "threads": torch.get_num_threads(),
               "cores": os.cpu_count(), "torch": torch.__version__,
               "avx512_bf16": torch.cpu._is_avx512_bf16_supported()}
    print(f"one forward, {args.rows} rows: fp32 {wall32 * 1000:.0f} ms, bf16 {wall16 * 1000:.0f} ms "
          f"({wall32 / wall16:.2f}x); {machine}")
    names = sorted(set(fp32) | set(bf16), key=lambda k: -max(fp32.get(k, [0])[0], bf16.get(k, [0])[0]))
    print(f"{'op':44s} {'fp32 ms':>9s} {'bf16 ms':>9s} {'bf16/fp32':>9s} {'calls fp32/bf16':>16s}")
    rows = []
    for k in names[: args.top]:
        a, b = fp32.get(k, [0.0, 0]), bf16.get(k, [0.0, 0])
        ratio = b[0] / a[0] if a[0] else float("inf")
        print(f"{k:44s} {a[0]:9.1f} {b[0]:9.1f} {ratio:9.2f} {a[1]:>7d}/{b[1]:<8d}")
        rows.append({"op": k, "fp32_ms": round(a[0], 2), "bf16_ms": round(b[0], 2), "fp32_calls": a[1],
                     "bf16_calls": b[1]})
    # The fused SDPA kernels show up under their own names; the math fallback as bmm + softmax (+ all/where).
    sdpa = sorted(k for k in set(fp32) | set(bf16)
                  if k.endswith(("flash_attention_for_cpu", "efficient_attention", "::bmm", "::_softmax")))
    print("attention kernels:", ", ".join(sdpa) or "none")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"rows": args.rows, "t": args.t, "fp32_ms": round(wall32 * 1000, 1),
                                "bf16_ms": round(wall16 * 1000, 1), "ops": rows, "attention_kernels": sdpa,
                                **machine}) + "\n")


if __name__ == "__main__":
    main()
