"""Deciding: each record against every rule of a policy, in chunks (one CLIP batch), with per-rule counts and
examples for the report."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from ..datasets import BadImage
from ..policy import ClipJudge, Policy, caption_matcher, load_rule_clip, metadata_value


THUMB = 64  # grid thumbnails


EXAMPLES = 16  # per rule and side in the grids


CHUNK = 256  # records decided together (one CLIP batch)


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
