"""Evaluation: features, FID/FD, precision/recall, CLIP score."""

from .evaluate import EvalConfig, Scorer, evaluate, format_table
from .metrics import clip_score, fd_from_features, frechet_distance, precision_recall

__all__ = ["EvalConfig", "Scorer", "evaluate", "format_table", "clip_score", "fd_from_features",
           "frechet_distance", "precision_recall"]
