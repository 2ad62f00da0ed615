"""Filtering a dataset into a new folder (`filter_data`), and reading back the provenance it leaves there
(`data_filter_record`, which `glide train` records)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ...errors import GlideError
from ..policy import load_policy
from .decide import Decider
from ..datasets import detect_format
from .formats import filter_dataset_folder, filter_folder, filter_jsonl, filter_npz, filter_shards
from .report import summarize, write_report


PROVENANCE = "filter.json"


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


def filter_data(data: str, policy_path: str, out: str, report: str | None = None, device: str = "cpu",
                background: str = "white", progress: bool = True) -> dict:
    """Filter `data` into the new folder `out` and write the report; returns the report's summary."""
    t0 = time.time()
    policy = load_policy(policy_path)
    kind, what = detect_format(data)
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
        from ...files import public_permissions

        public_permissions(tmp)
        write_report(decider, policy, summary, report_p)
        os.replace(tmp, out_p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary.update(out=str(out_p), report=str(report_p))
    return summary
