"""`glide compose`: build a picture from a scene script and save every stage (glide/compose.py)."""

from __future__ import annotations

from .args import DTYPE_CHOICES, DTYPE_HELP


def cmd_compose(args) -> int:
    from ..compose import compose

    compose(args.scene, args.out, model=args.model, upsampler=args.upsampler, device=args.device, dtype=args.dtype,
            progress=not args.quiet)
    return 0


def register(sub) -> None:
    """glide compose."""
    cs = sub.add_parser("compose", help="build a picture by a scene script (generate, inpaint, sdedit, upsample) "
                                        "and save every stage; replays bit for bit")
    cs.add_argument("scene", help="the scene script (TOML; see docs/editing.md)")
    cs.add_argument("--out", required=True, help="folder for the stages (00-generate.png, ...) and the resolved script")
    cs.add_argument("--model", default=None, help="base model folder (default: the script's, else the bundled one)")
    cs.add_argument("--upsampler", default=None, help="upsampler folder (default: the script's, else the bundled one)")
    cs.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available, else cpu)")
    cs.add_argument("--dtype", choices=DTYPE_CHOICES, default=None, help=DTYPE_HELP)
    cs.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    cs.set_defaults(func=cmd_compose)
