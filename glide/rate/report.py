"""`glide rate report`: the votes database -> tables (or JSON) and a plot of win rates and Elo scores."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from ..images import save_atomic
from .server import QUESTIONS
from .stats import summarize
from .store import open_existing


def format_report(summary: dict) -> str:
    lines = []
    for question, s in summary.items():
        lines += [f"## {QUESTIONS.get(question, question)} ({question})", "",
                  f"{s['votes']} votes from {s['raters']} rater(s): {s['decided']} decided, {s['skips']} skipped.", "",
                  "| A | B | A wins | B wins | skips | A win rate | 95% CI (Wilson) |", "|---|---|---|---|---|---|---|"]
        for p in s["pairs"]:
            rate = "" if p["a_win_rate"] is None else f"{p['a_win_rate']:.3f}"
            lines.append(f"| {p['a']} | {p['b']} | {p['a_wins']} | {p['b_wins']} | {p['skips']} | {rate} | "
                         f"{p['ci95'][0]:.3f} - {p['ci95'][1]:.3f} |")
        lines.append("")
        if s["elo"]:
            lines += ["| model | Elo (Bradley-Terry) | 95% bootstrap interval |", "|---|---|---|"]
            for m, e in sorted(s["elo"].items(), key=lambda kv: -kv[1]["elo"]):
                ci = f"{e['ci95'][0]:.0f} - {e['ci95'][1]:.0f}" if e.get("ci95") else "n/a"
                lines.append(f"| {m} | {e['elo']:.0f} | {ci} |")
            lines.append("")
        if s["elo_note"]:
            lines += [f"Elo: {s['elo_note']}.", ""]
        a = s["agreement"]
        if a:
            lines += [f"Agreement on {a['items']} comparison(s) judged more than once ({a['judgements']} judgements): "
                      f"observed {a['observed']:.3f}, chance {a['chance']:.3f}, Fleiss' kappa {a['kappa']:.3f}.", ""]
        else:
            lines += ["Agreement: no comparison was judged more than once.", ""]
    return "\n".join(lines) if lines else "no votes yet"


def plot(summary: dict, path: str | Path) -> Path:
    """One panel per question: each pair's win rate of A with its 95% interval (0.5 marked)."""
    rows = [(q, p) for q, s in summary.items() for p in s["pairs"] if p["a_win_rate"] is not None]
    w, left, right, row_h, top = 640, 230, 30, 34, 40
    im = Image.new("RGB", (w, top + row_h * max(len(rows), 1) + 40), "white")
    d = ImageDraw.Draw(im)
    d.text((10, 10), "win rate of A over B, with its 95% Wilson interval; the dark line marks 0.5", fill="black")
    x = lambda v: left + v * (w - left - right)  # noqa: E731
    bottom = top + row_h * max(len(rows), 1)
    for v in (0, 0.25, 0.5, 0.75, 1):
        d.line([(x(v), top - 5), (x(v), bottom)], fill=(200, 200, 200) if v != 0.5 else (120, 120, 120),
               width=1 if v != 0.5 else 2)
        d.text((x(v) - 10, bottom + 6), f"{v:.2f}", fill="black")
    for k, (q, p) in enumerate(rows):
        y = top + row_h * k + row_h // 2
        d.text((10, y - 6), f"{q}: {p['a']} vs {p['b']} (n={p['a_wins'] + p['b_wins']})", fill="black")
        lo, hi = p["ci95"]
        d.line([(x(lo), y), (x(hi), y)], fill=(40, 90, 200), width=3)
        for v in (lo, hi):
            d.line([(x(v), y - 6), (x(v), y + 6)], fill=(40, 90, 200), width=2)
        r = 5
        d.ellipse([x(p["a_win_rate"]) - r, y - r, x(p["a_win_rate"]) + r, y + r], fill=(200, 40, 40))
    return save_atomic(im, path)


def report(args) -> int:
    store = open_existing(args.db)
    summary = summarize(store.votes(), bootstrap=args.bootstrap, seed=args.seed)
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        print()
    else:
        print(format_report(summary))
    if args.plot and summary:
        print(f"wrote {plot(summary, args.plot)}", file=sys.stderr)
    return 0


def add_arguments(parser) -> None:
    """`glide rate serve` and `glide rate report`."""
    from .server import serve

    sub = parser.add_subparsers(dest="rate_command", required=True)
    s = sub.add_parser("serve", help="the blind pairwise-comparison page")
    s.add_argument("--samples", nargs="+", required=True, metavar="NAME=DIR",
                   help="two or more sample folders (images + same-named .txt captions, as glide sample writes)")
    s.add_argument("--db", required=True, help="SQLite votes file (created if missing; WAL mode)")
    s.add_argument("--question", choices=["realism", "caption", "both"], default="both",
                   help="which of the paper's questions to ask")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8765, help="port")
    s.add_argument("--allow-remote", action="store_true", help="allow a --host other than this machine")
    s.set_defaults(func=serve)
    r = sub.add_parser("report", help="win rates, Bradley-Terry Elo and rater agreement from a votes file")
    r.add_argument("--db", required=True, help="the SQLite votes file of glide rate serve")
    r.add_argument("--json", action="store_true", help="print JSON instead of tables")
    r.add_argument("--plot", default=None, help="write a win-rate plot (PNG) here")
    r.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the Elo intervals")
    r.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    r.set_defaults(func=report)
