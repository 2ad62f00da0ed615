"""Pack an emoji `.npz` into the smallest form that travels to a device machine, and unpack it there.

The device call carries at most 64 MiB, and the bundled base (47 MB) must travel beside its training data.
`emoji_64.npz` is 21.5 MB with every split (zlib); its train split as raw uint8 under xz (LZMA) is about
12.5 MB, since the art is flat colour on white. Only the train split travels: held-out images are never
trained on.

    python scripts/pack_train_data.py pack data/emoji/emoji_64.npz .gpu/train/data     # here
    python scripts/pack_train_data.py unpack .gpu/train/data /tmp/work/emoji_64.npz    # there (about 1 s)
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import sys
from pathlib import Path

import numpy as np


def missing_styles(captions: list[str]) -> list[str]:
    """The default art styles of `glide data emoji` that no caption names. A build on a machine without the Noto
    font leaves its style out, and the bundled base, trained on all four, would unlearn it on such data."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from glide.data.emoji.captions import DEFAULT_STYLES, STYLES

    named = {c.rsplit(", ", 1)[-1] for c in captions}
    return [s for s in DEFAULT_STYLES if STYLES[s].phrase not in named]


def pack(src: Path, out: Path, limit: int = 0, allow_missing_styles: bool = False) -> None:
    with np.load(src, allow_pickle=False) as z:
        split = [str(s) for s in z["split"]] if "split" in z.files else ["train"] * len(z["captions"])
        train = [i for i, s in enumerate(split) if s == "train"]
        if not allow_missing_styles:
            missing = missing_styles([str(z["captions"][i]) for i in train])
            if missing:
                sys.exit(f"error: {src} has no images of the style(s) {', '.join(missing)}, which the bundled base "
                         "was trained on (noto: apt-get install fonts-noto-color-emoji, then glide data emoji "
                         "again); --allow-missing-styles packs it anyway")
        keep = train[: limit or None]
        images = np.ascontiguousarray(z["images"][keep])
        captions = [str(z["captions"][i]) for i in keep]
        alt_all = json.loads(str(z["captions_alt"])) if "captions_alt" in z.files else None
    alt = [alt_all[i] for i in keep] if alt_all else [[] for _ in keep]
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    with lzma.open(tmp / "images.u8.xz", "wb", preset=6) as f:
        f.write(images.tobytes())
    with lzma.open(tmp / "meta.json.xz", "wt", encoding="utf-8") as f:
        json.dump({"shape": list(images.shape), "captions": captions, "captions_alt": alt}, f)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    os.replace(tmp, out)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"packed {len(keep)} train images {tuple(images.shape[1:])} into {out}: {size / 2**20:.1f} MiB")


def unpack(src: Path, out: Path) -> None:
    with lzma.open(src / "meta.json.xz", "rt", encoding="utf-8") as f:
        meta = json.load(f)
    with lzma.open(src / "images.u8.xz", "rb") as f:
        images = np.frombuffer(f.read(), np.uint8).reshape(meta["shape"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez(tmp, images=images, captions=np.array(meta["captions"]), captions_alt=json.dumps(meta["captions_alt"]),
             split=np.array(["train"] * len(images)))
    os.replace(tmp, out)
    print(f"unpacked {len(images)} images into {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("npz", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--limit", type=int, default=0, help="keep only the first N train images (dry runs)")
    a.add_argument("--allow-missing-styles", action="store_true",
                   help="pack data that lacks one of the default art styles (the check needs the project's venv)")
    b = sub.add_parser("unpack")
    b.add_argument("packed", type=Path)
    b.add_argument("out", type=Path)
    args = p.parse_args()
    if args.cmd == "pack":
        if not args.npz.is_file():
            sys.exit(f"error: {args.npz} not found (build it with: glide data emoji --out data/emoji)")
        pack(args.npz, args.out, args.limit, args.allow_missing_styles)
    else:
        unpack(args.packed, args.out)


if __name__ == "__main__":
    main()
