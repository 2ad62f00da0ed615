"""`glide serve` (the local web page) and `glide rate` (blind pairwise human evaluation)."""

from __future__ import annotations

import warnings

from ..errors import GlideError
from .args import DTYPE_CHOICES, DTYPE_HELP, _port, _positive, _positive_int
from .common import _check_device


def cmd_serve(args) -> int:
    _check_device(args.device)
    from ..checkpoint import read_prompts
    from ..loading import resolve_model
    from ..pipeline import Pipeline, default_model

    try:
        from ..web.app import launch
    except ImportError as e:
        raise GlideError(f"the web page needs Gradio ({e}): pip install -e '.[web]' in a glide checkout") from None
    from ..web.studio import Limits, Studio

    upsampler = None if args.no_upsampler else (args.upsampler or default_model("upsampler"))
    clip = None if args.no_clip else (args.clip_model or default_model("clip"))
    folder = resolve_model(args.model or "bundled:base")  # once: for the weights and the example captions
    pipe = Pipeline.from_pretrained(folder, device=args.device, dtype=args.dtype, upsampler=upsampler, clip=clip)
    if pipe.cfg.super_res:
        raise GlideError(f"{args.model} is an upsampler; the page needs a base (64 px) model (--model)")
    studio = Studio(pipe, Limits(max_upload_mb=args.max_upload_mb), model=args.model or "bundled:base",
                    prompts=read_prompts(folder))
    warnings.simplefilter("ignore", ResourceWarning)  # the web server's event loops; not actionable
    warnings.filterwarnings("ignore", module=r"gradio(\..*)?$")  # its own deprecation notices
    launch(studio, host=args.host, port=args.port, concurrency=args.concurrency, queue_size=args.queue_size)
    return 0


def register(sub) -> None:
    """glide rate and glide serve."""
    from ..rate import report as rate

    rate.add_arguments(sub.add_parser("rate", help="blind pairwise human evaluation: serve a voting page, report "
                                                   "win rates and Elo"))

    w = sub.add_parser("serve", help="start the local web page (needs the web extra: pip install -e '.[web]')")
    w.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    w.add_argument("--port", type=_port, default=7860, help="port")
    w.add_argument("--model", default=None, help="base model folder (default: the bundled one)")
    w.add_argument("--upsampler", default=None, help="upsampler folder (default: the bundled one)")
    w.add_argument("--no-upsampler", action="store_true", help="no 256 px upsampling")
    w.add_argument("--clip-model", default=None, help="noised CLIP folder for CLIP guidance (default: the bundled one)")
    w.add_argument("--no-clip", action="store_true", help="no CLIP guidance")
    w.add_argument("--concurrency", type=_positive_int, default=1, help="jobs sampling at once")
    w.add_argument("--queue-size", type=_positive_int, default=64, help="jobs that may wait in line")
    w.add_argument("--max-upload-mb", type=_positive, default=8.0, help="largest upload accepted")
    w.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")
    w.add_argument("--dtype", choices=DTYPE_CHOICES, default=None, help=DTYPE_HELP)
    w.set_defaults(func=cmd_serve)
