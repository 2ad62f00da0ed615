"""Concept balancing: draw training images so that near-copies of one concept share that concept's turns.

In the emoji data half of the training images are skin-tone variants: a person or a hand in six tones (26 for some
couples), the same shape in another colour, so uniform draws give them half of every batch. Here the images whose
captions are equal once the matches of a regular expression are removed form one concept, and an image is drawn
with probability proportional to `size ** -power` (size: its concept's image count): power 0 is uniform, power 1
gives every concept the same share, whatever its number of variants. On the emoji data that did not pay: objects
got 1.8x the draws and their samples retrieved their captions less often (docs/training.md, "Balancing concepts:
tried, not adopted"), so it is an option, off by default.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from ..errors import GlideError

# Named patterns, so that a config can say `concept_pattern = "skin-tones"` instead of the regular expression.
NAMED_PATTERNS = {
    # The emoji data's tone phrases: "waving hand, medium-dark skin tone, twemoji style" and, for couples,
    # "kiss, light skin tone, dark skin tone, noto style" are the concept "waving hand, twemoji style" / "kiss, ...".
    "skin-tones": r",? ?\b(?:medium-light|medium-dark|medium|light|dark) skin tones?\b",
}


def concept_regex(pattern: str) -> re.Pattern:
    try:
        return re.compile(NAMED_PATTERNS.get(pattern, pattern))
    except re.error as e:
        raise GlideError(f"concept_pattern {pattern!r} is not a valid regular expression: {e} "
                         f"(or name one of: {', '.join(NAMED_PATTERNS)})") from None


def concept_keys(captions, pattern: str) -> list[str]:
    """Each caption's concept: the caption with every match of `pattern` (a regex or a NAMED_PATTERNS key) removed."""
    rx = concept_regex(pattern)
    return [rx.sub("", c).strip() for c in captions]


def concept_weights(captions, pattern: str, power: float = 1.0) -> np.ndarray:
    """Draw probabilities (float64, summing to 1), one per caption: proportional to the caption's concept size
    to the power -`power`."""
    keys = concept_keys(captions, pattern)
    if not keys:
        raise GlideError("concept balancing needs at least one training image")
    sizes = Counter(keys)
    w = np.array([sizes[k] for k in keys], dtype=np.float64) ** -float(power)
    return w / w.sum()


def source_weights(source, pattern: str, power: float) -> np.ndarray | None:
    """The draw probabilities of a random-access training source's items (its canonical captions), or None when
    no pattern is set (uniform order: a permutation per epoch)."""
    if not pattern:
        return None
    if getattr(source, "streaming", False):
        raise GlideError("concept_pattern needs a folder, a .jsonl manifest or an .npz file, not WebDataset shards")
    return concept_weights([source.caption(i) for i in range(len(source))], pattern, power)


def summary(source, pattern: str, power: float, weights: np.ndarray) -> str:
    """One line for the training log: images, concepts, and what share of the draws goes to concepts with
    several images (skin-tone variants), against their share of the data."""
    sizes = Counter(keys := concept_keys([source.caption(i) for i in range(len(source))], pattern))
    multi = np.array([sizes[k] > 1 for k in keys])
    return (f"concept_pattern {pattern!r}, power {power:g}: {len(keys)} image(s) in {len(sizes)} concept(s); "
            f"concepts with several images hold {multi.mean():.0%} of the images and get {weights[multi].sum():.0%} "
            f"of the draws")
