"""How close is a bf16 forward of the bundled base to this CPU's arithmetic ceiling? One guided forward (4 images:
8 rows, 64 px, channels_last, bf16 autocast), profiled per convolution shape with the GFLOP/s each shape reaches;
next to it the rate of a large bf16 matrix product on the same threads (a practical ceiling), and with
`--compile` the forward through torch.compile with inductor's freezing (constant weights: oneDNN weight
prepacking and fused post-ops), eager against compiled.

    python bench/cpu_conv_peak.py [--top 12] [--compile] [--json docs/results/cpu_conv_peak.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from glide.runtime import cpu_description

from cpu_profile import guided_forward  # the same forward pass (bench/ is on the path when run as a script)


def best_of(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--top", type=int, default=12, help="convolution shapes to list")
    ap.add_argument("--compile", action="store_true", help="also time the forward compiled with freezing")
    ap.add_argument("--json", help="append the result lines to this JSON-lines file")
    args = ap.parse_args()

    rows = 8
    model, forward = guided_forward(rows)
    eager = forward(model, torch.bfloat16)
    wall = best_of(eager)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        eager()
    convs: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0, 0.0])
    for e in prof.key_averages(group_by_input_shape=True):
        if e.key != "aten::mkldnn_convolution":
            continue
        (n, cin, h, w), (cout, _, kh, kw) = e.input_shapes[0], e.input_shapes[1]
        # Every convolution of this U-Net keeps its input's resolution (its resblocks resample by pooling and
        # interpolation), so the output has h * w positions.
        flops = 2 * n * h * w * cout * cin * kh * kw
        row = convs[(n, cin, h, w, cout, kh)]
        row[0] += e.self_cpu_time_total / 1000
        row[1] += e.count
        row[2] += flops * e.count
    conv_ms = sum(r[0] for r in convs.values())

    a = torch.randn(4096, 4096, dtype=torch.bfloat16)
    b = torch.randn(4096, 4096, dtype=torch.bfloat16)
    matmul = 2 * 4096**3 / best_of(lambda: a @ b, 3) / 1e9

    machine = {**cpu_description(), "threads": torch.get_num_threads(),
               "cores": os.cpu_count(), "torch": torch.__version__}
    lines = [{"forward_ms": round(wall * 1000, 1), "convolution_ms": round(conv_ms, 1),
              "bf16_matmul_4096_gflops": round(matmul, 1), **machine}]
    print(f"bf16 forward, {rows} rows: {wall * 1000:.0f} ms, of which convolutions {conv_ms:.0f} ms; "
          f"a 4096x4096 bf16 matmul runs at {matmul:.0f} GFLOP/s on {torch.get_num_threads()} threads")
    print(f"{'input [N, C, H, W] -> C_out, k':36s} {'calls':>5s} {'ms':>7s} {'GFLOP/s':>8s}")
    for (n, cin, h, w, cout, k), (ms, calls, flops) in sorted(convs.items(), key=lambda kv: -kv[1][0])[: args.top]:
        rate = flops / ms / 1e6
        print(f"{str([n, cin, h, w]) + f' -> {cout}, {k}x{k}':36s} {calls:5d} {ms:7.1f} {rate:8.0f}")
        lines.append({"input": [n, cin, h, w], "out_channels": cout, "kernel": k, "calls": calls,
                      "ms": round(ms, 2), "gflops": round(rate, 1)})

    if args.compile:
        import torch._inductor.config as inductor

        inductor.freezing = True
        compiled = forward(torch.compile(model), torch.bfloat16)
        t0 = time.perf_counter()
        compiled()
        first = time.perf_counter() - t0
        fast = best_of(compiled)
        print(f"torch.compile with freezing: first call {first:.0f} s, then {fast * 1000:.0f} ms per forward "
              f"(eager {wall * 1000:.0f} ms)")
        lines.append({"compiled_freezing_ms": round(fast * 1000, 1), "eager_ms": round(wall * 1000, 1),
                      "compile_first_call_s": round(first, 1), **machine})
    if args.json:
        with open(args.json, "a") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
