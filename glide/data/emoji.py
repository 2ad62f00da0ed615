"""Build an image-caption dataset of emoji artwork: `glide data emoji --out DIR`.

The same ~1,900 CLDR emoji (plus their skin-tone variants) drawn by several independent artists:

- Twemoji (npm `@twemoji/svg`), CC-BY 4.0;
- OpenMoji colour and OpenMoji black line art (npm `openmoji`), CC-BY-SA 4.0;
- Noto Color Emoji (Debian `fonts-noto-color-emoji`, a bitmap font: 64 px only), when installed;
- optionally public-domain clip art (Debian `openclipart-svg`), when asked for and installed.

Names and tags come from CLDR via npm `emojibase-data`. npm is needed only to fetch the packages
(cached in `work_dir`); SVGs are rendered with `resvg-py`. Captions read "red apple, twemoji style".

Splits are a stable hash of the emoji (see `split_of`): 5% of emoji are held out in every style,
and a further 5% of (emoji, style) pairs are held out so we can test style transfer to seen emoji.
Everything is built in a temporary folder beside `out` and renamed into place at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..errors import GlideError

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


# ---------------------------------------------------------------------------------------------------
# splits and captions


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


# ---------------------------------------------------------------------------------------------------
# fetching the npm packages


def safe_extract(tar_path: Path, dest: Path) -> None:
    """Extract a tarball, refusing absolute paths, '..' and links (an archive must not write outside dest)."""
    dest = Path(dest)
    with tarfile.open(tar_path) as tf:
        members = tf.getmembers()
        for m in members:
            parts = Path(m.name).parts
            if m.name.startswith(("/", "\\")) or Path(m.name).is_absolute() or ".." in parts:
                raise GlideError(f"refusing unsafe path {m.name!r} in {tar_path}")
            if not (m.isfile() or m.isdir()):
                raise GlideError(f"refusing link or special file {m.name!r} in {tar_path}")
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # belt and braces
        tf.extractall(dest, members=members, **kwargs)


def fetch_npm(package: str, version: str, work_dir: Path) -> Path:
    """The unpacked `package/` folder of an npm tarball, fetched once with `npm pack` and cached."""
    dest = work_dir / f"{package.replace('@', '').replace('/', '-')}-{version}"
    if dest.is_dir():  # only ever created by the rename below, so it is complete
        return dest
    npm = shutil.which("npm")
    if npm is None:
        raise GlideError("npm is needed once to download the emoji packages (Debian: apt-get install npm)")
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".fetch-") as tmp:
        r = subprocess.run([npm, "pack", f"{package}@{version}", "--pack-destination", tmp],
                           capture_output=True, text=True, check=False)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if r.returncode != 0 or len(tarballs) != 1:
            msg = (r.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise GlideError(f"npm pack {package}@{version} failed: {msg}")
        safe_extract(tarballs[0], Path(tmp) / "x")
        os.replace(Path(tmp) / "x" / "package", dest)
    return dest


# ---------------------------------------------------------------------------------------------------
# what to draw


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


# ---------------------------------------------------------------------------------------------------
# rendering


def _on_white(im: Image.Image, size: int) -> Image.Image:
    """RGBA of any shape -> RGB size x size, centered on white."""
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    canvas.alpha_composite(im.convert("RGBA"), ((size - im.width) // 2, (size - im.height) // 2))
    return canvas.convert("RGB")


def render_svg(svg: str, size: int) -> Image.Image:
    """An SVG string -> RGB size x size on white; aspect kept, centered."""
    import resvg_py

    # resvg scales to the given width keeping the aspect ratio; a tall drawing is redone by height.
    # System fonts are skipped so the output does not depend on the machine (emoji SVGs have no text);
    # dpi=96 is the CSS value, without which sizes in mm or inches (old clip art) are rejected as invalid.
    def draw(**fit):
        return Image.open(io.BytesIO(resvg_py.svg_to_bytes(svg_string=svg, dpi=96, skip_system_fonts=True, **fit)))

    im = draw(width=size)
    if im.height > size:
        im = draw(height=size)
    return _on_white(im, size)


def render_noto(font, text: str) -> Image.Image | None:
    """An emoji drawn with Noto Color Emoji -> RGB square (about 136 px) on white; None if not in the font.

    The glyph cell (not the ink) is centered, so relative sizes survive. A sequence the font lacks comes
    out as several glyphs side by side (or nothing), which we detect and skip.
    """
    from PIL import ImageDraw

    if font.getlength(text) > 1.5 * font.getlength("\U0001F600"):
        return None
    left, top, right, bottom = font.getbbox(text)
    side = max(right - left, bottom - top)
    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(im).text(((side - (right - left)) // 2 - left, (side - (bottom - top)) // 2 - top), text,
                            font=font, embedded_color=True)
    if im.getbbox() is None:
        return None
    return _on_white(im, side)


_worker: dict = {}


def _init_worker(tmp: str, sizes: list[int], noto_font: str | None) -> None:
    from PIL import ImageFont

    _worker.update(tmp=Path(tmp), sizes=sizes,
                   font=ImageFont.truetype(noto_font, NOTO_PX) if noto_font else None)


def sizes_for(style: str, sizes: list[int]) -> list[int]:
    limit = STYLES[style].max_size
    return [s for s in sizes if limit is None or s <= limit]


def _render_item(item: Item) -> dict[int, np.ndarray] | None:
    """Render one item at every size it allows, write its PNGs, and return the arrays (None on failure)."""
    sizes = sizes_for(item.style, _worker["sizes"])
    try:
        if item.style == "noto":
            big = render_noto(_worker["font"], item.src)
            if big is None:
                return None
            images = {s: big.resize((s, s), Image.LANCZOS) for s in sizes}
        else:
            svg = Path(item.src).read_text(encoding="utf-8")
            images = {s: render_svg(svg, s) for s in sizes}
    except (ValueError, OSError, UnicodeDecodeError):  # resvg raises ValueError on a bad SVG
        return None
    arrays = {s: np.asarray(im, dtype=np.uint8) for s, im in images.items()}
    if any(a.min() == 255 for a in arrays.values()):  # blank: nothing was drawn
        return None
    for s, im in images.items():
        path = _worker["tmp"] / image_path(s, item)
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path)
    return arrays


def image_path(size: int, item: Item) -> str:
    return f"images/{size}/{item.style}/{item.hexcode}.png"


# ---------------------------------------------------------------------------------------------------
# array files


def save_emoji_npz(path: Path, images: np.ndarray, rows: list[dict]) -> None:
    """Write images uint8 [N, S, S, 3] with their per-image strings (captions_alt as one JSON string)."""
    assert len(images) == len(rows), (len(images), len(rows))
    np.savez_compressed(
        path, images=images,
        captions=np.array([r["caption"] for r in rows], dtype=str),
        captions_alt=np.array(json.dumps([r["captions_alt"] for r in rows], ensure_ascii=False)),
        **{k: np.array([r[k] for r in rows], dtype=str) for k in ("split", "style", "emoji", "hexcode", "label")})


def load_emoji_npz(path: str | os.PathLike) -> dict:
    """An `emoji_{size}.npz` -> {'images': uint8 [N, S, S, 3], 'captions': [...], 'captions_alt': [[...]],
    'split', 'style', 'emoji' (base hexcode), 'hexcode', 'label': lists of str, 'size': S}."""
    with np.load(path, allow_pickle=False) as z:
        out = {k: [str(v) for v in z[k]] for k in ("captions", "split", "style", "emoji", "hexcode", "label")
               if k in z.files}
        out["images"] = z["images"]
        out["captions_alt"] = json.loads(str(z["captions_alt"])) if "captions_alt" in z.files else []
    out["size"] = int(out["images"].shape[1])
    return out


# ---------------------------------------------------------------------------------------------------
# the build


def default_work_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "glide" / "emoji-src"


def find_noto() -> str | None:
    return next((p for p in NOTO_FONTS if Path(p).is_file()), None)


def find_openclipart() -> Path | None:
    return next((Path(p) for p in OPENCLIPART_DIRS if Path(p).is_dir() and any(Path(p).rglob("*.svg"))), None)


def _check_out(out: Path) -> None:
    """`out` may be missing, empty, or a previous build (replaced); anything else is refused."""
    if out.exists() and not out.is_dir():
        raise GlideError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.jsonl").is_file():
        raise GlideError(f"{out} is not empty and is not an emoji dataset; choose another --out")


def _install(tmp: Path, out: Path) -> None:
    """Move the finished build into place; a previous build is swapped out and only then deleted."""
    _check_out(out)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _resolve_styles(styles, include_noto: bool, include_openclipart: bool) -> list[str]:
    chosen = list(dict.fromkeys(styles or DEFAULT_STYLES))
    unknown = [s for s in chosen if s not in STYLES]
    if unknown:
        raise GlideError(f"unknown style(s) {unknown}; choose from {list(STYLES)}")
    if not include_noto:
        chosen = [s for s in chosen if s != "noto"]
    if include_openclipart and "openclipart" not in chosen:
        chosen.append("openclipart")
    if not chosen:
        raise GlideError("no styles left to build")
    return chosen


def build_emoji_dataset(out: str | os.PathLike, sizes=(64,), styles=None, work_dir=None, progress: bool = True,
                        include_noto: bool = True, include_openclipart: bool = False, skin_tones: bool = True,
                        workers: int = 2) -> dict:
    """Fetch, render and write the dataset into `out`; returns a summary (counts per size/style/split)."""
    t0 = time.time()
    out = Path(out).expanduser().resolve()
    sizes = sorted({int(s) for s in sizes})
    if not sizes or sizes[0] <= 0:
        raise GlideError(f"sizes must be positive integers, got {sizes}")
    styles = _resolve_styles(styles, include_noto, include_openclipart)
    work_dir = Path(work_dir).expanduser() if work_dir else default_work_dir()
    _check_out(out)
    if any(s != "noto" for s in styles):
        try:
            import resvg_py  # noqa: F401
        except ImportError:
            raise GlideError("rendering SVGs needs the resvg-py package: pip install resvg-py") from None
    notes = []

    # Sources. Noto and clip art are optional system packages: skip them with a note, never fail.
    noto_font = find_noto() if "noto" in styles else None
    if "noto" in styles and noto_font is None:
        notes.append("Noto Color Emoji font not found (Debian: apt-get install fonts-noto-color-emoji); "
                     "skipped the noto style")
        styles.remove("noto")
    if "noto" in styles and min(sizes) > STYLES["noto"].max_size:
        notes.append("noto is a 136 px bitmap font, built at 64 px or less only; skipped at these sizes")
        styles.remove("noto")
    clipart_root = find_openclipart() if "openclipart" in styles else None
    if "openclipart" in styles and clipart_root is None:
        notes.append("openclipart-svg not found (Debian: apt-get install openclipart-svg); skipped clip art")
        styles.remove("openclipart")
    if not styles:
        raise GlideError("none of the requested styles is available: " + "; ".join(notes))

    emoji_styles = [s for s in styles if s != "openclipart"]
    needed = (["emojibase"] if emoji_styles else []) + [
        k for k in ("twemoji", "openmoji") if any(s.startswith(k) for s in emoji_styles)]
    roots = {k: fetch_npm(*NPM_PACKAGES[k], work_dir)
             for k in tqdm(needed, desc="fetch packages", disable=not progress)}
    emojis = load_emojibase(roots["emojibase"], skin_tones) if "emojibase" in roots else []

    items: list[Item] = []
    for style in styles:
        if style == "openclipart":
            items += openclipart_items(clipart_root)
        else:
            items += emoji_items(emojis, style, roots.get("openmoji" if style.startswith("openmoji") else style))
    missing = {s: len(emojis) - sum(it.style == s for it in items) for s in styles if s != "openclipart"}
    for it in items:
        it.caption, it.captions_alt = make_captions(it.label, it.tags, it.style)
        it.split = split_of(it.emoji, it.style)

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the dataset should not be
    except OSError as e:
        raise GlideError(f"cannot write next to {out}: {e.strerror or e}") from None
    try:
        summary = _build(tmp, out, items, sizes, noto_font, progress, workers)
        summary.update(notes=notes, styles=styles, sources={s: STYLES[s].source for s in styles},
                       missing={s: n for s, n in missing.items() if n}, emoji_total=len(emojis))
        _write_readme(tmp, summary)
        summary["seconds"] = round(time.time() - t0, 1)
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary["files"] = [str(out / name) for name in summary["files"]]
    return summary


def _build(tmp: Path, out: Path, items: list[Item], sizes: list[int], noto_font: str | None,
           progress: bool, workers: int) -> dict:
    """Render everything into `tmp`: PNGs, one array file per size, the manifest and a contact sheet."""
    # Preallocated on-disk arrays, so 256 px (about 3 GB raw) never has to sit in memory.
    arrays = {}
    for s in sizes:
        n = sum(s in sizes_for(it.style, sizes) for it in items)
        arrays[s] = np.lib.format.open_memmap(tmp / f".images_{s}.npy", mode="w+", dtype=np.uint8,
                                              shape=(max(n, 1), s, s, 3))
    rows: dict[int, list[dict]] = {s: [] for s in sizes}
    skipped: dict[str, int] = {}
    duplicates: dict[str, int] = {}
    base_digest: dict[tuple[str, str], bytes] = {}
    with Pool(workers, _init_worker, (str(tmp), sizes, noto_font)) as pool:
        results = pool.imap(_render_item, items, chunksize=8)  # ordered: a base comes before its variants
        for it, result in zip(items, tqdm(results, total=len(items), desc="render", disable=not progress)):
            if result is None:
                skipped[it.style] = skipped.get(it.style, 0) + 1
                continue
            # A skin-tone variant drawn exactly like its base (the artwork shows no skin) would get a
            # caption naming a skin tone that is not there: drop it.
            digest = hashlib.sha256(next(iter(result.values())).tobytes()).digest()
            if it.hexcode == it.emoji:
                base_digest[it.style, it.emoji] = digest
            elif base_digest.get((it.style, it.emoji)) == digest:
                duplicates[it.style] = duplicates.get(it.style, 0) + 1
                for s in result:
                    (tmp / image_path(s, it)).unlink()
                continue
            for s, a in result.items():
                arrays[s][len(rows[s])] = a
                rows[s].append({
                    "image": image_path(s, it), "caption": it.caption, "captions_alt": it.captions_alt,
                    "emoji": it.emoji, "hexcode": it.hexcode, "label": it.label, "style": it.style,
                    "source": STYLES[it.style].source, "license": STYLES[it.style].license,
                    "attribution": STYLES[it.style].attribution, "split": it.split, "size": s})

    with open(tmp / "manifest.jsonl", "w", encoding="utf-8") as f:
        for s in sizes:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[s])
    files = ["manifest.jsonl", "README.md"]
    for s in tqdm(sizes, desc="write arrays", disable=not progress):
        save_emoji_npz(tmp / f"emoji_{s}.npz", arrays[s][:len(rows[s])], rows[s])
        files.append(f"emoji_{s}.npz")
    sheet_size = min(sizes, key=lambda s: abs(s - 64))
    sheet = contact_sheet(arrays[sheet_size][:len(rows[sheet_size])], rows[sheet_size])
    if sheet is not None:
        sheet.save(tmp / "contact_sheet.png")
        files.append("contact_sheet.png")
    for s in sizes:
        del arrays[s]  # close the memmap before deleting its file
        (tmp / f".images_{s}.npy").unlink()

    counts = {s: {} for s in sizes}
    for s in sizes:
        for r in rows[s]:
            by_split = counts[s].setdefault(r["style"], dict.fromkeys(SPLITS, 0))
            by_split[r["split"]] += 1
    npz_bytes = {s: os.path.getsize(tmp / f"emoji_{s}.npz") for s in sizes}
    return {"out": str(out), "sizes": sizes, "counts": counts, "images": {s: len(rows[s]) for s in sizes},
            "skipped": skipped, "duplicates": duplicates, "npz_bytes": npz_bytes, "files": files}


def contact_sheet(images: np.ndarray, rows: list[dict], n: int = 48, cols: int = 8, seed: int = 0):
    """A grid of `n` random training images (fixed seed), or None if there are none."""
    train = [i for i, r in enumerate(rows) if r["split"] == "train"]
    if not train:
        return None
    pick = sorted(random.Random(seed).sample(train, min(n, len(train))))
    s, pad = images.shape[1], 2
    rows_n = -(-len(pick) // cols)
    sheet = Image.new("RGB", (cols * (s + pad) + pad, rows_n * (s + pad) + pad), (128, 128, 128))
    for k, i in enumerate(pick):
        r, c = divmod(k, cols)
        sheet.paste(Image.fromarray(np.asarray(images[i])), (pad + c * (s + pad), pad + r * (s + pad)))
    return sheet


def _write_readme(tmp: Path, summary: dict) -> None:
    lines = ["# Emoji artwork dataset", "",
             "Built by `glide data emoji`. One image per (emoji, style); captions name the style,",
             'e.g. "red apple, twemoji style". Names and tags: CLDR, from npm',
             f"emojibase-data {NPM_PACKAGES['emojibase'][1]}.", "",
             "## Sources, licenses and attribution", "",
             "| style | source | license | attribution |", "|---|---|---|---|"]
    for s in summary["styles"]:
        st = STYLES[s]
        lines.append(f"| {s} | {st.source} | {st.license} | {st.attribution} |")
    lines += ["", "Images keep their artwork's license: CC-BY requires attribution, CC-BY-SA also requires",
              "sharing adaptations under the same license. Noto images are rendered from the Debian font",
              "file (SIL OFL 1.1); Google publishes the same artwork under Apache-2.0. No Apple artwork.", "",
              "## Counts", ""]
    for size in summary["sizes"]:
        lines += [f"{size} px ({summary['images'][size]} images):", "",
                  "| style | " + " | ".join(SPLITS) + " | total |", "|---" * (len(SPLITS) + 2) + "|"]
        for style, c in summary["counts"][size].items():
            lines.append(f"| {style} | " + " | ".join(str(c[k]) for k in SPLITS) + f" | {sum(c.values())} |")
        lines.append("")
    if summary["missing"]:
        lines += [f"Of {summary['emoji_total']} CLDR emoji (with skin-tone variants), not in the source: "
                  + ", ".join(f"{k} {v}" for k, v in summary["missing"].items()) + ".", ""]
    if summary["skipped"]:
        lines += ["Not drawn (not in the font, or blank/unrenderable): "
                  + ", ".join(f"{k} {v}" for k, v in summary["skipped"].items()) + ".", ""]
    if summary["duplicates"]:
        lines += ["Left out as identical to their base emoji (the artwork shows no skin tone): "
                  + ", ".join(f"{k} {v}" for k, v in summary["duplicates"].items()) + ".", ""]
    lines += ["## Splits", "",
              "Deterministic, from sha256; u(key) = first 8 bytes of sha256(key) as a big-endian integer / 2^64.",
              "ID is the base emoji's hexcode, uppercased (skin-tone variants use their base's).", "",
              f"- `heldout_emoji` if u(\"identity/ID\") < {HELDOUT_EMOJI}: never in training, in any style;",
              f"- else `heldout_pair` if u(\"pair/ID/STYLE\") < {HELDOUT_PAIR}: trained in other styles only;",
              "- else `train`.", "",
              "`glide.data.emoji.split_of(ID, STYLE)` computes it.", "",
              "## Files", "",
              "- `manifest.jsonl`: one line per image and size (image, caption, captions_alt, emoji, hexcode,",
              "  label, style, source, license, attribution, split, size);",
              "- `images/{size}/{style}/{hexcode}.png`: RGB on white;",
              "- `emoji_{size}.npz`: images uint8 [N, S, S, 3] and per-image captions, split, style, emoji,",
              "  hexcode, label; captions_alt is one JSON string (a list of lists);",
              "- `contact_sheet.png`: 48 random training images.", ""]
    if summary["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in summary["notes"]] + [""]
    (tmp / "README.md").write_text("\n".join(lines), encoding="utf-8")


# ---------------------------------------------------------------------------------------------------
# command line


def _positive_int(s: str) -> int:
    import argparse

    try:
        v = int(s)
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def add_arguments(parser) -> None:
    """Options of `glide data emoji`."""
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


def run(args) -> int:
    """Build from parsed arguments and print a short summary."""
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
