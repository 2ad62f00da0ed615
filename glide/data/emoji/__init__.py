"""Build an image-caption dataset of emoji artwork: `glide data emoji --out DIR`.

The same ~1,900 CLDR emoji (plus their skin-tone variants) drawn by several independent artists:

- Twemoji (npm `@twemoji/svg`), CC-BY 4.0;
- OpenMoji colour and OpenMoji black line art (npm `openmoji`), CC-BY-SA 4.0;
- Noto Color Emoji (Debian `fonts-noto-color-emoji`, a bitmap font: 64 px only), when installed;
- optionally public-domain clip art (Debian `openclipart-svg`), when asked for and installed.

Names and tags come from CLDR via npm `emojibase-data`. npm is needed only to fetch the packages
(cached in `work_dir`); SVGs are rendered with `resvg-py`. Captions read "red apple, twemoji style".

One concern per module: styles, splits and captions (`captions`); fetching npm packages (`npm`); what to
draw (`sources`); rendering and its worker processes (`render`); the build (`build`); the README it writes
(`readme`). The array files are read and written by glide.data.arrays; the options live in glide.cli.data.
"""

from .build import build_emoji_dataset, contact_sheet
from .captions import DEFAULT_STYLES, SPLITS, STYLES, Style, caption_label, make_captions, split_of
from .npm import default_work_dir, fetch_npm, safe_extract
from .render import render_noto, render_svg
from .sources import Item, cldr_groups, emoji_items, load_emojibase, openclipart_items, twemoji_names

__all__ = ["build_emoji_dataset", "contact_sheet", "DEFAULT_STYLES", "SPLITS", "STYLES", "Style", "caption_label",
           "make_captions", "split_of", "default_work_dir", "fetch_npm", "safe_extract", "render_noto", "render_svg",
           "Item", "cldr_groups", "emoji_items", "load_emojibase", "openclipart_items", "twemoji_names"]
