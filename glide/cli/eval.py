"""`glide eval` and its subcommands `sweep` and `coco`: options and defaults per mode, then one flow."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .. import defaults
from ..errors import GlideError
from .args import DTYPE_CHOICES, DTYPE_HELP, _finite, _interval, _positive_int, _scales, _seed, _steps
from ..samplers import GUIDABLE
from .common import DISTILLED_HELP, SAMPLER_NAMES, _check_device, _guidance_steps, _run_settings


EVAL_HELP = """Sample a base model on held-out captions and score the samples against the real images.
  glide eval         one row per classifier-free guidance scale (and CLIP scale, with --clip-scales)
  glide eval sweep   the paper's guidance study: both sweeps, tradeoffs.png, and with --judge-clip the
                     two-CLIP gap (clip_gap.png)
  glide eval coco    the MS-COCO protocol, with --captions captions_val2014.json --images val2014/
Samples are cached per batch in --out, so an interrupted run resumes. Options may stand before or after
the subcommand (glide eval -n 50 sweep = glide eval sweep -n 50)."""


def _eval_defaults(mode: str) -> dict:
    """The defaults of `glide eval` and its subcommands. They are applied after parsing (the parsers set only
    what the user gave), so that an option given before the subcommand is not overwritten by the
    subcommand's default. The sweep samples with CLIP guidance, so it uses the CLIP-guided sampler."""
    sweep, coco = mode == "sweep", mode == "coco"
    d = dict(model=None, n=defaults.COCO_N if coco else defaults.SWEEP_N if sweep else defaults.EVAL_N,
             guidance_scales=defaults.SWEEP_CFG_SCALES if sweep else (defaults.GUIDANCE,) if coco else defaults.EVAL_CFG_SCALES,
             clip_scales=defaults.SWEEP_CLIP_SCALES if sweep else (), clip_cfg_scale=1.0,
             steps=str(defaults.SWEEP_STEPS) if sweep else str(defaults.STEPS), sampler=defaults.CLIP_SAMPLER if sweep else defaults.SAMPLER,
             seed=0, batch_size=defaults.EVAL_BATCH_SIZE, clip_model=None, judge_clip=None, open_clip_act="quickgelu",
             inception_weights=None, cache_dir=None, out={"sweep": "eval-sweep", "coco": "eval-coco"}.get(mode, "eval"),
             guidance_interval=None, guidance_reuse=None, distilled_guidance=None,
             device=None, dtype=None, quiet=False, upsample=False, upsampler=None,
             upsample_steps=defaults.UPSAMPLE_STEPS)
    if coco:
        d.update(captions=None, images=None)
    else:
        d.update(data="data/emoji", splits="heldout_pair,heldout_emoji")
    return d


def _apply_eval_defaults(args, mode: str) -> None:
    if mode == "coco":
        if getattr(args, "data", None) is not None or getattr(args, "splits", None) is not None:
            raise GlideError("glide eval coco reads --captions and --images, not --data or --splits")
        missing = [f"--{k}" for k in ("captions", "images") if getattr(args, k, None) is None]
        if missing:
            raise GlideError(f"glide eval coco needs {' and '.join(missing)} (captions_val2014.json, val2014/)")
    for key, value in _eval_defaults(mode).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if mode == "coco":  # the parent parser's options that coco has no use for
        args.data = args.splits = None


