"""Every format `glide train` reads, filtered into the same format: folders, JSONL manifests, .npz arrays,
emoji dataset folders and WebDataset shards."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ...errors import GlideError
from ..datasets import IMAGE_EXTS, BadImage, decode_image, read_manifest
from .decide import Decider, Record, run_chunks


WDS_IMAGE_KEYS = ("png", "jpg", "jpeg", "webp")


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # same file system: no copy needed (the kept set is read-only data)
    except OSError:
        shutil.copy2(src, dst)


def _decoder(source, background: str = "white") -> Callable[[int], np.ndarray]:
    return lambda size: decode_image(source, size, background)


def folder_records(root: Path, background: str) -> Iterator[Record]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise GlideError(f"no images found in {root}")
    for p in files:
        txt, meta_file = p.with_suffix(".txt"), p.with_suffix(".json")
        caption = txt.read_text(encoding="utf-8").strip() if txt.is_file() else ""
        meta = {}
        if meta_file.is_file():
            try:
                meta = json.loads(meta_file.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raise GlideError(f"{meta_file} is not valid JSON") from None
        yield Record([caption], meta if isinstance(meta, dict) else {}, _decoder(p, background), p)


def filter_folder(root: Path, out: Path, decider: Decider, background: str, progress: bool) -> dict:
    def keep(rec: Record):
        rel = rec.ref.relative_to(root)
        _link_or_copy(rec.ref, out / rel)
        for side in (rec.ref.with_suffix(".txt"), rec.ref.with_suffix(".json")):
            if side.is_file():
                _link_or_copy(side, out / side.relative_to(root))

    n = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    seen, kept = run_chunks(tqdm(folder_records(root, background), total=n, desc="filter", disable=not progress),
                            decider, keep)
    return {"format": "folder", "files": {".": {"seen": seen, "kept": kept}}}


def filter_jsonl(manifest: Path, out: Path, decider: Decider, background: str, progress: bool,
                 collect: bool = True) -> dict:
    """Rows of a manifest (every split and size) -> out/<same name>, kept images copied to the same relative
    paths (an absolute or outside path is written as an absolute path instead)."""
    root = manifest.parent
    rows = read_manifest(manifest)
    kept_rows = []

    def records():
        for row in rows:
            meta = {k: v for k, v in row.items() if k not in ("image", "caption", "captions_alt")}
            caps = [row["caption"], *row.get("captions_alt", [])]
            yield Record(caps, meta, _decoder(root / row["image"], background), row)

    def keep(rec: Record):
        row = dict(rec.ref)
        src = (root / row["image"]).resolve()
        try:
            rel = src.relative_to(root.resolve())
        except ValueError:
            rel = None
        if rel is None or Path(row["image"]).is_absolute():
            row["image"] = str(src)
        elif src.is_file():
            _link_or_copy(src, out / rel)
        kept_rows.append(row)

    seen, kept = run_chunks(tqdm(records(), total=len(rows), desc=f"filter {manifest.name}", disable=not progress),
                            decider, keep, collect)
    with open(out / manifest.name, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in kept_rows)
    return {manifest.name: {"seen": seen, "kept": kept}}


def filter_npz(path: Path, out: Path, decider: Decider, progress: bool, collect: bool = True) -> dict:
    """Every per-image array subset to the kept rows (captions_alt, one JSON string of lists, too)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if "images" not in arrays or "captions" not in arrays:
        raise GlideError(f"{path} has no 'images' and 'captions' arrays")
    images = arrays["images"]
    n = len(images)
    alt = json.loads(str(arrays["captions_alt"])) if "captions_alt" in arrays else [[] for _ in range(n)]
    per_row = [k for k, v in arrays.items() if k not in ("images", "captions") and v.ndim >= 1 and len(v) == n]

    def records():
        for i in range(n):
            meta = {k: str(arrays[k][i]) for k in per_row}
            yield Record([str(arrays["captions"][i]), *alt[i]], meta,
                         lambda size, i=i: decode_image(Image.fromarray(images[i]), size), i)

    keep_idx: list[int] = []
    seen, kept = run_chunks(tqdm(records(), total=n, desc=f"filter {path.name}", disable=not progress),
                            decider, lambda rec: keep_idx.append(rec.ref), collect)
    idx = np.array(keep_idx, dtype=np.int64)
    subset = {k: (v[idx] if k in per_row or k in ("images", "captions") else v) for k, v in arrays.items()}
    if "captions_alt" in arrays:
        subset["captions_alt"] = np.array(json.dumps([alt[i] for i in keep_idx], ensure_ascii=False))
    np.savez_compressed(out / path.name, **subset)
    return {path.name: {"seen": seen, "kept": kept}}


