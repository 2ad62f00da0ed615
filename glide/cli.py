"""The `glide` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from .errors import GlideError

# The keys of glide.samplers.SAMPLERS, spelled out so that parsing arguments does not import torch.
SAMPLER_NAMES = ("ddpm", "ddim", "dpm++2m", "dpm++2m-sde")


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _steps(s: str) -> str:
    from .pipeline import parse_steps

    try:
        spec = parse_steps(s)
        from .diffusion import space_timesteps

        space_timesteps(1000, spec)
    except GlideError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return spec


def _out_paths(out: Path, n: int) -> list[Path]:
    return [out.with_name(f"{out.stem}_{i:03d}{out.suffix or '.png'}") for i in range(n)]


def _pipeline(args, need_upsampler: bool = False):
    from .pipeline import Pipeline, default_model

    model = args.model or default_model("base")
    upsampler = getattr(args, "upsampler", None)
    if need_upsampler and upsampler is None:
        upsampler = default_model("upsampler")
    clip = getattr(args, "clip_model", None)
    if clip is None and getattr(args, "clip_guidance_scale", 0):
        clip = default_model("clip")
    pipe = Pipeline.from_pretrained(model, device=args.device, dtype=args.dtype, upsampler=upsampler, clip=clip)
    pipe.low_res_consistency = not getattr(args, "no_consistency", False)
    if pipe.cfg.super_res:
        raise GlideError(f"{model} is an upsampler; this command needs a base (64 px) model (--model)")
    return pipe


def _save(images, out: Path, individual: bool, cols: int | None = None) -> None:
    from .images import grid, save_atomic

    if len(images) == 1:
        save_atomic(images[0], out)
    else:
        save_atomic(grid(images, cols=cols), out)
        if individual:
            for im, p in zip(images, _out_paths(out, len(images))):
                save_atomic(im, p)
    print(f"wrote {out} ({len(images)} image{'s' * (len(images) != 1)})")


def cmd_sample(args) -> int:
    # CLIP guidance shifts the mean of each ancestral step (GLIDE 3.2), so it needs ddpm/ddim and, like the
    # official notebook, 100 steps; otherwise the fast default.
    guided = bool(args.clip_guidance_scale)
    args.sampler = args.sampler or ("ddpm" if guided else "dpm++2m-sde")
    args.steps = args.steps or ("100" if guided else "20")
    pipe = _pipeline(args, need_upsampler=args.upsample)
    images = pipe(args.prompt, args.num_images, guidance_scale=args.guidance_scale, steps=args.steps,
                  sampler=args.sampler, eta=args.eta, temperature=args.temperature, seed=args.seed,
                  batch_size=args.batch_size, upsample=args.upsample, clip_guidance_scale=args.clip_guidance_scale,
                  progress=not args.quiet)
    # Several prompts: one row each.
    _save(images, Path(args.out), not args.no_individual, cols=args.num_images if len(args.prompt) > 1 else None)
    if len(images) > 1 and not args.no_individual:  # each image's caption beside it: a sample folder for glide rate
        for k, p in enumerate(_out_paths(Path(args.out), len(images))):
            _write_text(p.with_suffix(".txt"), args.prompt[k // args.num_images] + "\n")
    return 0


def cmd_inpaint(args) -> int:
    from .editing import parse_box

    if (args.mask is None) == (args.box is None):
        raise GlideError("give exactly one of --mask MASK.png or --box x0,y0,x1,y1")
    box = parse_box(args.box) if args.box else None
    pipe = _pipeline(args, need_upsampler=args.upsample)
    images = pipe.inpaint(args.image, args.mask, args.prompt, args.num_images, box=box,
                          guidance_scale=args.guidance_scale, steps=args.steps, sampler=args.sampler, eta=args.eta,
                          seed=args.seed, batch_size=args.batch_size, upsample=args.upsample,
                          composite=args.composite, progress=not args.quiet)
    _save(images, Path(args.out), not args.no_individual)
    return 0


def cmd_upsample(args) -> int:
    from .editing import open_image
    from .pipeline import Pipeline, default_model, load_model

    up = load_model(args.model or default_model("upsampler"), args.device or ("cuda" if _cuda() else "cpu"))[0]
    if not up.cfg.super_res:
        raise GlideError(f"{args.model} is not an upsampler")
    pipe = Pipeline(up, args.device, args.dtype, upsampler=up)
    pipe.low_res_consistency = not args.no_consistency
    images = [open_image(p) for p in args.images]
    out = pipe.upsample(images, args.prompt, steps=args.steps, sampler=args.sampler, temperature=args.temperature,
                        seed=args.seed, batch_size=args.batch_size, progress=not args.quiet)
    _save(out, Path(args.out), not args.no_individual)
    return 0


def cmd_serve(args) -> int:
    from .pipeline import Pipeline, default_model

    try:
        from .web.app import launch
    except ImportError as e:
        raise GlideError(f"the web page needs Gradio ({e}): pip install 'glide-diffusion[web]'") from None
    from .web.studio import Limits, Studio

    upsampler = None if args.no_upsampler else (args.upsampler or default_model("upsampler"))
    clip = None if args.no_clip else (args.clip_model or default_model("clip"))
    pipe = Pipeline.from_pretrained(args.model or default_model("base"), device=args.device, dtype=args.dtype,
                                    upsampler=upsampler, clip=clip)
    if pipe.cfg.super_res:
        raise GlideError(f"{args.model} is an upsampler; the page needs a base (64 px) model (--model)")
    studio = Studio(pipe, Limits(max_upload_mb=args.max_upload_mb))
    warnings.simplefilter("ignore", ResourceWarning)  # the web server's event loops; not actionable
    warnings.filterwarnings("ignore", module=r"gradio(\..*)?$")  # its own deprecation notices
    launch(studio, host=args.host, port=args.port, concurrency=args.concurrency, queue_size=args.queue_size)
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _common(s, batch_default: int = 8) -> None:
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--batch-size", type=_positive_int, default=batch_default, help="images per forward batch")
    s.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    s.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None, help="default fp32 on CPU, bf16 on CUDA")
    s.add_argument("--no-individual", action="store_true", help="save only the grid")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def cmd_convert(args) -> int:
    from .official.convert import convert_official

    if args.kind == "clip":
        if len(args.checkpoint) != 2:
            raise GlideError("--kind clip takes two files: clip_image_enc.pt clip_text_enc.pt")
        from .clip.io import convert_official_clip

        print(f"wrote {convert_official_clip(args.checkpoint[0], args.checkpoint[1], args.out)}")
        return 0
    if len(args.checkpoint) != 1:
        raise GlideError(f"--kind {args.kind} takes one checkpoint file")

    options = None
    if args.options:
        try:
            options = json.loads(Path(args.options).read_text())
        except FileNotFoundError:
            raise GlideError(f"options file not found: {args.options}") from None
        except json.JSONDecodeError as e:
            raise GlideError(f"{args.options} is not valid JSON ({e})") from None
        if not isinstance(options, dict):
            raise GlideError(f"{args.options} must hold a JSON object of official hyperparameters")
    out = convert_official(args.checkpoint[0], args.kind, args.out, options)
    print(f"wrote {out}")
    return 0


TRAIN_FLAGS = {  # flag -> TrainConfig field; flags override the config file
    "preset": "preset", "kind": "kind", "data": "data", "out": "out", "max_steps": "max_steps",
    "batch_size": "batch_size", "microbatch": "microbatch", "lr": "lr", "checkpoint_every": "checkpoint_every",
    "seed": "seed", "sample_every": "sample_every", "ema_rate": "ema_rate", "precision": "precision",
    "init_from": "init_from", "init_kind": "init_kind", "workers": "workers",
}


def cmd_train(args) -> int:
    from .training import TrainConfig, train
    from .training.config import load_toml

    values: dict = {}
    if args.config:
        values.update(load_toml(args.config))
    elif args.resume and args.out and (Path(args.out) / "config.json").is_file():
        values.update(json.loads((Path(args.out) / "config.json").read_text())["train"])
    for flag, field in TRAIN_FLAGS.items():
        v = getattr(args, flag)
        if v is not None:
            values[field] = v
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise GlideError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    cfg = TrainConfig.from_dict(values, where=args.config or "options")
    last = train(cfg, resume=args.resume)
    print(f"done: {last}")
    return 0


def _scales(s: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in s.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None


def _scoring_clip(spec, device, act: str):
    """A CLIP that scores samples, and its cache identity: a noised-CLIP model folder (or bundled:clip), or a
    standard CLIP's open_clip weights file (ViT, OpenAI layout)."""
    from .clip.io import load_clip
    from .evaluation.evaluate import model_key
    from .pipeline import resolve_model

    if Path(spec).is_file():
        from .clip.openclip import load_open_clip

        return load_open_clip(spec, device, quick_gelu=act == "quickgelu"), model_key(Path(spec)) + act
    folder = resolve_model(spec)
    return load_clip(folder, device), model_key(folder)