def _eval_options(p: argparse.ArgumentParser, mode: str) -> None:
    """Options of `glide eval` and its subcommands: one list, defaults per mode (shown in --help, applied by
    _apply_eval_defaults)."""
    d = _eval_defaults(mode)

    def add(*flags, help: str, **kw):
        dest = kw.get("dest") or flags[-1].lstrip("-").replace("-", "_")
        shown = d.get(dest)
        if isinstance(shown, tuple):
            shown = ",".join(f"{v:g}" for v in shown) or "none"
        if shown is not None and shown is not False and "default" not in help:
            help = f"{help} (default: {shown})"
        # A subcommand sets only what it was given: argparse copies every attribute of the subcommand's
        # namespace over the parent's, so a default there would silently undo `glide eval -n 5 sweep`.
        p.add_argument(*flags, default=None if mode == "eval" else argparse.SUPPRESS, help=help, **kw)

    add("--model", help="base model folder (default: the bundled one)")
    if mode == "coco":
        add("--captions", help="captions_val2014.json (required)")
        add("--images", help="the val2014/ image folder (required)")
    else:
        add("--data", help="emoji_64.npz or the folder holding it (glide data emoji)")
        add("--splits", help="comma-separated splits to score on")
    add("-n", type=_positive_int, help="captions drawn (one sample each per setting)")
    add("--guidance-scales", "--cfg-scales", dest="guidance_scales", type=_scales,
        help="classifier-free guidance scales, e.g. 0,1,2,3,5")
    add("--clip-scales", type=_scales, help=f"CLIP guidance scales (rows on the conditional model; needs {' or '.join(GUIDABLE)})")
    add("--clip-cfg-scale", type=_finite,
        help="classifier-free scale under CLIP guidance (1: the conditional model alone, as the paper)")
    add("--guidance-interval", type=_interval, metavar="LOW,HIGH",
        help="classifier-free guidance only where the noise level sigma lies in (LOW, HIGH]; 'all': every step "
             "(default: all)")
    add("--guidance-reuse", action=argparse.BooleanOptionalAction,
        help="outside the guidance interval, add the last guided step's difference instead of dropping guidance "
             f"(default: {'on' if defaults.GUIDANCE_REUSE else 'off'})")
    add("--distilled-guidance", action=argparse.BooleanOptionalAction, help=DISTILLED_HELP)
    add("--steps", type=_steps, help="sampling steps, or a respacing like fast27")
    add("--sampler", choices=SAMPLER_NAMES, help="sampler")
    add("--seed", type=_seed, help="seed of the caption draw and of the noise")
    add("--batch-size", type=_positive_int, help="images per forward batch")
    add("--upsample", action="store_const", const=True,
        help="score the cascade's 256 px samples (each base sample through the upsampler; references at 256 px: "
             "emoji_256.npz, or COCO images prepared at 256)")
    add("--upsampler", help="upsampler model folder for --upsample (default: the bundled one)")
    add("--upsample-steps", type=_steps, help="the upsampler's steps, or a respacing")
    add("--clip-model", help="noised CLIP folder for FD, IS, CLIP score and CLIP guidance (default: the bundled "
                             "one); or an open_clip weights file (scoring only)")
    add("--judge-clip", help="a second CLIP, trained independently (a noised-CLIP folder, or a standard CLIP's "
                             "open_clip weights file, e.g. ViT-B-32's open_clip_pytorch_model.bin): tests for "
                             "adversarial guidance (default: none)")
    add("--open-clip-act", choices=["quickgelu", "gelu"],
        help="activation of an open_clip weights file given as a CLIP: quickgelu for OpenAI's weights, gelu for "
             "LAION/DataComp ones")
    add("--inception-weights", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: adds standard FID and IS "
                                    "(default: none)")
    add("--cache-dir", help="where real-image features (and COCO references) are cached (default ~/.cache/glide/eval)")
    add("--out", help="folder for results.json, table.md, plots, grids and cached samples")
    add("--device", help="cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")
    add("--dtype", choices=DTYPE_CHOICES, help=DTYPE_HELP)
    add("-q", "--quiet", action="store_const", const=True, help="no progress bars")
    p.set_defaults(func=cmd_eval)


def _scoring_clip(spec, device, act: str):
    """A CLIP that scores samples, and its cache identity: a noised-CLIP model folder (or bundled:clip), or a
    standard CLIP's open_clip weights file (ViT, OpenAI layout)."""
    from ..clip.io import load_clip
    from ..evaluation.evaluate import model_key
    from ..pipeline import resolve_model

    if Path(spec).is_file():
        from ..clip.openclip import load_open_clip

        return load_open_clip(spec, device, quick_gelu=act == "quickgelu"), model_key(Path(spec)) + act
    folder = resolve_model(spec)
    return load_clip(folder, device), model_key(folder)


