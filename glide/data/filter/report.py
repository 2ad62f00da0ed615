"""The filter's report: a summary of what each rule removed, threshold curves, and grids of removed and kept
examples per rule (report.md, report.json, PNGs)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..policy import Policy
from .decide import Decider, RuleStats, THUMB


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
    from ...images import grid

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
    from ...images import save_atomic

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
        from ...files import public_permissions

        public_permissions(tmp)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