def cmd_eval(args) -> int:
    """`glide eval` (a table over guidance scales), `glide eval sweep` (the guidance study, with plots) and
    `glide eval coco` (the MS-COCO protocol): one flow, different defaults and reference images."""
    from .evaluation.evaluate import (EvalConfig, Scorer, check_settings, config_dict, default_cache_dir, evaluate,
                                      format_table, model_key)
    from .pipeline import Pipeline, default_model, resolve_model

    mode = args.eval_command or "eval"
    cfg = EvalConfig(data=getattr(args, "data", ""), splits=tuple(getattr(args, "splits", "").split(",")), n=args.n,
                     guidance_scales=args.guidance_scales, clip_scales=args.clip_scales,
                     clip_cfg_scale=args.clip_cfg_scale, steps=args.steps, sampler=args.sampler, seed=args.seed,
                     batch_size=args.batch_size, is_splits=10 if mode == "coco" and args.n >= 10_000 else 1)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    model = args.model or default_model("base")
    clip_spec = args.clip_model or default_model("clip")
    if any(cfg.clip_scales) and Path(clip_spec).is_file():
        raise GlideError("CLIP guidance needs a noised CLIP model folder (--clip-model); a standard open_clip file "
                         "can only score (--judge-clip, or --clip-model without --clip-scales)")
    clip_dir = resolve_model(clip_spec) if not Path(clip_spec).is_file() else Path(clip_spec)
    inception, inception_key = None, ""
    if args.inception_weights:
        from .evaluation.inception import load_fid_inception

        inception = load_fid_inception(args.inception_weights, args.device or "cpu")
        inception_key = model_key(Path(args.inception_weights))
    pipe = Pipeline.from_pretrained(model, device=args.device, dtype=args.dtype,
                                    clip=clip_dir if any(cfg.clip_scales) else None)
    if pipe.cfg.super_res:
        raise GlideError(f"{model} is an upsampler; glide eval scores 64 px base models")
    check_settings(pipe, cfg)  # before a long COCO preparation
    reference = None
    if mode == "coco":
        from .evaluation.coco import load_coco_reference

        reference = load_coco_reference(args.captions, args.images, n=args.n, seed=args.seed,
                                        size=pipe.cfg.unet.image_size, cache_dir=cache_dir, progress=not args.quiet)
    pipe.model_key = model_key(resolve_model(model))
    pipe.clip_key = model_key(clip_dir)
    clip, clip_key = (pipe.clip, pipe.clip_key) if pipe.clip is not None else \
        _scoring_clip(clip_spec, pipe.device, args.open_clip_act)
    judge, judge_key = _scoring_clip(args.judge_clip, pipe.device, args.open_clip_act) if args.judge_clip else (None, "")
    scorer = Scorer(clip, inception.to(pipe.device) if inception else None, inception_key, clip_key,
                    cache_dir, judge, judge_key)
    out = Path(args.out)
    t0 = time.perf_counter()
    rows = evaluate(pipe, scorer, cfg, out, progress=not args.quiet, reference=reference)
    table = format_table(rows)
    text = [table]
    print(table)
    files = ["results.json", "table.md", "a grid per setting (real | generated pairs)"]
    if mode == "sweep" or (cfg.clip_scales and cfg.guidance_scales):
        from .evaluation.sweep import format_gap_table, gap_rows, plot_gap, plot_tradeoffs

        plot_tradeoffs(rows, out / "tradeoffs.png")
        files.insert(2, "tradeoffs.png")
        gaps = gap_rows(rows)
        if gaps:
            gap_table = format_gap_table(gaps)
            print("\nCLIP score gains over the unguided conditional model, under the guiding CLIP and the judge:")
            print(gap_table)
            text.append(gap_table)
            plot_gap(gaps, out / "clip_gap.png")
            files.insert(3, "clip_gap.png")
    record = {"command": mode, "model": str(model), "clip": str(clip_spec), "judge_clip": str(args.judge_clip or ""),
              "inception": args.inception_weights, **config_dict(cfg), "seconds": round(time.perf_counter() - t0, 1),
              # each distinct setting once (CLIP scale 0 shares the cfg-1 samples)
              "sample_seconds": round(sum({(r["guidance_scale"], r["clip_scale"]): r["sample_seconds"]
                                           for r in rows if "sample_seconds" in r}.values()), 1)}
    if mode == "coco":
        record.update(data=None, splits=None, captions=str(args.captions), images=str(args.images))
    _write_text(out / "results.json", json.dumps({"config": record, "rows": rows}, indent=1) + "\n")
    _write_text(out / "table.md", "\n\n".join(text) + "\n")
    print(f"wrote {', '.join(files)} to {out}")
    return 0


