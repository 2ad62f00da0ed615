"""`glide data`: the dataset builders (emoji) and the policy filter."""

from __future__ import annotations

from .args import _positive_int


def add_emoji_arguments(parser) -> None:
    """Options of `glide data emoji`."""
    from ..data.emoji import DEFAULT_STYLES, STYLES, default_work_dir

    parser.add_argument("--out", required=True, help="output folder (built beside it, then renamed into place)")
    parser.add_argument("--size", type=_positive_int, action="append", dest="sizes",
                        help="image size in pixels; repeat for several (default 64)")
    parser.add_argument("--styles", nargs="+", choices=list(STYLES), default=None,
                        help=f"styles to build (default: {' '.join(DEFAULT_STYLES)})")
    parser.add_argument("--no-noto", action="store_true", help="leave out Noto Color Emoji")
    parser.add_argument("--openclipart", action="store_true",
                        help="add public-domain clip art (Debian openclipart-svg)")
    parser.add_argument("--no-skin-tones", action="store_true", help="leave out the skin-tone variants")
    parser.add_argument("--work-dir", default=None, help=f"download cache (default {default_work_dir()})")
    parser.add_argument("--workers", type=_positive_int, default=2, help="rendering processes (default 2)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def cmd_emoji(args) -> int:
    """Build from parsed arguments and print a short summary."""
    from ..data.emoji import build_emoji_dataset

    summary = build_emoji_dataset(args.out, sizes=args.sizes or (64,), styles=args.styles, work_dir=args.work_dir,
                                  progress=not args.quiet, include_noto=not args.no_noto,
                                  include_openclipart=args.openclipart, skin_tones=not args.no_skin_tones,
                                  workers=args.workers)
    for size in summary["sizes"]:
        mib = summary["npz_bytes"][size] / 2**20
        print(f"{size} px: {summary['images'][size]} images, emoji_{size}.npz {mib:.1f} MiB")
        for style, c in summary["counts"][size].items():
            print(f"  {style:14s} " + "  ".join(f"{k} {v}" for k, v in c.items()))
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"wrote {summary['out']} in {summary['seconds']:.0f} s")
    return 0


def add_filter_arguments(parser) -> None:
    """Options of `glide data filter`."""
    parser.add_argument("data", help="a folder of images, a dataset folder, a .jsonl manifest, an .npz file, "
                                     "or WebDataset .tar shards (a glob or a folder of them)")
    parser.add_argument("--policy", required=True, help="policy TOML: [[rule]] tables (see configs/filter/emoji.toml)")
    parser.add_argument("--out", required=True, help="new folder for the kept set (same format as the input)")
    parser.add_argument("--report", default=None, help="report folder (default: OUT-report beside OUT)")
    parser.add_argument("--device", default="cpu", help="device for CLIP rules (default cpu)")
    parser.add_argument("--background", default="white", help="colour transparent images are composited on")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def cmd_filter(args) -> int:
    from ..data.filter import filter_data

    s = filter_data(args.data, args.policy, args.out, args.report, args.device, args.background, not args.quiet)
    print(f"policy {s['policy']} (sha256 {s['policy_sha256'][:16]}...): kept {s['kept']} of {s['total']}, "
          f"removed {s['removed']}")
    for name, row in s["rules"].items():
        extra = ""
        if "labels" in row:
            extra = f"  precision {row['labels']['precision']}  recall {row['labels']['recall']}"
        print(f"  {name:24s} removed {row['removed']:6d}  (only this rule {row['removed_only_by_this']}){extra}")
    print(f"wrote {s['out']} and {s['report']}")
    return 0


def register(sub) -> None:
    """glide data emoji and glide data filter."""
    d = sub.add_parser("data", help="build datasets")
    dsub = d.add_subparsers(dest="dataset", required=True)
    em = dsub.add_parser("emoji", help="the emoji artwork dataset (Twemoji, OpenMoji, Noto) with CLDR captions")
    add_emoji_arguments(em)
    em.set_defaults(func=cmd_emoji)
    fi = dsub.add_parser("filter", help="drop the images a policy names (caption, metadata and CLIP rules)")
    add_filter_arguments(fi)
    fi.set_defaults(func=cmd_filter)
