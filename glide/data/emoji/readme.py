"""The README.md a built emoji dataset carries: sources, licenses, counts, splits and files."""

from __future__ import annotations

from pathlib import Path

from .captions import HELDOUT_EMOJI, HELDOUT_PAIR, NPM_PACKAGES, SPLITS, STYLES


def write_readme(tmp: Path, summary: dict) -> None:
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
