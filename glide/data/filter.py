"""`glide data filter DATA --policy POLICY.toml --out FILTERED`: drop the image-caption pairs a policy names.

Every format `glide train` reads keeps its format: a folder of images (+ same-named .txt captions and
optional .json metadata) stays a folder, a JSONL manifest stays a manifest (its kept images copied beside
it), an .npz stays an .npz with the same arrays, a dataset folder from `glide data emoji` stays one, and
WebDataset shards are streamed and written shard by shard. FILTERED is always a new folder, built under a
temporary name and renamed into place at the end; it holds `filter.json` (the policy, its hash and the
counts), which `glide train` reads to record what it trained on. The report (report.md, report.json and a
grid of removed and kept examples per rule) goes to FILTERED-report/ unless --report says otherwise.
"""

from __future__ import annotations

import glob
import heapq
import io
import json
import os
import random
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..errors import GlideError
from .datasets import IMAGE_EXTS, BadImage, decode_image, read_manifest
from .policy import ClipJudge, Policy, caption_matcher, load_policy, load_rule_clip, metadata_value

PROVENANCE = "filter.json"
THUMB = 64  # grid thumbnails
EXAMPLES = 16  # per rule and side in the grids
CHUNK = 256  # records decided together (one CLIP batch)
WDS_IMAGE_KEYS = ("png", "jpg", "jpeg", "webp")


@dataclass
class Record:
    """One image-caption pair, read lazily: `image(size)` decodes it only when a rule or a grid needs it."""

    captions: list[str]
    meta: dict[str, Any]
    image: Callable[[int], np.ndarray]
    ref: Any = None  # what the format's writer needs to copy it

    _cache: dict = field(default_factory=dict, repr=False)

    def pixels(self, size: int) -> np.ndarray:
        if size not in self._cache:
            self._cache[size] = self.image(size)
        return self._cache[size]


# -- deciding --------------------------------------------------------------------------------------


@dataclass
class RuleStats:
    fired: int = 0  # items this rule matches (on its own)
    only: int = 0  # items this rule alone matches
    unreadable: int = 0  # items a clip rule could not decode (kept out: dropped)
    tp: int = 0
    fp: int = 0
    fn: int = 0
    labelled: int = 0  # items whose metadata has the rule's label field
    scored: list = field(default_factory=list)  # clip rules with labels: (score, is positive), for the P/R curve
    removed_examples: list = field(default_factory=list)  # (score, order seen, caption, thumbnail)
    kept_examples: list = field(default_factory=list)
    seen_removed: int = 0
    seen_kept: int = 0