def cmd_eval(args) -> int:
    """`glide eval` (a table over guidance scales), `glide eval sweep` (the guidance study, with plots) and
    `glide eval coco` (the MS-COCO protocol): one flow, different defaults and reference images."""
    mode = args.eval_command or "eval"
    _apply_eval_defaults(args, mode)
    _check_device(args.device)
    from ..evaluation.evaluate import (EvalConfig, Scorer, check_settings, default_cache_dir, eval_size, evaluate,
                                      model_key)
    from ..evaluation.report import write_report
    from ..pipeline import Pipeline, default_model, resolve_model

    cfg = EvalConfig(data=args.data or "", splits=tuple((args.splits or "").split(",")), n=args.n,
                     guidance_scales=args.guidance_scales, clip_scales=args.clip_scales,
                     clip_cfg_scale=args.clip_cfg_scale, steps=args.steps, sampler=args.sampler, seed=args.seed,
                     batch_size=args.batch_size, is_splits=10 if mode == "coco" and args.n >= 10_000 else 1,
                     upsample=bool(args.upsample), upsample_steps=args.upsample_steps)
    if args.upsampler and not args.upsample:
        raise GlideError("--upsampler is for --upsample (scoring 256 px samples); add --upsample")
    upsampler = (args.upsampler or default_model("upsampler")) if args.upsample else None
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    model = args.model or default_model("base")
    clip_spec = args.clip_model or default_model("clip")
    if any(cfg.clip_scales) and Path(clip_spec).is_file():
        raise GlideError("CLIP guidance needs a noised CLIP model folder (--clip-model); a standard open_clip file "
                         "can only score (--judge-clip, or --clip-model without --clip-scales)")
    clip_dir = resolve_model(clip_spec) if not Path(clip_spec).is_file() else Path(clip_spec)
    inception, inception_key = None, ""
    if args.inception_weights:
        from ..evaluation.inception import load_fid_inception

        inception = load_fid_inception(args.inception_weights, args.device or "cpu")
        inception_key = model_key(Path(args.inception_weights))
    pipe = Pipeline.from_pretrained(model, device=args.device, dtype=args.dtype, upsampler=upsampler,
                                    clip=clip_dir if any(cfg.clip_scales) else None)
    if pipe.cfg.super_res:
        raise GlideError(f"{model} is an upsampler; glide eval scores 64 px base models")
    _guidance_steps(pipe, args)
    check_settings(pipe, cfg)  # before a long COCO preparation
    reference = None
    if mode == "coco":
        from ..evaluation.coco import load_coco_reference

        reference = load_coco_reference(args.captions, args.images, n=args.n, seed=args.seed,
                                        size=eval_size(pipe, cfg), cache_dir=cache_dir, progress=not args.quiet)
    pipe.upsampler_key = model_key(resolve_model(upsampler)) if upsampler else ""
    clip, clip_key = (pipe.clip, pipe.clip_key) if pipe.clip is not None else \
        _scoring_clip(clip_spec, pipe.device, args.open_clip_act)
    judge, judge_key = _scoring_clip(args.judge_clip, pipe.device, args.open_clip_act) if args.judge_clip else (None, "")
    scorer = Scorer(clip, inception.to(pipe.device) if inception else None, inception_key, clip_key,
                    cache_dir, judge, judge_key)
    out = Path(args.out)
    t0 = time.perf_counter()
    rows = evaluate(pipe, scorer, cfg, out, progress=not args.quiet, reference=reference)
    run = {"command": mode, "model": str(model), "upsampler": str(upsampler or ""), "clip": str(clip_spec), "judge_clip": str(args.judge_clip or ""),
           "inception": args.inception_weights, **_run_settings(pipe, bool(upsampler))}
    if mode == "coco":
        run.update(data=None, splits=None, captions=str(args.captions), images=str(args.images))
    write_report(rows, cfg, out, run, time.perf_counter() - t0,
                 plots=mode == "sweep" or bool(cfg.clip_scales and cfg.guidance_scales))
    return 0


def register(sub) -> None:
    """glide eval, glide eval sweep and glide eval coco."""
    ev = sub.add_parser("eval", help="score a base model: FD/FID, IS, CLIP score, precision/recall "
                        "(subcommands: sweep, coco)", description=EVAL_HELP)
    _eval_options(ev, "eval")
    evsub = ev.add_subparsers(dest="eval_command", metavar="{sweep,coco}")
    sw = evsub.add_parser("sweep", help="the paper's guidance study: classifier-free vs CLIP guidance, with plots")
    _eval_options(sw, "sweep")
    co = evsub.add_parser("coco", help="the MS-COCO protocol: random val2014 captions against their images")
    _eval_options(co, "coco")
