"""The emoji dataset's styles, splits and captions: what an item is called and where it belongs.

Splits are a stable hash of the emoji (see `split_of`): 5% of emoji are held out in every style, and a
further 5% of (emoji, style) pairs are held out so we can test style transfer to seen emoji.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


# Pinned package versions (checked with `npm view`); bump deliberately, the splits do not depend on them.
NPM_PACKAGES = {
    "twemoji": ("@twemoji/svg", "15.0.0"),
    "openmoji": ("openmoji", "17.0.0"),
    "emojibase": ("emojibase-data", "17.0.0"),
}


NOTO_FONTS = ["/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", "/usr/share/fonts/noto/NotoColorEmoji.ttf"]


NOTO_PX = 109  # CBDT bitmap strikes exist only at this size; FreeType refuses any other


OPENCLIPART_DIRS = ["/usr/share/openclipart/svg", "/usr/share/openclipart"]


HELDOUT_EMOJI = 0.05


HELDOUT_PAIR = 0.05


SPLITS = ("train", "heldout_pair", "heldout_emoji")


@dataclass(frozen=True)
class Style:
    name: str
    phrase: str  # how captions name the style
    source: str
    license: str
    attribution: str
    max_size: int | None = None  # bitmap sources are never upscaled past this


STYLES = {s.name: s for s in [
    Style("twemoji", "twemoji style", f"npm @twemoji/svg {NPM_PACKAGES['twemoji'][1]}",
          "CC-BY-4.0", "Twemoji by Twitter, Inc and other contributors"),
    Style("openmoji", "openmoji style", f"npm openmoji {NPM_PACKAGES['openmoji'][1]} (color/svg)",
          "CC-BY-SA-4.0", "OpenMoji, the open-source emoji and icon project"),
    Style("openmoji-line", "openmoji line art", f"npm openmoji {NPM_PACKAGES['openmoji'][1]} (black/svg)",
          "CC-BY-SA-4.0", "OpenMoji, the open-source emoji and icon project"),
    Style("noto", "noto emoji style", "Debian fonts-noto-color-emoji (NotoColorEmoji.ttf)",
          "Apache-2.0", "Noto Color Emoji by Google", max_size=64),
    Style("openclipart", "clip art", "Debian openclipart-svg",
          "public domain", "Open Clip Art Library contributors"),
]}


DEFAULT_STYLES = ("twemoji", "openmoji", "openmoji-line", "noto")


def _unit(key: str) -> float:
    """A stable number in [0, 1) from a string (sha256, so it never changes between runs or machines)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def split_of(emoji_id: str, style: str) -> str:
    """'heldout_emoji', 'heldout_pair' or 'train' for an emoji identity (base hexcode) drawn in a style.

    An identity is held out in every style when unit("identity/ID") < 0.05; otherwise the pair is held
    out when unit("pair/ID/STYLE") < 0.05. ID is the base emoji's hexcode, uppercased (skin-tone variants
    use their base's, so no variant of a held-out emoji leaks into training).
    """
    eid = emoji_id.strip().upper()
    if _unit(f"identity/{eid}") < HELDOUT_EMOJI:
        return "heldout_emoji"
    if _unit(f"pair/{eid}/{style}") < HELDOUT_PAIR:
        return "heldout_pair"
    return "train"


def caption_label(label: str) -> str:
    """CLDR label -> caption text: 'flag: Japan' -> 'flag of Japan', 'man: red hair' -> 'man, red hair'."""
    label = " ".join(label.split())
    if label.startswith("flag: "):
        return "flag of " + label[len("flag: "):]
    if label.startswith("keycap: "):
        return "keycap " + label[len("keycap: "):]
    return label.replace(": ", ", ")


def make_captions(label: str, tags: list[str], style: str, max_tags: int = 3) -> tuple[str, list[str]]:
    """The canonical caption '{label}, {style phrase}' and alternatives the trainer may sample from.

    Every caption names the style, so the style stays controllable. Tags already in the label are
    dropped; the rest are taken in a hash order (not alphabetical) so the choice is varied but fixed.
    """
    phrase, text = STYLES[style].phrase, caption_label(label)
    caption = f"{text}, {phrase}"
    alts = [f"{phrase}: {text}"]
    if style != "openclipart":
        alts.append(f"{text} emoji, {phrase}")
    words = set(re.findall(r"[\w']+", text.lower()))
    extra = [t for t in dict.fromkeys(t.strip() for t in tags) if t and t.lower() not in words]
    extra.sort(key=lambda t: _unit(f"tag/{label}/{t}"))
    alts += [f"{text}, {t}, {phrase}" for t in extra[:max_tags]]
    return caption, alts