class Decider:
    """Applies a policy to chunks of records and keeps the statistics and grid examples for the report."""

    def __init__(self, policy: Policy, device: str = "cpu", seed: int = 0):
        self.policy = policy
        self.rules = policy.rules
        self.matchers = {r.name: caption_matcher(r) for r in self.rules if r.kind == "caption"}
        clips: dict[tuple[str, str], Any] = {}  # one CLIP per weights file, shared between rules
        self.judges = {}
        for r in self.rules:
            if r.kind == "clip":
                key = (r.model, r.open_clip_act)
                if key not in clips:
                    clips[key] = load_rule_clip(r, device)
                self.judges[r.name] = ClipJudge(r, clips[key], device)
        self.stats = {r.name: RuleStats() for r in self.rules}
        self.total = self.removed = 0
        self.rng = random.Random(seed)
        # (rule, pixel digest) -> score: set to a dict where the same images come twice (a dataset folder's
        # .npz and manifest); None otherwise, so a stream of shards does not grow a table of every image.
        self.score_cache: dict[tuple[str, bytes], float] | None = None

    def decide(self, records: list[Record], collect: bool = True) -> list[bool]:
        """Keep (True) or drop each record; with `collect`, count it in the report's statistics."""
        import hashlib

        n = len(records)
        fired = {r.name: np.zeros(n, bool) for r in self.rules}
        scores: dict[str, np.ndarray] = {}
        for r in self.rules:
            if r.kind == "caption":
                fired[r.name] = np.array([self.matchers[r.name](rec.captions) for rec in records], bool)
            elif r.kind == "metadata":
                values = set(r.values)
                fired[r.name] = np.array([metadata_value(rec.meta, r.field) in values for rec in records], bool)
            else:
                judge = self.judges[r.name]
                s = np.full(n, np.nan)
                todo, arrays = [], []
                for i, rec in enumerate(records):
                    try:
                        px = rec.pixels(judge.size)
                    except BadImage:
                        continue  # an unreadable image cannot be judged safe: dropped, and counted
                    key = (r.name, hashlib.sha1(px.tobytes()).digest()) if self.score_cache is not None else None
                    if key is not None and key in self.score_cache:
                        s[i] = self.score_cache[key]
                    else:
                        todo.append((i, key))
                        arrays.append(px)
                if arrays:
                    got = judge(np.stack(arrays))
                    for (i, key), v in zip(todo, got):
                        s[i] = float(v)
                        if key is not None:
                            self.score_cache[key] = s[i]
                scores[r.name] = s
                fired[r.name] = ~(s <= r.threshold)  # NaN (unreadable) fires
        any_fired = np.zeros(n, bool)
        for f in fired.values():
            any_fired |= f
        if collect:
            self._count(records, fired, scores, any_fired)
        return list(~any_fired)

    def _count(self, records, fired, scores, any_fired) -> None:
        n_fired = sum(f.astype(int) for f in fired.values())
        self.total += len(records)
        self.removed += int(any_fired.sum())
        for r in self.rules:
            st, f = self.stats[r.name], fired[r.name]
            st.fired += int(f.sum())
            st.only += int((f & (n_fired == 1)).sum())
            s = scores.get(r.name)
            if s is not None:
                st.unreadable += int(np.isnan(s).sum())
            if r.labels:
                values = set(r.labels["values"])
                for i, (rec, hit) in enumerate(zip(records, f)):
                    truth = metadata_value(rec.meta, r.labels["field"])
                    if truth is None:
                        continue
                    st.labelled += 1
                    positive = truth in values
                    if s is not None and not np.isnan(s[i]):
                        st.scored.append((float(s[i]), positive))
                    st.tp += int(hit and positive)
                    st.fp += int(hit and not positive)
                    st.fn += int(positive and not hit)
            for i, rec in enumerate(records):
                score = None if s is None or np.isnan(s[i]) else float(s[i])
                if f[i]:
                    st.seen_removed += 1
                    self._reservoir(st.removed_examples, st.seen_removed, rec, score)
                elif s is not None:
                    # kept by a CLIP rule: show the closest calls (highest scores below the threshold)
                    item = (score, st.seen_kept, rec)
                    st.seen_kept += 1
                    if len(st.kept_examples) < EXAMPLES:
                        heapq.heappush(st.kept_examples, self._example(*item))
                    elif score > st.kept_examples[0][0]:
                        heapq.heapreplace(st.kept_examples, self._example(*item))
                else:
                    st.seen_kept += 1
                    self._reservoir(st.kept_examples, st.seen_kept, rec, score)

    @staticmethod
    def _example(score, order, rec) -> tuple:
        try:
            thumb = rec.pixels(THUMB)
        except BadImage:
            thumb = np.full((THUMB, THUMB, 3), 128, np.uint8)
        return (score if score is not None else -1.0, order, rec.captions[0] if rec.captions else "", thumb)

    def _reservoir(self, pool: list, seen: int, rec: Record, score) -> None:
        if len(pool) < EXAMPLES:
            pool.append(self._example(score, seen, rec))
        else:
            j = self.rng.randrange(seen)
            if j < EXAMPLES:
                pool[j] = self._example(score, seen, rec)


def run_chunks(records: Iterator[Record], decider: Decider, keep: Callable[[Record], None],
               collect: bool = True) -> tuple[int, int]:
    """Decide records a chunk at a time and hand the kept ones to `keep`; returns (seen, kept)."""
    seen = kept = 0
    chunk: list[Record] = []

    def flush():
        nonlocal seen, kept
        for rec, ok in zip(chunk, decider.decide(chunk, collect)):
            seen += 1
            if ok:
                kept += 1
                keep(rec)
        chunk.clear()

    for rec in records:
        chunk.append(rec)
        if len(chunk) == CHUNK:
            flush()
    flush()
    return seen, kept


# -- formats -----------------------------------------------------------------------------------------


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


def detect(data: str) -> tuple[str, Any]:
    """(format, what to read) of a data path, as `glide train` would read it."""
    if any(ch in data for ch in "*?[") or data.endswith(".tar"):
        shards = sorted(glob.glob(data))
        if not shards:
            raise GlideError(f"no WebDataset shards match {data}")
        return "webdataset", shards
    p = Path(data)
    if not p.exists():
        raise GlideError(f"data not found: {p}")
    if p.is_dir():
        tars = sorted(p.glob("*.tar"))
        if tars and not any(q.suffix.lower() in IMAGE_EXTS for q in p.iterdir()):
            return "webdataset", [str(t) for t in tars]
        if any(p.glob("emoji_*.npz")) or (p / "manifest.jsonl").is_file():
            return "dataset", p
        return "folder", p
    if p.suffix == ".jsonl":
        return "jsonl", p
    if p.suffix == ".npz":
        return "npz", p
    raise GlideError(f"unsupported data path {p}: give a folder, a .jsonl manifest, an .npz file or .tar shards")


