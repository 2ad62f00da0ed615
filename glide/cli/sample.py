"""`glide sample`, `glide inpaint`, `glide sdedit` and `glide upsample`: the commands that make images."""

from __future__ import annotations

import shlex

from .. import defaults
from ..errors import GlideError
from .args import _finite, _non_negative, _positive_int, _steps, _unit
from .common import (SAMPLER_NAMES, _NO_CONSISTENCY, _common, _common_checks, _model_name, _out_paths, _pick_seed,
                     _interval_option, _pipeline, _run_settings, _sampler_and_steps, _save, _write_text)


def cmd_sample(args) -> int:
    guided = _sampler_and_steps(args)
    out = _common_checks(args, args.prompt)
    seed = _pick_seed(args.seed)
    pipe = _pipeline(args, need_upsampler=args.upsample)
    images = pipe(args.prompt, args.num_images, guidance_scale=args.guidance_scale, steps=args.steps,
                  sampler=args.sampler, eta=args.eta, temperature=args.temperature, seed=seed,
                  batch_size=args.batch_size, upsample=args.upsample, clip_guidance_scale=args.clip_guidance_scale,
                  progress=not args.quiet)
    common = dict(model=_model_name(args.model, "base"), sampler=args.sampler, steps=args.steps,
                  guidance_scale=args.guidance_scale, clip_guidance_scale=args.clip_guidance_scale,
                  temperature=args.temperature, eta=args.eta, upsample=args.upsample,
                  **_run_settings(pipe, args.upsample))
    metas = []
    for prompt in args.prompt:  # image j of each prompt started from seed + j
        for j in range(args.num_images):
            s = (seed + j) % 2**64
            repeat = ["glide", "sample", prompt, "-n", "1", "--seed", str(s), "--steps", args.steps,
                      "--sampler", args.sampler, "--guidance-scale", f"{args.guidance_scale:g}"]
            repeat += ["--model", str(args.model)] if args.model else []
            repeat += ["--clip-guidance-scale", f"{args.clip_guidance_scale:g}"] if guided else []
            repeat += ["--temperature", f"{args.temperature:g}"] if args.temperature != 1 else []
            repeat += ["--eta", f"{args.eta:g}"] if args.eta else []
            repeat += ["--upsample"] if args.upsample else []
            repeat += ["--dtype", args.dtype] if args.dtype else []
            if args.guidance_interval is not None:
                repeat += ["--guidance-interval", defaults.interval_text(args.guidance_interval or None)]
            if args.guidance_reuse is not None:
                repeat += ["--guidance-reuse" if args.guidance_reuse else "--no-guidance-reuse"]
            repeat += ["--no-distilled-guidance"] if args.distilled_guidance is False else []
            metas.append({"prompt": prompt, "seed": s, **common, "command": shlex.join(repeat)})
    grid_meta = {"prompt": args.prompt if len(args.prompt) > 1 else args.prompt[0], "seed": seed,
                 "seeds": f"image j of each prompt: seed {seed} + j", "num_images": args.num_images, **common}
    # Several prompts: one row each.
    _save(images, out, not args.no_individual, cols=args.num_images if len(args.prompt) > 1 else None,
          metas=metas, grid_meta=grid_meta, picked_seed=seed if args.seed is None else None)
    if len(images) > 1 and not args.no_individual:  # each image's caption beside it: a sample folder for glide rate
        for k, p in enumerate(_out_paths(out, len(images))):
            _write_text(p.with_suffix(".txt"), args.prompt[k // args.num_images] + "\n")
    return 0


def cmd_inpaint(args) -> int:
    from ..editing import check_edit, open_image, parse_box, repaint_region, to_rgb

    if (args.mask is None) == (args.box is None):
        raise GlideError("give exactly one of --mask MASK.png or --box x0,y0,x1,y1")
    box = parse_box(args.box) if args.box else None
    out = _common_checks(args, [args.prompt])
    original = to_rgb(open_image(args.image, "image"))
    repaint = repaint_region(original, args.mask, box)
    check_edit(original, repaint)
    seed = _pick_seed(args.seed)
    pipe = _pipeline(args, need_upsampler=args.upsample, inpaint=True)
    images = pipe.inpaint(original, repaint, args.prompt, args.num_images,
                          guidance_scale=args.guidance_scale, steps=args.steps, sampler=args.sampler, eta=args.eta,
                          seed=seed, batch_size=args.batch_size, upsample=args.upsample,
                          composite=args.composite, progress=not args.quiet)
    common = dict(image=str(args.image), mask=str(args.mask) if args.mask else None, box=args.box,
                  model=_model_name(args.model, "base"), sampler=args.sampler, steps=args.steps,
                  guidance_scale=args.guidance_scale, eta=args.eta, upsample=args.upsample,
                  **_run_settings(pipe, args.upsample, inpaint=True))
    metas = [{"prompt": args.prompt, "seed": (seed + k) % 2**64, **common} for k in range(args.num_images)]
    _save(images, out, not args.no_individual, metas=metas, picked_seed=seed if args.seed is None else None,
          grid_meta={"prompt": args.prompt, "seed": seed, "seeds": f"image k: seed {seed} + k", **common})
    return 0


def cmd_sdedit(args) -> int:
    from ..editing import check_image_file

    _sampler_and_steps(args)
    if not 0 <= args.strength <= 1:
        raise GlideError(f"--strength must be between 0 and 1, got {args.strength:g}")
    out = _common_checks(args, [args.prompt])
    check_image_file(args.image, "image")
    if args.mask:
        check_image_file(args.mask, "mask")
    seed = _pick_seed(args.seed)
    pipe = _pipeline(args, need_upsampler=args.upsample)
    images = pipe.sdedit(args.image, args.prompt, args.strength, mask=args.mask, num_images=args.num_images,
                         guidance_scale=args.guidance_scale, steps=args.steps, sampler=args.sampler, eta=args.eta,
                         seed=seed, batch_size=args.batch_size, clip_guidance_scale=args.clip_guidance_scale,
                         upsample=args.upsample, progress=not args.quiet)
    common = dict(image=str(args.image), mask=str(args.mask) if args.mask else None, strength=args.strength,
                  model=_model_name(args.model, "base"), sampler=args.sampler, steps=args.steps,
                  guidance_scale=args.guidance_scale, clip_guidance_scale=args.clip_guidance_scale, eta=args.eta,
                  upsample=args.upsample, **_run_settings(pipe, args.upsample))
    metas = [{"prompt": args.prompt, "seed": (seed + k) % 2**64, **common} for k in range(args.num_images)]
    _save(images, out, not args.no_individual, metas=metas, picked_seed=seed if args.seed is None else None,
          grid_meta={"prompt": args.prompt, "seed": seed, "seeds": f"image k: seed {seed} + k", **common})
    return 0


def cmd_upsample(args) -> int:
    from ..editing import check_image_file

    out = _common_checks(args, [args.prompt])
    for p in args.images:
        check_image_file(p, "image")
    seed = _pick_seed(args.seed)
    from ..editing import open_image
    from ..pipeline import Pipeline, default_device, default_model, load_model

    up = load_model(args.model or default_model("upsampler"), args.device or default_device())[0]
    if not up.cfg.super_res:
        raise GlideError(f"{args.model} is not an upsampler")
    pipe = Pipeline(up, args.device, args.dtype, upsampler=up)
    pipe.low_res_consistency = not args.no_consistency
    images = [open_image(p) for p in args.images]
    result = pipe.upsample(images, args.prompt, steps=args.steps, sampler=args.sampler, temperature=args.temperature,
                           seed=seed, batch_size=args.batch_size, progress=not args.quiet)
    common = dict(model=_model_name(args.model, "upsampler"), sampler=args.sampler, steps=args.steps,
                  temperature=args.temperature, **_run_settings(pipe, False, guided=False))
    metas = [{"prompt": args.prompt, "image": str(p), "seed": (seed + k) % 2**64, **common}
             for k, p in enumerate(args.images)]
    _save(result, out, not args.no_individual, metas=metas, picked_seed=seed if args.seed is None else None,
          grid_meta={"prompt": args.prompt, "seed": seed, "seeds": f"image k: seed {seed} + k", **common})
    return 0


def _clip_options(p) -> None:
    p.add_argument("--clip-model", default=None, help="noised CLIP folder for CLIP guidance (default: the bundled one)")
    p.add_argument("--clip-guidance-scale", type=_non_negative, default=0.0, help="CLIP guidance scale (0 = off)")


def _upsample_options(p, what: str) -> None:
    p.add_argument("--upsample", action="store_true", help=what)
    p.add_argument("--upsampler", default=None, help="upsampler model folder (default: the bundled one)")
    p.add_argument("--no-consistency", action="store_true", help=_NO_CONSISTENCY)


def register(sub) -> None:
    """glide sample, inpaint, sdedit and upsample."""
    s = sub.add_parser("sample", help="generate images from a prompt")
    s.add_argument("prompt", nargs="+", help='caption(s), one grid row each ("" for unconditional samples). The '
                   'bundled base knows emoji names with an art style, "NAME, twemoji style" (or openmoji style, '
                   'openmoji line art, noto emoji style); the web page (glide serve) offers eight of its training '
                   'captions')
    s.add_argument("--model", default=None, help="model folder, or official:base (default: the bundled model)")
    s.add_argument("-n", "--num-images", type=_positive_int, default=4, help="images per prompt")
    s.add_argument("--guidance-scale", type=_finite, default=defaults.GUIDANCE, help="classifier-free guidance scale")
    s.add_argument("--steps", type=_steps, default=None,
                   help=f"sampling steps (evenly spaced), or a respacing like fast27 or karras12 (12 steps, Karras "
                        f"spacing: docs/benchmarks.md) (default {defaults.STEPS}; "
                        f"{defaults.CLIP_STEPS} with CLIP guidance)")
    s.add_argument("--sampler", choices=SAMPLER_NAMES, default=None,
                   help=f"dpm++2m-sde (SDE-DPM-Solver++ 2M: good in 15-25 steps), dpm++2m (its deterministic form), "
                        f"ddpm (ancestral, the official notebooks' choice at 100 steps) or ddim (default "
                        f"{defaults.SAMPLER}; {defaults.CLIP_SAMPLER} with CLIP guidance)")
    s.add_argument("--eta", type=_unit, default=0.0, help="DDIM noise, 0 to 1 (0 = deterministic)")
    s.add_argument("--temperature", type=_finite, default=1.0, help="scale of the initial noise")
    _clip_options(s)
    _upsample_options(s, "run the 64 -> 256 upsampler on the samples")
    s.add_argument("--out", default="samples.png", help="grid image; individual images go beside it")
    _common(s)
    _interval_option(s)
    s.set_defaults(func=cmd_sample)

    i = sub.add_parser("inpaint", help="repaint a region of an image following a prompt")
    i.add_argument("image", help="the image to edit")
    i.add_argument("prompt", help="what the repainted region should show")
    i.add_argument("--mask", help="mask image: WHITE = repaint, black = keep (same size as the image)")
    i.add_argument("--box", help="region to repaint, x0,y0,x1,y1 in image pixels")
    i.add_argument("--model", default=None, help="inpainting (or any base) model folder (default: bundled)")
    i.add_argument("-n", "--num-images", type=_positive_int, default=1, help="edits to make")
    i.add_argument("--guidance-scale", type=_finite, default=defaults.INPAINT_GUIDANCE,
                   help="classifier-free guidance scale")
    i.add_argument("--steps", type=_steps, default=str(defaults.STEPS), help="sampling steps, or a respacing")
    i.add_argument("--sampler", choices=SAMPLER_NAMES, default=defaults.SAMPLER, help="sampler")
    i.add_argument("--eta", type=_unit, default=0.0, help="DDIM noise, 0 to 1 (0 = deterministic)")
    _upsample_options(i, "edit at 256 px with the upsampler")
    i.add_argument("--composite", action="store_true", help="paste the result back into the original image")
    i.add_argument("--out", default="inpainted.png", help="output image (a grid with -n > 1)")
    _common(i)
    _interval_option(i, inpaint=True)
    i.set_defaults(func=cmd_inpaint)

    e = sub.add_parser("sdedit", help="turn a rough image or sketch into one that follows a prompt (SDEdit)")
    e.add_argument("image", help="the image or sketch to start from")
    e.add_argument("prompt", help="what the result should show")
    e.add_argument("--strength", type=_finite, default=0.5,
                   help="how far to move from the image: 0 keeps it, 1 ignores it (noise it to strength x the steps)")
    e.add_argument("--mask", help="optional mask image: WHITE = may change, black = kept exactly")
    e.add_argument("--model", default=None, help="base model folder (default: the bundled one)")
    e.add_argument("-n", "--num-images", type=_positive_int, default=1, help="edits to make")
    e.add_argument("--guidance-scale", type=_finite, default=defaults.GUIDANCE, help="classifier-free guidance scale")
    e.add_argument("--steps", type=_steps, default=None,
                   help=f"steps of the whole schedule, of which the edit runs the last strength x steps "
                        f"(default {defaults.STEPS}; {defaults.CLIP_STEPS} with CLIP guidance)")
    e.add_argument("--sampler", choices=SAMPLER_NAMES, default=None,
                   help=f"sampler (default {defaults.SAMPLER}; {defaults.CLIP_SAMPLER} with CLIP guidance)")
    e.add_argument("--eta", type=_unit, default=0.0, help="DDIM noise, 0 to 1 (0 = deterministic)")
    _clip_options(e)
    _upsample_options(e, "run the 64 -> 256 upsampler on the results")
    e.add_argument("--out", default="sdedit.png", help="output image (a grid with -n > 1)")
    _common(e)
    _interval_option(e)
    e.set_defaults(func=cmd_sdedit)

    u = sub.add_parser("upsample", help="64 -> 256 text-conditional upsampling")
    u.add_argument("images", nargs="+", metavar="IMAGE", help="64 px image(s)")
    u.add_argument("prompt", help="their caption")
    u.add_argument("--model", default=None, help="upsampler model folder (default: the bundled one)")
    u.add_argument("--steps", type=_steps, default=defaults.UPSAMPLE_STEPS, help="sampling steps, or a respacing")
    u.add_argument("--sampler", choices=["ddpm", "ddim"], default=defaults.UPSAMPLE_SAMPLER, help="sampler")
    u.add_argument("--temperature", type=_finite, default=defaults.UPSAMPLE_TEMPERATURE,
                   help="scale of the initial noise")
    u.add_argument("--no-consistency", action="store_true",
                   help=_NO_CONSISTENCY)
    u.add_argument("--out", default="upsampled.png", help="output image (a grid with several inputs)")
    _common(u)
    u.set_defaults(func=cmd_upsample)
