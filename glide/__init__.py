"""glide: GLIDE text-guided diffusion (Nichol et al. 2021), faithful to OpenAI's checkpoints, trainable."""

__version__ = "0.1.0"

from .errors import GlideError

# The heavy names load on first use (module __getattr__, PEP 562), so that `glide --help` and `glide --version`
# answer without importing torch.
_LAZY = {"GLIDE": "models", "ModelConfig": "config", "PRESETS": "config", "Pipeline": "pipeline",
         "TextConfig": "config", "UNetConfig": "config", "get_preset": "config"}

__all__ = ["GLIDE", "GlideError", "ModelConfig", "PRESETS", "Pipeline", "TextConfig", "UNetConfig", "get_preset"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
