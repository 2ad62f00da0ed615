"""`glide data`: the dataset builders (emoji) and the policy filter."""

from __future__ import annotations


def register(sub) -> None:
    """glide data emoji and glide data filter."""
    d = sub.add_parser("data", help="build datasets")
    dsub = d.add_subparsers(dest="dataset", required=True)
    em = dsub.add_parser("emoji", help="the emoji artwork dataset (Twemoji, OpenMoji, Noto) with CLDR captions")
    from ..data import emoji

    emoji.add_arguments(em)
    em.set_defaults(func=emoji.run)
    from ..data import filter as data_filter

    fi = dsub.add_parser("filter", help="drop the images a policy names (caption, metadata and CLIP rules)")
    data_filter.add_arguments(fi)
    fi.set_defaults(func=data_filter.run)
