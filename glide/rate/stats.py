"""The statistics of pairwise human judgements: win rates with Wilson intervals, Bradley-Terry strengths as Elo
scores with bootstrap intervals (as GLIDE's human evaluation reports them), and agreement between raters.

A vote here is (model_a, model_b, winner) with winner one of the two; skips are counted apart and never enter
these numbers.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile
ELO_BASE = 1000.0  # the mean Elo of the models compared


def wilson(wins: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (sensible at 0 and 100%, unlike the Wald interval)."""
    if n == 0:
        return (0.0, 1.0)
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def win_matrix(votes: Sequence[tuple[str, str, str]], models: Sequence[str]) -> np.ndarray:
    """W[i, j] = times model i beat model j."""
    idx = {m: k for k, m in enumerate(models)}
    w = np.zeros((len(models), len(models)))
    for a, b, winner in votes:
        loser = b if winner == a else a
        w[idx[winner], idx[loser]] += 1
    return w


def strongly_connected(w: np.ndarray) -> bool:
    """Whether every model beat, through some chain of wins, every other: the condition under which the
    Bradley-Terry maximum-likelihood estimate exists (Zermelo 1929; Ford 1957)."""
    k = len(w)
    if k < 2:
        return True
    for adj in (w > 0, (w > 0).T):
        seen, todo = {0}, [0]
        while todo:
            i = todo.pop()
            for j in np.flatnonzero(adj[i]):
                if j not in seen:
                    seen.add(int(j))
                    todo.append(int(j))
        if len(seen) < k:
            return False
    return True


def bradley_terry(w: np.ndarray, iters: int = 10_000, tol: float = 1e-12) -> np.ndarray | None:
    """Maximum-likelihood strengths (geometric mean 1) by Hunter's (2004) MM iteration, or None where the MLE
    does not exist (a model that never lost, or never won, within the comparison graph)."""
    if not strongly_connected(w):
        return None
    n = w + w.T  # comparisons per pair
    wins = w.sum(1)
    p = np.ones(len(w))
    for _ in range(iters):
        denom = (n / (p[:, None] + p[None, :])).sum(1)
        new = wins / denom
        new /= math.exp(np.log(new).mean())
        if np.abs(new - p).max() < tol:
            return new
        p = new
    return p


def elo(strengths: np.ndarray) -> np.ndarray:
    """Bradley-Terry strengths -> Elo: P(i beats j) = 1 / (1 + 10^((E_j - E_i) / 400)), mean ELO_BASE."""
    e = 400 * np.log10(strengths)
    return e - e.mean() + ELO_BASE


def bootstrap_elo(votes: Sequence[tuple[str, str, str]], models: Sequence[str], samples: int = 1000,
                  seed: int = 0) -> tuple[np.ndarray | None, int]:
    """2.5 and 97.5 percentiles [2, k] of each model's Elo over resamples of the votes (with replacement),
    and the number of resamples in which the MLE existed (the others are left out)."""
    rng = np.random.default_rng(seed)
    idx = {m: k for k, m in enumerate(models)}
    a = np.array([idx[v[0]] for v in votes])
    b = np.array([idx[v[1]] for v in votes])
    win = np.array([idx[v[2]] for v in votes])
    lose = np.where(win == a, b, a)
    k, got = len(models), []
    for _ in range(samples):
        pick = rng.integers(0, len(votes), len(votes))
        w = np.zeros((k, k))
        np.add.at(w, (win[pick], lose[pick]), 1)
        s = bradley_terry(w, iters=2000, tol=1e-9)
        if s is not None:
            got.append(elo(s))
    if not got:
        return None, 0
    return np.percentile(np.stack(got), [2.5, 97.5], axis=0), len(got)


def agreement(items: dict[object, list[str]]) -> dict[str, float | int] | None:
    """Agreement between raters on items judged more than once: observed pairwise agreement P_o (the share of
    pairs of judgements of an item that agree, items weighted equally), chance agreement P_e from the
    overall answer proportions, and Fleiss' kappa = (P_o - P_e) / (1 - P_e). `items`: item -> answers."""
    multi = {k: v for k, v in items.items() if len(v) >= 2}
    if not multi:
        return None
    po = []
    totals: Counter = Counter()
    for answers in multi.values():
        n, c = len(answers), Counter(answers)
        po.append(sum(m * (m - 1) for m in c.values()) / (n * (n - 1)))
        totals.update(answers)
    p_o = float(np.mean(po))
    total = sum(totals.values())
    p_e = sum((m / total) ** 2 for m in totals.values())
    kappa = (p_o - p_e) / (1 - p_e) if p_e < 1 else float("nan")
    return {"items": len(multi), "judgements": total, "observed": p_o, "chance": p_e, "kappa": kappa}


def summarize(votes: list[dict], bootstrap: int = 1000, seed: int = 0) -> dict:
    """Per question: win rates per pair, Bradley-Terry Elo with bootstrap intervals, rater agreement.

    `votes`: dicts with question, model_a, model_b, winner (None for a skip), rater, caption, image_a, image_b.
    """
    out = {}
    for question in sorted({v["question"] for v in votes}):
        qv = [v for v in votes if v["question"] == question]
        decided = [(v["model_a"], v["model_b"], v["winner"]) for v in qv if v["winner"] is not None]
        models = sorted({m for v in qv for m in (v["model_a"], v["model_b"])})
        pairs = []
        by_pair: dict[tuple[str, str], list] = defaultdict(list)
        for v in qv:
            a, b = sorted((v["model_a"], v["model_b"]))
            by_pair[a, b].append(v["winner"])
        for (a, b), winners in sorted(by_pair.items()):
            wa, wb = winners.count(a), winners.count(b)
            lo, hi = wilson(wa, wa + wb)
            pairs.append({"a": a, "b": b, "a_wins": wa, "b_wins": wb, "skips": winners.count(None),
                          "a_win_rate": wa / (wa + wb) if wa + wb else None, "ci95": [lo, hi]})
        w = win_matrix(decided, models)
        s = bradley_terry(w) if decided else None
        scores = None
        if s is not None:
            scores = {m: {"elo": float(e)} for m, e in zip(models, elo(s))}
            ci, ok = bootstrap_elo(decided, models, bootstrap, seed) if bootstrap else (None, 0)
            for k, m in enumerate(models):
                scores[m]["ci95"] = [float(ci[0, k]), float(ci[1, k])] if ci is not None else None
            scores_note = f"{ok} of {bootstrap} bootstrap resamples had a finite estimate" if bootstrap else ""
        else:
            scores_note = ("no finite Bradley-Terry estimate: some model never lost (or never won) against the "
                           "others; see the win rates")
        items: dict[object, list[str]] = defaultdict(list)
        for v in qv:
            if v["winner"] is not None:
                key = (v["caption"], *sorted([(v["model_a"], v["image_a"]), (v["model_b"], v["image_b"])]))
                items[key].append(v["winner"])
        out[question] = {"votes": len(qv), "decided": len(decided), "skips": len(qv) - len(decided),
                         "raters": len({v["rater"] for v in qv}), "models": models, "pairs": pairs,
                         "elo": scores, "elo_note": scores_note, "agreement": agreement(items)}
    return out