# -- provenance ----------------------------------------------------------------------------------------


def data_filter_record(data: str | os.PathLike) -> dict | None:
    """The filter.json that `glide data filter` wrote with this data, or None (unfiltered data, or data
    that is not one of its outputs). `glide train` records it."""
    spec = str(data)
    if any(ch in spec for ch in "*?["):
        matches = sorted(glob.glob(spec))
        folder = Path(matches[0]).parent if matches else None
    else:
        p = Path(spec)
        folder = p if p.is_dir() else p.parent
    if folder is None or not (folder / PROVENANCE).is_file():
        return None
    try:
        doc = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
        return {"policy": doc["policy"]["name"], "policy_sha256": doc["policy_sha256"], "source": doc["source"],
                "kept": doc["kept"], "removed": doc["removed"]}
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


# -- the command -------------------------------------------------------------------------------------


def filter_data(data: str, policy_path: str, out: str, report: str | None = None, device: str = "cpu",
                background: str = "white", progress: bool = True) -> dict:
    """Filter `data` into the new folder `out` and write the report; returns the report's summary."""
    t0 = time.time()
    policy = load_policy(policy_path)
    kind, what = detect(data)
    out_p = Path(out).expanduser().resolve()
    report_p = Path(report).expanduser().resolve() if report else out_p.with_name(out_p.name + "-report")
    for p in (out_p, report_p):
        if p.exists():
            raise GlideError(f"{p} already exists: choose a new --out (and --report), or delete it")
    src = Path(what if kind != "webdataset" else what[0]).resolve()
    if kind != "webdataset" and (out_p == src or src in out_p.parents):
        raise GlideError("--out must not be inside the data it filters")
    decider = Decider(policy, device)
    out_p.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_p.parent, prefix=f".{out_p.name}.tmp-"))
    try:
        if kind == "folder":
            written = filter_folder(what, tmp, decider, background, progress)
        elif kind == "dataset":
            written = filter_dataset_folder(what, tmp, decider, background, progress)
        elif kind == "jsonl":
            written = {"format": "jsonl", "files": filter_jsonl(what, tmp, decider, background, progress)}
        elif kind == "npz":
            written = {"format": "npz", "files": filter_npz(what, tmp, decider, progress)}
        else:
            written = filter_shards(what, tmp, decider, background, progress)
        summary = summarize(decider, policy, data, written, time.time() - t0)
        provenance = {**{k: summary[k] for k in ("policy_sha256", "source", "format", "total", "kept", "removed",
                                                  "files")},
                      "policy": policy.document(), "rules": {k: v["removed"] for k, v in summary["rules"].items()}}
        (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
        from ..checkpoint import public_permissions

        public_permissions(tmp)
        write_report(decider, policy, summary, report_p)
        os.replace(tmp, out_p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary.update(out=str(out_p), report=str(report_p))
    return summary


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def threshold_curve(scored: list[tuple[float, bool]], thresholds=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)):
    """Precision and recall of a CLIP rule at other thresholds (the same scores), to choose one."""
    scores = np.array([s for s, _ in scored])
    truth = np.array([p for _, p in scored])
    out = []
    for t in thresholds:
        hit = scores > t
        tp = int((hit & truth).sum())
        out.append({"threshold": t, "removed": int(hit.sum()), "precision": _ratio(tp, int(hit.sum())),
                    "recall": _ratio(tp, int(truth.sum()))})
    return out


def summarize(decider: Decider, policy: Policy, data: str, written: dict, seconds: float) -> dict:
    rules = {}
    for r in policy.rules:
        st = decider.stats[r.name]
        row = {"kind": r.kind, "removed": st.fired, "removed_only_by_this": st.only}
        if r.kind == "clip":
            row.update(threshold=r.threshold, model=r.model, unreadable=st.unreadable)
        if r.labels:
            row["labels"] = {**r.labels, "items_with_label": st.labelled, "tp": st.tp, "fp": st.fp, "fn": st.fn,
                             "precision": _ratio(st.tp, st.tp + st.fp), "recall": _ratio(st.tp, st.tp + st.fn)}
        if st.scored:
            row["labels"]["curve"] = threshold_curve(st.scored)
        rules[r.name] = row
    return {"policy": policy.name, "policy_sha256": policy.sha256, "source": str(data),
            "format": written["format"], "total": decider.total, "kept": decider.total - decider.removed,
            "removed": decider.removed, "rules": rules, "files": written["files"],
            "counted_file": written.get("counted"), "seconds": round(seconds, 1)}


def _label(text: str, width: int) -> Image.Image:
    from PIL import ImageDraw

    im = Image.new("RGB", (width, 18), "white")
    ImageDraw.Draw(im).text((4, 3), text, fill="black")
    return im


def rule_grid(st: RuleStats, cols: int = 8) -> Image.Image:
    """Removed examples on top, kept ones below (for a CLIP rule: the kept items it scored highest)."""
    from ..images import grid

    width = cols * THUMB + (cols + 1) * 2
    parts = [_label(f"removed ({len(st.removed_examples)} of {st.seen_removed} shown)", width)]
    removed = sorted(st.removed_examples, key=lambda e: e[1])
    kept = sorted(st.kept_examples, key=lambda e: -e[0])
    for title, ex in ((None, removed), (f"kept ({len(kept)} of {st.seen_kept} shown)", kept)):
        if title:
            parts.append(_label(title, width))
        if ex:
            parts.append(grid([Image.fromarray(e[3]) for e in ex], cols=cols))
        else:
            parts.append(_label("(none)", width))
    sheet = Image.new("RGB", (width, sum(p.height for p in parts)), "white")
    y = 0
    for p in parts:
        sheet.paste(p, (0, y))
        y += p.height
    return sheet


def write_report(decider: Decider, policy: Policy, summary: dict, out: Path) -> None:
    """report.md, report.json and grid_<rule>.png, written in a temporary folder and renamed into place."""
    from ..images import save_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        lines = [f"# Filter report: policy `{policy.name}`", "",
                 f"- data: `{summary['source']}` ({summary['format']})",
                 f"- policy sha256: `{policy.sha256}`",
                 f"- items: {summary['total']}, kept {summary['kept']}, removed {summary['removed']}"
                 + (f" (counted on {summary['counted_file']})" if summary.get("counted_file") else ""), "",
                 "| rule | kind | removed | removed by this rule only | precision | recall |", "|---|---|---|---|---|---|"]
        for name, row in summary["rules"].items():
            lab = row.get("labels", {})
            fmt = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
            lines.append(f"| {name} | {row['kind']} | {row['removed']} | {row['removed_only_by_this']} | "
                         f"{fmt(lab.get('precision'))} | {fmt(lab.get('recall'))} |")
        lines.append("")
        for r in policy.rules:
            st = decider.stats[r.name]
            save_atomic(rule_grid(st), tmp / f"grid_{r.name}.png")
            lines += [f"## {r.name} ({r.kind})", "", f"![{r.name}](grid_{r.name}.png)", ""]
            lab = summary["rules"][r.name].get("labels")
            if lab:
                lines += [f"Against `{lab['field']}` in {lab['values']} on {lab['items_with_label']} labelled items: "
                          f"TP {lab['tp']}, FP {lab['fp']}, FN {lab['fn']}, precision {lab['precision']}, "
                          f"recall {lab['recall']}.", ""]
                if "curve" in lab:
                    lines += ["| threshold | removed | precision | recall |", "|---|---|---|---|"]
                    lines += [f"| {c['threshold']} | {c['removed']} | {c['precision']} | {c['recall']} |"
                              for c in lab["curve"]] + [""]
            lines += ["Removed examples (captions, in grid order): "
                      + "; ".join(e[2] for e in sorted(st.removed_examples, key=lambda e: e[1])), "",
                      "Kept examples: " + "; ".join(
                          e[2] + (f" ({e[0]:.2f})" if r.kind == "clip" else "")
                          for e in sorted(st.kept_examples, key=lambda e: -e[0])), ""]
        (tmp / "report.md").write_text("\n".join(lines), encoding="utf-8")
        (tmp / "report.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        from ..checkpoint import public_permissions

        public_permissions(tmp)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def add_arguments(parser) -> None:
    """Options of `glide data filter`."""
    parser.add_argument("data", help="a folder of images, a dataset folder, a .jsonl manifest, an .npz file, "
                                     "or WebDataset .tar shards (a glob or a folder of them)")
    parser.add_argument("--policy", required=True, help="policy TOML: [[rule]] tables (see configs/filter/emoji.toml)")
    parser.add_argument("--out", required=True, help="new folder for the kept set (same format as the input)")
    parser.add_argument("--report", default=None, help="report folder (default: OUT-report beside OUT)")
    parser.add_argument("--device", default="cpu", help="device for CLIP rules (default cpu)")
    parser.add_argument("--background", default="white", help="colour transparent images are composited on")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
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
