"""Training: the loop, its configuration, checkpoints and distributed plumbing."""

from .config import TrainConfig
from .state import export_run

__all__ = ["TrainConfig", "export_run", "train"]


def train(cfg: TrainConfig, resume: bool = False):
    from .trainer import train as _train

    return _train(cfg, resume)
