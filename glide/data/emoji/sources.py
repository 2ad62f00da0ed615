"""What to draw: one Item per (emoji, style) from CLDR (emojibase) and the artwork packages, or per clip-art file."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .captions import NPM_PACKAGES
from .npm import default_work_dir, fetch_npm


@dataclass
class Item:
    emoji: str  # identity for the split: the base emoji's hexcode (skin-tone variants share it)
    hexcode: str  # what is drawn (also the file name)
    label: str
    tags: list[str]
    style: str
    src: str  # an SVG file, or for Noto the emoji text itself
    caption: str = ""
    captions_alt: list[str] = field(default_factory=list)
    split: str = ""


def load_emojibase(root: Path, skin_tones: bool = True) -> list[dict]:
    """CLDR emoji (no components or regional indicators), each skin-tone variant after its base.

    Skin-tone variants are kept by default: they are real, distinct artwork with their own CLDR label
    ("waving hand: medium skin tone"), and keying the split on the base keeps identities clean.
    """
    out = []
    for e in json.loads((root / "en" / "data.json").read_text(encoding="utf-8")):
        if e.get("group") in (None, 2):  # regional indicator letters, skin/hair components
            continue
        tags = e.get("tags", [])
        out.append({"hexcode": e["hexcode"], "base": e["hexcode"], "label": e["label"], "tags": tags,
                    "emoji": e["emoji"]})
        for s in e.get("skins", []) if skin_tones else []:
            out.append({"hexcode": s["hexcode"], "base": e["hexcode"], "label": s["label"], "tags": tags,
                        "emoji": s["emoji"]})
    return out


_CLDR: dict[str, tuple[str, str]] = {}


def cldr_groups(work_dir: str | os.PathLike | None = None) -> dict[str, tuple[str, str]]:
    """hexcode (upper case; skin-tone variants too) -> (CLDR group, subgroup), e.g. ('people-body', 'person').

    Built datasets do not store the groups; this reads them from the cached emojibase package (fetched
    with npm on first use), for filtering by group (glide data filter).
    """
    if not _CLDR:
        root = fetch_npm(*NPM_PACKAGES["emojibase"], Path(work_dir).expanduser() if work_dir else default_work_dir())
        meta = json.loads((root / "meta" / "groups.json").read_text(encoding="utf-8"))
        for e in json.loads((root / "en" / "data.json").read_text(encoding="utf-8")):
            if e.get("group") is None:
                continue
            names = (meta["groups"][str(e["group"])], meta["subgroups"].get(str(e.get("subgroup")), ""))
            for h in [e["hexcode"], *(s["hexcode"] for s in e.get("skins", []))]:
                _CLDR[h.upper()] = names
    return _CLDR


def twemoji_names(hexcode: str) -> list[str]:
    """Twemoji file stems to try: lowercase, no leading zeros, FE0F kept or dropped ('00A9' -> 'a9')."""
    cps = [format(int(c, 16), "x") for c in hexcode.split("-")]
    names = ["-".join(cps), "-".join(c for c in cps if c != "fe0f")]
    return list(dict.fromkeys(names))


def emoji_items(emojis: list[dict], style: str, src_root: Path | None) -> list[Item]:
    items = []
    for e in emojis:
        if style == "twemoji":
            src = next((src_root / f"{n}.svg" for n in twemoji_names(e["hexcode"])
                        if (src_root / f"{n}.svg").is_file()), None)
        elif style in ("openmoji", "openmoji-line"):
            src = src_root / ("color" if style == "openmoji" else "black") / "svg" / f"{e['hexcode']}.svg"
            src = src if src.is_file() else None
        else:  # noto: draw the text; whether the font has it is only known when rendering
            src = e["emoji"]
        if src is not None:
            items.append(Item(e["base"], e["hexcode"], e["label"], e["tags"], style, str(src)))
    return items


_GENERIC_TITLE = re.compile(r"clipart by|collection|theme|icons?\b|iconset|svg|gramastar|various|cliparts|"
                            r"aiga|symbols?\b|sibmission|^untitled|^drawing|^image|^\W*$", re.IGNORECASE)


def openclipart_items(root: Path) -> list[Item]:
    """Clip art with a specific title (many files share a generic title like 'Lemon SVG theme'; skipped)."""
    import xml.etree.ElementTree as ET

    def local(tag) -> str:
        return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""

    found = []
    for p in sorted(root.rglob("*.svg")):
        if p.is_symlink():  # the package links the same file into several categories
            continue
        try:
            work = next((el for el in ET.parse(p).getroot().iter() if local(el.tag) == "Work"), None)
        except ET.ParseError:
            continue
        if work is None:
            continue
        title = next((c.text for c in work if local(c.tag) == "title"), "") or ""
        title = " ".join(re.sub(r"\([^)]*@[^)]*\)|[_-]+", " ", title).split())  # drop e-mail notes, '_'/'-'
        tags = [li.text.strip().replace("_", " ") for c in work if local(c.tag) == "subject"
                for li in c.iter() if local(li.tag) == "li" and li.text and li.text.strip()]
        found.append((p, title, [t for t in tags if t.lower() != "hash" and not t.startswith("0x")]))
    uses: dict[str, int] = {}
    for _, title, _ in found:
        uses[title.lower()] = uses.get(title.lower(), 0) + 1
    items = []
    for p, title, tags in found:
        if _GENERIC_TITLE.search(title) or uses[title.lower()] > 3:
            continue
        name = str(p.relative_to(root).with_suffix("")).replace(os.sep, "-")
        ident = f"openclipart-{name}"
        items.append(Item(ident, ident, title.lower(), tags, "openclipart", str(p)))
    return items


def image_path(size: int, item: Item) -> str:
    return f"images/{size}/{item.style}/{item.hexcode}.png"
