"""`glide convert` (an official checkpoint -> a model folder) and `glide export` (a training run -> a model
folder)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import GlideError
from .args import WEIGHT_DTYPES, _positive


def cmd_convert(args) -> int:
    from ..checkpoint import check_output_folder

    check_output_folder(args.out, args.force)  # before reading a multi-GB checkpoint
    if args.kind == "clip":
        if len(args.checkpoint) != 2:
            raise GlideError("--kind clip takes two files: clip_image_enc.pt clip_text_enc.pt")
        from ..clip.io import convert_official_clip

        print(f"wrote {convert_official_clip(args.checkpoint[0], args.checkpoint[1], args.out, force=args.force)}")
        return 0
    if len(args.checkpoint) != 1:
        raise GlideError(f"--kind {args.kind} takes one checkpoint file")

    options = None
    if args.options:
        try:
            options = json.loads(Path(args.options).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GlideError(f"options file not found: {args.options}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GlideError(f"{args.options} is not valid JSON ({e})") from None
        except OSError as e:
            raise GlideError(f"cannot read {args.options}: {e.strerror}") from None
        if not isinstance(options, dict):
            raise GlideError(f"{args.options} must hold a JSON object of official hyperparameters")
    from ..official.convert import convert_official

    out = convert_official(args.checkpoint[0], args.kind, args.out, options, force=args.force)
    print(f"wrote {out}")
    return 0


def cmd_export(args) -> int:
    from ..runtime import DTYPES
    from ..training import export_run

    out = export_run(args.run_dir, args.out, raw=args.raw, step=args.step,
                     dtype=DTYPES[args.dtype] if args.dtype else None, max_shard_mb=args.max_shard_mb,
                     force=args.force)
    print(f"wrote {out}")
    return 0


def register(sub) -> None:
    """glide convert and glide export."""
    c = sub.add_parser("convert", help="convert an official GLIDE .pt checkpoint to a glide model folder")
    c.add_argument("checkpoint", nargs="+", help="OFFICIAL.pt (for --kind clip: clip_image_enc.pt clip_text_enc.pt)")
    c.add_argument("--kind", required=True, choices=["base", "upsample", "base-inpaint", "upsample-inpaint", "clip"],
                   help="which official model the checkpoint holds")
    c.add_argument("--options", help="JSON file of official hyperparameters, for checkpoints of another size")
    c.add_argument("--out", required=True, help="output model folder (replaced only if it is a model folder)")
    c.add_argument("--force", action="store_true", help="replace --out even if it is another, non-empty folder")
    c.set_defaults(func=cmd_convert)

    e = sub.add_parser("export", help="turn a training run's checkpoint into a model folder")
    e.add_argument("run_dir", help="the run folder (glide train --out)")
    e.add_argument("--out", required=True, help="output model folder (replaced only if it is a model folder)")
    e.add_argument("--force", action="store_true", help="replace --out even if it is another, non-empty folder")
    e.add_argument("--raw", action="store_true", help="export the online weights instead of the EMA")
    e.add_argument("--step", type=int, default=None, help="a specific checkpoint step (default: latest)")
    e.add_argument("--dtype", choices=WEIGHT_DTYPES, default=None, help="cast the weights (default: keep fp32)")
    e.add_argument("--max-shard-mb", type=_positive, default=None,
                   help="split the weights into files of at most this size (default: one file)")
    e.set_defaults(func=cmd_export)
