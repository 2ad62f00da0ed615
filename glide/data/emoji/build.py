"""The build: fetch, render and write the dataset in a temporary folder beside `out`, then rename it into place."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ...errors import GlideError
from ...files import temp_dir_beside
from ..arrays import save_arrays
from .captions import DEFAULT_STYLES, NOTO_FONTS, NPM_PACKAGES, OPENCLIPART_DIRS, SPLITS, STYLES, make_captions, split_of
from .npm import default_work_dir, fetch_npm
from .readme import write_readme
from .render import _init_worker, _render_item, sizes_for
from .sources import Item, emoji_items, image_path, load_emojibase, openclipart_items


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
        tmp = temp_dir_beside(out)  # mkdtemp makes it private; the dataset should not be
    except OSError as e:
        raise GlideError(f"cannot write next to {out}: {e.strerror or e}") from None
    try:
        summary = _build(tmp, out, items, sizes, noto_font, progress, workers)
        summary.update(notes=notes, styles=styles, sources={s: STYLES[s].source for s in styles},
                       missing={s: n for s, n in missing.items() if n}, emoji_total=len(emojis))
        write_readme(tmp, summary)
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
        save_arrays(tmp / f"emoji_{s}.npz", arrays[s][:len(rows[s])], rows[s])
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
