"""What a `glide eval` run leaves in its folder: the one home of its results.

`write_report` prints the table (and, for the guidance study, the two-CLIP gap table), draws the plots and
writes `results.json` (the run's settings and every row) and `table.md`. The command line only gathers the
settings; glide.evaluation.evaluate computes the rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..files import write_text_atomic
from .evaluate import EvalConfig, config_dict, format_table


def sample_seconds(rows: list[dict]) -> float:
    """Seconds spent sampling, each distinct setting once (CLIP scale 0 shares the cfg-1 samples)."""
    return round(sum({(r["guidance_scale"], r["clip_scale"]): r["sample_seconds"]
                      for r in rows if "sample_seconds" in r}.values()), 1)


def write_report(rows: list[dict], cfg: EvalConfig, out: Path, run: dict, seconds: float,
                 plots: bool = False) -> list[str]:
    """Print and write the results of `rows` into `out`; `run` describes the run (command, models, data) and
    goes into results.json with the config. `plots`: the guidance study's plots and gap table. Returns the
    names of what was written."""
    table = format_table(rows)
    text = [table]
    print(table)
    files = ["results.json", "table.md", "a grid per setting (real | generated pairs)"]
    if plots:
        from .sweep import format_gap_table, gap_rows, plot_gap, plot_tradeoffs

        plot_tradeoffs(rows, out / "tradeoffs.png")
        files.insert(2, "tradeoffs.png")
        gaps = gap_rows(rows)
        if gaps:
            gap_table = format_gap_table(gaps)
            print("\nCLIP score gains over the unguided conditional model, under the guiding CLIP and the judge:")
            print(gap_table)
            text.append(gap_table)
            plot_gap(gaps, out / "clip_gap.png")
            files.insert(3, "clip_gap.png")
    record = {**run, **config_dict(cfg), "seconds": round(seconds, 1), "sample_seconds": sample_seconds(rows)}
    for key in ("data", "splits", "captions", "images"):  # the COCO protocol's fields replace the emoji data's
        if key in run:
            record[key] = run[key]
    write_text_atomic(out / "results.json", json.dumps({"config": record, "rows": rows}, indent=1) + "\n")
    write_text_atomic(out / "table.md", "\n\n".join(text) + "\n")
    print(f"wrote {', '.join(files)} to {out}")
    return files