def filter_dataset_folder(root: Path, out: Path, decider: Decider, background: str, progress: bool) -> dict:
    """A `glide data emoji` folder: each emoji_*.npz and the manifest, decided alike (the CLIP scores are
    cached by pixels, so the same image in two files is judged once), plus its README (licenses)."""
    files: dict[str, dict] = {}
    decider.score_cache = {}
    npzs = sorted(root.glob("emoji_*.npz"), key=lambda p: p.stat().st_size)
    for k, p in enumerate(npzs):
        files.update(filter_npz(p, out, decider, progress, collect=k == 0))  # the report counts one file
    if (root / "manifest.jsonl").is_file():
        files.update(filter_jsonl(root / "manifest.jsonl", out, decider, background, progress, collect=not npzs))
    if (root / "README.md").is_file():  # the licenses and attribution travel with every copy
        note = (f"\n## Filtered copy\n\nThis is a copy filtered by `glide data filter` (see filter.json for the "
                f"policy and its counts); the counts above are of the source, {root}.\n")
        (out / "README.md").write_text((root / "README.md").read_text(encoding="utf-8") + note, encoding="utf-8")
    return {"format": "dataset folder", "files": files, "counted": npzs[0].name if npzs else "manifest.jsonl"}


def _wds_samples(shard: str) -> Iterator[tuple[str, list[tuple[tarfile.TarInfo, bytes]]]]:
    """(key, members) of a WebDataset tar, read as a stream; a sample is the consecutive files sharing a key."""
    key, members = None, []
    with tarfile.open(shard, "r|*") as tf:
        for m in tf:
            if not m.isfile():
                continue
            base = os.path.basename(m.name)
            k = os.path.join(os.path.dirname(m.name), base.split(".", 1)[0])
            data = tf.extractfile(m).read()
            if k != key and members:
                yield key, members
                members = []
            key = k
            members.append((m, data))
    if members:
        yield key, members


def _wds_record(key: str, members, background: str) -> Record:
    parts = {m.name[len(key) + 1:].lower(): data for m, data in members}
    img = next((parts[k] for k in WDS_IMAGE_KEYS if k in parts), None)
    caption = parts.get("txt", b"").decode("utf-8", "replace").strip()
    meta = {}
    if "json" in parts:
        try:
            meta = json.loads(parts["json"])
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}

    def image(size):
        if img is None:
            raise BadImage(f"sample {key} has no image")
        return decode_image(img, size, background)

    return Record([caption], meta if isinstance(meta, dict) else {}, image, members)


def filter_shards(shards: list[str], out: Path, decider: Decider, background: str, progress: bool) -> dict:
    """Each shard is read as a stream and its kept samples written to a shard of the same name (byte for byte)."""
    names = [os.path.basename(s) for s in shards]
    if len(set(names)) != len(names):
        raise GlideError("WebDataset shards to filter must have distinct file names")
    files = {}
    for shard in tqdm(shards, desc="filter shards", disable=not progress):
        dst = out / os.path.basename(shard)
        with tarfile.open(dst, "w") as tw:
            def keep(rec: Record):
                for m, data in rec.ref:
                    tw.addfile(m, io.BytesIO(data))

            recs = (_wds_record(k, ms, background) for k, ms in _wds_samples(shard))
            seen, kept = run_chunks(recs, decider, keep)
        files[os.path.basename(shard)] = {"seen": seen, "kept": kept}
    return {"format": "webdataset", "files": files}
