"""Ours against the official glide-text2im, in one process, with the same weights and the same workloads as the
ANCHORS table (speed does not depend on weight values, so both models get the same random weights).

    python bench/official_speed.py --reference-src .ref/glide-text2im --out bench-gpu.jsonl
    python bench/official_speed.py --reference-src .ref/glide-text2im --tiny --device cpu   # a 1-minute smoke test

The official source is never part of this repository: fetch openai/glide-text2im into a git-ignored folder and
pass its path. Workloads, each timed for the official model (fp16, as its notebooks run it; fp32 on a CPU) and
for ours in each of --ours (fp32, bf16, bf16+compile, bf16+graphs = torch.compile's CUDA graphs). Every
workload is warmed up first with a 2-step run of the same shapes (compilation happens there, untimed):

  base_cfg_N     100-step classifier-free-guided DDPM sampling of N images (official: p_sample_loop over the
                 doubled batch with a guided model function; ours: Pipeline.sample), images/s
  base_forward   one forward pass at batch --forward-batch (official: tokens in, text encoder every call;
                 ours: text encoded once), images/s
  up_fast27_N    the 64->256 upsampler, fast27 respacing, N images, images/s

and two numerical checks, printed as their own lines:

  match_fp32     ours (fp32) against the official model (fp32) sampling the same noise with 100 DDIM steps
                 (deterministic, so both runs see identical inputs): max |difference| of the final images
  bf16_psnr      ours in bf16 against ours in fp32 from the same noise (DDPM, same generator seed): PSNR of the
                 final 8-bit images, in dB

Each line names the device, torch version and the official commit if the source is a git checkout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from glide import GLIDE, Pipeline
from glide.evaluation.metrics import psnr
from glide.images import to_uint8
from glide.keys import from_official
from glide.runtime import device_text
from glide.official.options import config_from_options
from glide.samplers import sample_ddim

TINY = dict(num_channels=32, num_res_blocks=1, num_head_channels=32, attention_resolutions="16,8", xf_width=64,
            xf_layers=1, xf_heads=1, text_ctx=16)
PROMPT = "a corgi wearing a red bow tie"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, warmup=None) -> float:
    """Seconds for one call of fn, after `warmup()` (default: fn itself), which compiles and fills caches."""
    (warmup or fn)()
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def official_commit(src: Path) -> str | None:
    """The checkout's commit, or None (e.g. an exported tree inside another repository)."""
    def git(*a):
        return subprocess.run(["git", "-C", str(src), *a], capture_output=True, text=True, check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != src.resolve():
            return None
        return git("rev-parse", "--short", "HEAD") or None
    except (OSError, subprocess.CalledProcessError):
        return None


class Official:
    """The official model and diffusion built from its own code, plus the guided model function its notebooks
    use (both halves of a doubled batch share x; the guided eps is written into both)."""

    def __init__(self, mc, options: dict, device: torch.device, fp16: bool):
        self.mc, self.options, self.device = mc, options, device
        self.model, _ = mc.create_model_and_diffusion(**{**options, "use_fp16": fp16})
        self.model.eval()
        torch.manual_seed(0)
        with torch.no_grad():  # random weights everywhere (the official init zeroes the output layers)
            for p in self.model.parameters():
                p.normal_(0, 0.02)
        self.state_dict = {k: v.clone() for k, v in self.model.state_dict().items()}
        if fp16:
            self.model.convert_to_fp16()
        self.model.to(device)

    def diffusion(self, respacing: str):
        o = self.options
        return self.mc.create_gaussian_diffusion(steps=o["diffusion_steps"], noise_schedule=o["noise_schedule"],
                                                 timestep_respacing=respacing)

    def tokens(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tok, ctx = self.model.tokenizer, self.options["text_ctx"]
        pairs = [tok.padded_tokens_and_mask(tok.encode(p), ctx) for p in prompts]
        return (torch.tensor([t for t, _ in pairs], device=self.device),
                torch.tensor([m for _, m in pairs], dtype=torch.bool, device=self.device))

    def guided(self, scale: float):
        def fn(x, ts, **kw):
            half = x[: len(x) // 2]
            out = self.model(torch.cat([half, half]), ts, **kw)
            eps, rest = out[:, :3], out[:, 3:]
            cond, uncond = eps.chunk(2)
            g = uncond + scale * (cond - uncond)
            return torch.cat([torch.cat([g, g]), rest], 1)

        return fn

    def cfg_kwargs(self, n: int) -> dict:
        tokens, mask = self.tokens([PROMPT] * n + [""] * n)
        return {"tokens": tokens, "mask": mask}


def ours_from(official: Official, device: torch.device) -> GLIDE:
    cfg = config_from_options(**official.options)
    with torch.device("meta"):
        model = GLIDE(cfg)
    sd = from_official(model, official.state_dict, "state dict")
    model.load_state_dict({k: v.float() for k, v in sd.items()}, assign=True)
    return model.to(device).eval()


def variants(names: list[str], device: torch.device) -> list[tuple[str, dict]]:
    table = {"fp32": {"dtype": "fp32"}, "fp32+compile": {"dtype": "fp32", "compile": True}, "bf16": {"dtype": "bf16"},
             "bf16+compile": {"dtype": "bf16", "compile": True},
             "bf16+graphs": {"dtype": "bf16", "compile": "reduce-overhead"}}
    out = []
    for n in names:
        if n not in table:
            raise SystemExit(f"unknown --ours variant {n!r}; choose from {', '.join(table)}")
        if n == "bf16+graphs" and device.type != "cuda":
            continue  # CUDA graphs need CUDA
        out.append((n, table[n]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference-src", required=True, help="a checkout of openai/glide-text2im (never committed)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--batches", default="1,8,64", help="images per base sampling workload")
    ap.add_argument("--up-batches", default="1,8", help="images per upsampler workload (0 to skip)")
    ap.add_argument("--forward-batch", type=int, default=128)
    ap.add_argument("--steps", default="100", help="base sampling steps (the anchors use 100)")
    ap.add_argument("--ours", default="fp32,bf16,bf16+graphs",
                    help="our variants to time: fp32, fp32+compile, bf16, bf16+compile, bf16+graphs (each compiled variant "
                         "compiles once per batch shape, about a minute each for the full-size models)")
    ap.add_argument("--skip-official", action="store_true", help="time ours only (numerical checks still run)")
    ap.add_argument("--tiny", action="store_true", help="tiny official options and 2 steps: a CPU smoke test")
    ap.add_argument("--out", default=None, help="also append the JSON lines to this file")
    args = ap.parse_args()

    src = Path(args.reference_src).resolve()
    if not (src / "glide_text2im" / "model_creation.py").is_file():
        raise SystemExit(f"{src} is not a glide-text2im checkout (no glide_text2im/model_creation.py)")
    sys.path.insert(0, str(src))
    import glide_text2im.model_creation as mc

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    fp16 = device.type == "cuda"
    steps = "2" if args.tiny else args.steps
    fast27 = "2" if args.tiny else "fast27"
    base_info = dict(device=device_text(device), torch=torch.__version__, official_commit=official_commit(src))
    sink = open(args.out, "a") if args.out else None

    def emit(row: dict) -> None:
        line = json.dumps({**base_info, **row})
        print(line, flush=True)
        if sink:
            sink.write(line + "\n")
            sink.flush()

    torch.set_grad_enabled(False)
    tiny = TINY if args.tiny else {}
    base_opts = {**mc.model_and_diffusion_defaults(), **tiny}
    official = Official(mc, base_opts, device, fp16)
    ours_model = ours_from(official, device)
    kinds = variants(args.ours.split(","), device)
    size = base_opts["image_size"]

    # -- numerical checks -------------------------------------------------------------------------
    n = 2
    noise = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    ref32 = Official(mc, base_opts, device, fp16=False)
    off = ref32.diffusion(steps if args.tiny else "100").ddim_sample_loop(
        ref32.guided(3.0), (2 * n, 3, size, size), noise=torch.cat([noise, noise]), clip_denoised=True,
        model_kwargs=ref32.cfg_kwargs(n), device=device)[:n]
    del ref32
    pipe32 = Pipeline(ours_model, device, "fp32")
    d = pipe32.diffusion(steps if args.tiny else 100)
    from glide import guidance

    texts = pipe32.encode([PROMPT] * n), pipe32.encode([""] * n)
    den = guidance.classifier_free(pipe32._model_fn(ours_model), {"text": texts[0]}, {"text": texts[1]}, 3.0)
    mine = sample_ddim(den, d, noise.clone())
    emit({"bench": "match_fp32", "sampler": "ddim", "steps": d.num_timesteps, "images": n,
          "max_abs_diff": (mine - off).abs().max().item(), "psnr_8bit_db": round(psnr(to_uint8(mine), to_uint8(off)), 2)})
    if device.type == "cuda":
        g32, g16 = torch.Generator(device).manual_seed(1), torch.Generator(device).manual_seed(1)
        a = Pipeline(ours_model, device, "fp32").sample([PROMPT] * 8, guidance_scale=3.0, steps=steps, generator=g32)
        b = Pipeline(ours_model, device, "bf16").sample([PROMPT] * 8, guidance_scale=3.0, steps=steps, generator=g16)
        emit({"bench": "bf16_psnr", "sampler": "ddpm", "steps": int(steps), "images": 8,
              "psnr_8bit_db": round(psnr(to_uint8(a), to_uint8(b)), 2)})

    # -- base sampling ----------------------------------------------------------------------------
    for b in [int(s) for s in args.batches.split(",") if s]:
        row = {"bench": f"base_cfg_{b}", "images": b, "steps": int(steps)}
        try:
            if not args.skip_official:
                dif = official.diffusion(steps)
                kw = official.cfg_kwargs(b)
                warm = official.diffusion("2")
                sec = timed(lambda: dif.p_sample_loop(official.guided(3.0), (2 * b, 3, size, size), device=device,
                                                      clip_denoised=True, model_kwargs=kw), device,
                            lambda: warm.p_sample_loop(official.guided(3.0), (2 * b, 3, size, size), device=device,
                                                       clip_denoised=True, model_kwargs=kw))
                emit({**row, "impl": "official", "dtype": "fp16" if fp16 else "fp32", "seconds": round(sec, 3),
                      "images_per_s": round(b / sec, 3)})
            for name, kw in kinds:
                pipe = Pipeline(ours_model, device, **kw)
                sec = timed(lambda: pipe.sample([PROMPT] * b, guidance_scale=3.0, steps=steps, sampler="ddpm"),
                            device, lambda: pipe.sample([PROMPT] * b, guidance_scale=3.0, steps=2, sampler="ddpm"))
                emit({**row, "impl": "ours", "variant": name, "seconds": round(sec, 3),
                      "images_per_s": round(b / sec, 3)})
        except torch.cuda.OutOfMemoryError:
            emit({**row, "error": "out of memory"})
            torch.cuda.empty_cache()

    # -- forward only -----------------------------------------------------------------------------
    fb = args.forward_batch
    x = torch.randn(fb, 3, size, size, device=device)
    t = torch.full((fb,), 500, device=device)
    row = {"bench": "base_forward", "images": fb}
    if not args.skip_official:
        tokens, mask = official.tokens([PROMPT] * fb)
        sec = timed(lambda: official.model(x, t, tokens=tokens, mask=mask), device)
        emit({**row, "impl": "official", "dtype": "fp16" if fp16 else "fp32", "seconds": round(sec, 4),
              "images_per_s": round(fb / sec, 2)})
    for name, kw in kinds:
        pipe = Pipeline(ours_model, device, **kw)
        text = pipe.encode([PROMPT] * fb)
        fn = pipe._model_fn(ours_model)
        sec = timed(lambda: fn(x, t, text=text), device)
        emit({**row, "impl": "ours", "variant": name, "seconds": round(sec, 4), "images_per_s": round(fb / sec, 2)})
    del official, ours_model, x
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # -- upsampler --------------------------------------------------------------------------------
    up_batches = [int(s) for s in args.up_batches.split(",") if s and int(s) > 0]
    if up_batches:
        up_opts = {**mc.model_and_diffusion_defaults_upsampler(), **tiny}
        up = Official(mc, up_opts, device, fp16)
        ours_up = ours_from(up, device)
        usize, low = up_opts["image_size"], up_opts["image_size"] // 4
        for b in up_batches:
            low_res = torch.rand(b, 3, low, low, device=device) * 2 - 1
            row = {"bench": f"up_fast27_{b}", "images": b, "steps": "fast27" if not args.tiny else 2}
            if not args.skip_official:
                dif = up.diffusion(fast27)
                tokens, mask = up.tokens([PROMPT] * b)
                kw = {"tokens": tokens, "mask": mask, "low_res": low_res}
                warm = up.diffusion("2")
                sec = timed(lambda: dif.p_sample_loop(
                    up.model, (b, 3, usize, usize), noise=torch.randn(b, 3, usize, usize, device=device) * 0.997,
                    device=device, clip_denoised=True, model_kwargs=kw), device,
                    lambda: warm.p_sample_loop(up.model, (b, 3, usize, usize), device=device, model_kwargs=kw))
                emit({**row, "impl": "official", "dtype": "fp16" if fp16 else "fp32", "seconds": round(sec, 3),
                      "images_per_s": round(b / sec, 3)})
            for name, kw in kinds:
                pipe = Pipeline(ours_up, device, upsampler=ours_up, **kw)
                pipe.low_res_consistency = False  # the official notebook's plain sampling
                sec = timed(lambda: pipe._upsample(low_res, [PROMPT] * b, fast27, "ddpm", 0.997, None, False),
                            device, lambda: pipe._upsample(low_res, [PROMPT] * b, "2", "ddpm", 0.997, None, False))
                emit({**row, "impl": "ours", "variant": name, "seconds": round(sec, 3),
                      "images_per_s": round(b / sec, 3)})
    if sink:
        sink.close()


if __name__ == "__main__":
    main()
