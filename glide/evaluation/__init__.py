"""Evaluation: features, FID/FD, Inception Score, precision/recall, CLIP score; the guidance study."""

from .evaluate import EvalConfig, Scorer, Setting, evaluate, format_table
from .report import write_report
from .metrics import clip_score, fd_from_features, frechet_distance, inception_score, precision_recall

__all__ = ["EvalConfig", "Scorer", "Setting", "evaluate", "format_table", "write_report", "clip_score",
           "fd_from_features", "frechet_distance", "inception_score", "precision_recall"]
