"""`glide info`: print the settings a glide PNG carries."""

from __future__ import annotations

import json

from ..errors import GlideError
from .common import PNG_KEY


def cmd_info(args) -> int:
    """Print the settings a glide PNG carries (what made it, and how to make it again)."""
    from PIL import Image, UnidentifiedImageError

    for n, path in enumerate(args.images):
        try:
            with Image.open(path) as im:
                im.load()  # reads the text chunks that follow the image data
                raw = getattr(im, "text", {}).get(PNG_KEY)
        except FileNotFoundError:
            raise GlideError(f"image not found: {path}") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise GlideError(f"cannot read {path}: {e}") from None
        if raw is None:
            raise GlideError(f"{path} carries no glide settings (only images written by glide sample, inpaint "
                             "and upsample do)")
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError:
            raise GlideError(f"{path}: its glide settings are not valid JSON") from None
        if len(args.images) > 1:
            print(f"{'' if n == 0 else chr(10)}{path}")
        if args.json:
            print(json.dumps(meta, indent=1, ensure_ascii=False))
        else:
            for key, value in meta.items():
                print(f"{key}: {value}")
    return 0


def register(sub) -> None:
    """glide info."""
    f = sub.add_parser("info", help="print the settings stored in an image written by glide (prompt, seed, ...)")
    f.add_argument("images", nargs="+", metavar="IMAGE", help="PNG file(s) written by glide sample/inpaint/upsample")
    f.add_argument("--json", action="store_true", help="print the settings as JSON")
    f.set_defaults(func=cmd_info)
