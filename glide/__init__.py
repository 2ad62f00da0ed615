"""glide: GLIDE text-guided diffusion (Nichol et al. 2021), faithful to OpenAI's checkpoints, trainable."""

__version__ = "0.1.0"

from .config import PRESETS, ModelConfig, TextConfig, UNetConfig, get_preset
from .errors import GlideError
from .models import GLIDE
from .pipeline import Pipeline

__all__ = ["GLIDE", "GlideError", "ModelConfig", "PRESETS", "Pipeline", "TextConfig", "UNetConfig", "get_preset"]