def _write_text(path: Path, text: str) -> None:
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def cmd_export(args) -> int:
    from .training import export_run

    from .pipeline import DTYPES

    out = export_run(args.run_dir, args.out, raw=args.raw, step=args.step,
                     dtype=DTYPES[args.dtype] if args.dtype else None, max_shard_mb=args.max_shard_mb)
    print(f"wrote {out}")
    return 0


_NO_CONSISTENCY = "plain upsampling, as the official notebook (default: keep the 64 px image's low frequencies)"


EVAL_HELP = """Sample a base model on held-out captions and score the samples against the real images.
  glide eval         one row per classifier-free guidance scale (and CLIP scale, with --clip-scales)
  glide eval sweep   the paper's guidance study: both sweeps, tradeoffs.png, and with --judge-clip the
                     two-CLIP gap (clip_gap.png)
  glide eval coco    the MS-COCO protocol, with --captions captions_val2014.json --images val2014/
Samples are cached per batch in --out, so an interrupted run resumes."""


def _eval_options(p: argparse.ArgumentParser, mode: str) -> None:
    """Options of `glide eval` and its subcommands: one list, defaults per mode."""
    from .evaluation.sweep import DEFAULT_CFG_SCALES, DEFAULT_CLIP_SCALES

    sweep, coco = mode == "sweep", mode == "coco"
    p.add_argument("--model", default=None, help="base model folder (default: the bundled one)")
    if coco:
        p.add_argument("--captions", required=True, help="captions_val2014.json")
        p.add_argument("--images", required=True, help="the val2014/ image folder")
    else:
        p.add_argument("--data", default="data/emoji", help="emoji_64.npz or the folder holding it (glide data emoji)")
        p.add_argument("--splits", default="heldout_pair,heldout_emoji", help="comma-separated splits to score on")
    p.add_argument("-n", type=_positive_int, default=30_000 if coco else 100 if sweep else 200,
                   help="captions drawn (one sample each per setting)")
    p.add_argument("--guidance-scales", "--cfg-scales", dest="guidance_scales", type=_scales,
                   default=DEFAULT_CFG_SCALES if sweep else (0.0, 1.0, 2.0, 3.0, 5.0) if not coco else (3.0,),
                   help="classifier-free guidance scales, e.g. 0,1,2,3,5")
    p.add_argument("--clip-scales", type=_scales, default=DEFAULT_CLIP_SCALES if sweep else (),
                   help="CLIP guidance scales (rows on the conditional model; needs ddpm or ddim)")
    p.add_argument("--clip-cfg-scale", type=float, default=1.0,
                   help="classifier-free scale under CLIP guidance (1: the conditional model alone, as the paper)")
    p.add_argument("--steps", type=_steps, default="25" if sweep else "20")
    p.add_argument("--sampler", choices=SAMPLER_NAMES, default="ddpm" if sweep else "dpm++2m-sde")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--clip-model", default=None,
                   help="noised CLIP folder for FD, IS, CLIP score and CLIP guidance (default: the bundled one); "
                        "or an open_clip weights file (scoring only)")
    p.add_argument("--judge-clip", default=None,
                   help="a second CLIP, trained independently (a noised-CLIP folder, or a standard CLIP's open_clip "
                        "weights file, e.g. ViT-B-32's open_clip_pytorch_model.bin): tests for adversarial guidance")
    p.add_argument("--open-clip-act", choices=["quickgelu", "gelu"], default="quickgelu",
                   help="activation of an open_clip weights file given as a CLIP: quickgelu for OpenAI's weights, "
                        "gelu for LAION/DataComp ones")
    p.add_argument("--inception-weights", default=None,
                   help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: adds standard FID and IS")
    p.add_argument("--cache-dir", default=None,
                   help="where real-image features (and COCO references) are cached (default ~/.cache/glide/eval)")
    p.add_argument("--out", default={"sweep": "eval-sweep", "coco": "eval-coco"}.get(mode, "eval"),
                   help="folder for results.json, table.md, plots, grids and cached samples")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_eval, eval_command=None if mode == "eval" else mode)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="glide", description="GLIDE text-guided diffusion.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample", help="generate images from a prompt")
    s.add_argument("prompt", nargs="+", help='caption(s), one grid row each ("" for unconditional samples)')
    s.add_argument("--model", default=None, help="model folder, or official:base (default: the bundled model)")
    s.add_argument("-n", "--num-images", type=_positive_int, default=4)
    s.add_argument("--guidance-scale", type=float, default=3.0, help="classifier-free guidance scale (default 3)")
    s.add_argument("--steps", type=_steps, default=None,
                   help="sampling steps, or a respacing like fast27 (default 20; 100 with CLIP guidance)")
    s.add_argument("--sampler", choices=SAMPLER_NAMES, default=None,
                   help="dpm++2m-sde (SDE-DPM-Solver++ 2M, the default: good in 15-25 steps), dpm++2m (its "
                        "deterministic form), ddpm (ancestral, the official notebooks' choice at 100 steps, and the "
                        "default with CLIP guidance) or ddim")
    s.add_argument("--eta", type=float, default=0.0, help="DDIM noise (0 = deterministic)")
    s.add_argument("--temperature", type=float, default=1.0, help="scale of the initial noise")
    s.add_argument("--clip-model", default=None, help="noised CLIP folder for CLIP guidance (default: the bundled one)")
    s.add_argument("--clip-guidance-scale", type=float, default=0.0, help="CLIP guidance scale (0 = off)")
    s.add_argument("--upsample", action="store_true", help="run the 64 -> 256 upsampler on the samples")
    s.add_argument("--upsampler", default=None, help="upsampler model folder (default: the bundled one)")
    s.add_argument("--no-consistency", action="store_true",
                   help=_NO_CONSISTENCY)
    s.add_argument("--out", default="samples.png", help="grid image; individual images go beside it")
    _common(s)
    s.set_defaults(func=cmd_sample)

    i = sub.add_parser("inpaint", help="repaint a region of an image following a prompt")
    i.add_argument("image")
    i.add_argument("prompt")
    i.add_argument("--mask", help="mask image: WHITE = repaint, black = keep (same size as the image)")
    i.add_argument("--box", help="region to repaint, x0,y0,x1,y1 in image pixels")
    i.add_argument("--model", default=None, help="inpainting (or any base) model folder (default: bundled)")
    i.add_argument("-n", "--num-images", type=_positive_int, default=1)
    i.add_argument("--guidance-scale", type=float, default=5.0, help="classifier-free guidance scale (default 5)")
    i.add_argument("--steps", type=_steps, default="20")
    i.add_argument("--sampler", choices=SAMPLER_NAMES, default="dpm++2m-sde")
    i.add_argument("--eta", type=float, default=0.0)
    i.add_argument("--upsample", action="store_true", help="edit at 256 px with the upsampler")
    i.add_argument("--upsampler", default=None)
    i.add_argument("--no-consistency", action="store_true",
                   help=_NO_CONSISTENCY)
    i.add_argument("--composite", action="store_true", help="paste the result back into the original image")
    i.add_argument("--out", default="inpainted.png")
    _common(i)
    i.set_defaults(func=cmd_inpaint)

    u = sub.add_parser("upsample", help="64 -> 256 text-conditional upsampling")
    u.add_argument("images", nargs="+", metavar="IMAGE")
    u.add_argument("prompt")
    u.add_argument("--model", default=None, help="upsampler model folder (default: the bundled one)")
    u.add_argument("--steps", type=_steps, default="fast27")
    u.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddim")
    u.add_argument("--temperature", type=float, default=0.997)
    u.add_argument("--no-consistency", action="store_true",
                   help=_NO_CONSISTENCY)
    u.add_argument("--out", default="upsampled.png")
    _common(u)
    u.set_defaults(func=cmd_upsample)

    c = sub.add_parser("convert", help="convert an official GLIDE .pt checkpoint to a glide model folder")
    c.add_argument("checkpoint", nargs="+", help="OFFICIAL.pt (for --kind clip: clip_image_enc.pt clip_text_enc.pt)")
    c.add_argument("--kind", required=True, choices=["base", "upsample", "base-inpaint", "upsample-inpaint", "clip"])
    c.add_argument("--options", help="JSON file of official hyperparameters, for checkpoints of another size")
    c.add_argument("--out", required=True, help="output model folder")
    c.set_defaults(func=cmd_convert)

    t = sub.add_parser("train", help="train a model (any kind); launch with torchrun for several processes")
    t.add_argument("config", nargs="?", help="TOML config (see configs/); flags override it")
    t.add_argument("--preset")
    t.add_argument("--kind", choices=["text2im", "superres", "inpaint", "superres-inpaint", "clip"])
    t.add_argument("--data", help="image folder, .jsonl manifest, .npz arrays, or WebDataset .tar shards")
    t.add_argument("--out", help="run folder (checkpoints, samples, metrics.jsonl)")
    t.add_argument("--max-steps", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int, help="global batch size")
    t.add_argument("--microbatch", type=_positive_int, help="per-process micro-batch (gradient accumulation)")
    t.add_argument("--lr", type=float)
    t.add_argument("--checkpoint-every", type=_positive_int)
    t.add_argument("--sample-every", type=int)
    t.add_argument("--ema-rate", type=float)
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    t.add_argument("--init-from", help="fine-tune from a model folder or an official .pt")
    t.add_argument("--init-kind", help="official kind of --init-from .pt (base, upsample, ...)")
    t.add_argument("--workers", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other config key (JSON value)")
    t.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("data", help="build datasets")
    dsub = d.add_subparsers(dest="dataset", required=True)
    em = dsub.add_parser("emoji", help="the emoji artwork dataset (Twemoji, OpenMoji, Noto) with CLDR captions")
    from .data import emoji

    emoji.add_arguments(em)
    em.set_defaults(func=emoji.run)
    from .data import filter as data_filter

    fi = dsub.add_parser("filter", help="drop the images a policy names (caption, metadata and CLIP rules)")
    data_filter.add_arguments(fi)
    fi.set_defaults(func=data_filter.run)

    e = sub.add_parser("export", help="turn a training run's checkpoint into a model folder")
    e.add_argument("run_dir")
    e.add_argument("--out", required=True)
    e.add_argument("--raw", action="store_true", help="export the online weights instead of the EMA")
    e.add_argument("--step", type=int, default=None, help="a specific checkpoint step (default: latest)")
    e.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None, help="cast the weights (default: keep fp32)")
    e.add_argument("--max-shard-mb", type=float, default=None, help="split the weights into files of at most this size")
    e.set_defaults(func=cmd_export)

    ev = sub.add_parser("eval", help="score a base model: FD/FID, IS, CLIP score, precision/recall "
                        "(subcommands: sweep, coco)", description=EVAL_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _eval_options(ev, "eval")
    evsub = ev.add_subparsers(dest="eval_command", metavar="{sweep,coco}")
    sw = evsub.add_parser("sweep", help="the paper's guidance study: classifier-free vs CLIP guidance, with plots")
    _eval_options(sw, "sweep")
    co = evsub.add_parser("coco", help="the MS-COCO protocol: random val2014 captions against their images")
    _eval_options(co, "coco")

    from .rate import report as rate

    rate.add_arguments(sub.add_parser("rate", help="blind pairwise human evaluation: serve a voting page, report "
                                                   "win rates and Elo"))

    w = sub.add_parser("serve", help="start the local web page (needs: pip install 'glide-diffusion[web]')")
    w.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    w.add_argument("--port", type=_positive_int, default=7860)
    w.add_argument("--model", default=None, help="base model folder (default: the bundled one)")
    w.add_argument("--upsampler", default=None, help="upsampler folder (default: the bundled one)")
    w.add_argument("--no-upsampler", action="store_true", help="no 256 px upsampling")
    w.add_argument("--clip-model", default=None, help="noised CLIP folder for CLIP guidance (default: the bundled one)")
    w.add_argument("--no-clip", action="store_true", help="no CLIP guidance")
    w.add_argument("--concurrency", type=_positive_int, default=1, help="jobs sampling at once (default 1)")
    w.add_argument("--queue-size", type=_positive_int, default=64, help="jobs that may wait in line")
    w.add_argument("--max-upload-mb", type=float, default=8.0)
    w.add_argument("--device", default=None)
    w.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None)
    w.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        return args.func(args)
    except GlideError as e:
        print(f"glide: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glide: interrupted", file=sys.stderr)
        return 130
