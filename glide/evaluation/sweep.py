"""The paper's guidance study (GLIDE §5.2, Fig. 6) on our own models: classifier-free guidance against CLIP
guidance, each swept over its scale, compared on the fidelity/diversity trade-offs, and a test of the
paper's explanation for CLIP guidance's high CLIP scores (adversarial examples against the CLIP).

The rows come from `evaluate` (one per setting); this module turns them into the three trade-off panels and
the two-CLIP gap table.
"""

from __future__ import annotations

from pathlib import Path

from .. import defaults
from .plots import Series, panel, save_panels

DEFAULT_CFG_SCALES = defaults.SWEEP_CFG_SCALES
DEFAULT_CLIP_SCALES = defaults.SWEEP_CLIP_SCALES


def _series(rows: list[dict], x: str, y: str) -> list[Series]:
    out = []
    for guidance, label in (("cfg", "classifier-free"), ("clip", "CLIP guidance")):
        pts = [(r[x], r[y], f"{r['guidance_scale' if guidance == 'cfg' else 'clip_scale']:g}")
               for r in rows if r["guidance"] == guidance and r.get(x) is not None and r.get(y) is not None]
        if pts:
            out.append(Series(label, pts))
    return out


def plot_tradeoffs(rows: list[dict], path: str | Path) -> None:
    """Fig. 6's three panels: fidelity against IS, precision against recall, fidelity against CLIP score. Standard
    FID and IS when the rows have them (Inception weights given); else their CLIP-space stand-ins, labelled as
    what they are: a Frechet distance in CLIP space is not FID, nor the CLIP zero-shot score an IS."""
    if any("fid" in r for r in rows):
        fid, is_, prec, rec = "fid", "is", "precision_inception", "recall_inception"
        fd_name, is_name, space = "FID", "Inception Score", "Inception space"
    else:
        fid, is_, prec, rec = "fd_clip", "is_clip", "precision", "recall"
        fd_name, is_name, space = "FD in CLIP space", "IS analogue (CLIP zero-shot)", "CLIP space"
    save_panels([
        panel(_series(rows, is_, fid), is_name, f"{fd_name} (lower is better)", f"{fd_name} vs IS: down-right is better"),
        panel(_series(rows, rec, prec), f"recall ({space})", f"precision ({space})", "precision vs recall"),
        panel(_series(rows, "clip_score", fid), "CLIP score (guiding CLIP)", f"{fd_name} (lower is better)",
              f"{fd_name} vs CLIP score: down-right is better"),
    ], path)


def baseline(rows: list[dict]) -> dict | None:
    """The row both series start from: the conditional model with neither guidance (cfg 1, CLIP 0)."""
    for r in rows:
        if r["guidance"] in ("cfg", "clip") and r["guidance_scale"] == 1 and not r.get("clip_scale"):
            return r
    return None


def gap_rows(rows: list[dict]) -> list[dict]:
    """Per setting, how much the CLIP score rose over the unguided conditional model under the guiding CLIP
    and under the independent judge. If CLIP guidance mostly fools the CLIP it follows, its rise under the
    judge is much smaller than under the guide, while classifier-free guidance rises about equally."""
    base = baseline(rows)
    if base is None or "judge_clip_score" not in base:
        return []
    out = []
    for r in rows:
        if r["guidance"] not in ("cfg", "clip"):
            continue
        d_guide = r["clip_score"] - base["clip_score"]
        d_judge = r["judge_clip_score"] - base["judge_clip_score"]
        out.append({"guidance": r["guidance"], "guidance_scale": r["guidance_scale"], "clip_scale": r["clip_scale"],
                    "clip_score": r["clip_score"], "judge_clip_score": r["judge_clip_score"],
                    "gain_guide": d_guide, "gain_judge": d_judge, "gap": d_guide - d_judge})
    return out


def format_gap_table(gaps: list[dict]) -> str:
    lines = ["| guidance | guidance_scale | clip_scale | CLIP score (guide) | CLIP score (judge) | gain, guide | "
             "gain, judge | gap |", "|---|---|---|---|---|---|---|---|"]
    for g in gaps:
        lines.append(f"| {g['guidance']} | {g['guidance_scale']:g} | {g['clip_scale']:g} | {g['clip_score']:.2f} | "
                     f"{g['judge_clip_score']:.2f} | {g['gain_guide']:+.2f} | {g['gain_judge']:+.2f} | "
                     f"{g['gap']:+.2f} |")
    return "\n".join(lines)


def plot_gap(gaps: list[dict], path: str | Path) -> None:
    """CLIP score under the judge against CLIP score under the guide, one line per guidance kind."""
    save_panels([panel(_series(gaps, "clip_score", "judge_clip_score"), "CLIP score, guiding CLIP",
                       "CLIP score, independent CLIP", "same CLIP score, which judge agrees?")], path)
