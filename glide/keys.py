"""Translate between our parameter names and the official checkpoint's: the one home of key mapping.

Generic over nn.Module, so both glide.clip (the released CLIP encoders) and glide.official (the released GLIDE
checkpoints) use it from below, and neither imports the other for it.

Each module class may declare `OFFICIAL_NAMES` (child -> official child path) or an `official_name()`
method; walking a parameter's path through the model composes the official key. An empty official
name means the child is flattened into its parent (our `unet.` and `text.` prefixes do not exist there).
"""

from __future__ import annotations

from torch import nn

from .errors import GlideError


def official_key(model: nn.Module, key: str) -> str:
    out: list[str] = []
    module: nn.Module | None = model
    for part in key.split("."):
        name = part
        if module is not None:
            if hasattr(module, "official_name"):
                name = module.official_name(part)
            elif hasattr(module, "OFFICIAL_NAMES"):
                name = module.OFFICIAL_NAMES.get(part, part)
            module = module._modules.get(part)
        if name:
            out.append(name)
    return ".".join(out)


def key_map(model: nn.Module) -> dict[str, str]:
    """{official key: our key} for every tensor of the model's state dict."""
    mapping = {}
    for key in model.state_dict(keep_vars=True):
        mapping[official_key(model, key)] = key
    return mapping


def from_official(model: nn.Module, state_dict: dict, what: str = "checkpoint") -> dict:
    """Rename an official-layout state dict to ours; raise one clear error for missing/extra/misshapen keys."""
    mapping = key_map(model)
    ours = model.state_dict(keep_vars=True)
    missing = [k for k in mapping if k not in state_dict]
    extra = [k for k in state_dict if k not in mapping]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} unexpected key(s) (e.g. {', '.join(extra[:3])})")
        raise GlideError(f"{what} does not match the model: " + "; ".join(parts))
    out = {}
    for off, native in mapping.items():
        t = state_dict[off]
        if tuple(t.shape) != tuple(ours[native].shape):
            raise GlideError(
                f"{what} does not match the model: {off} has shape {tuple(t.shape)}, expected {tuple(ours[native].shape)}"
            )
        out[native] = t
    return out


def to_official(model: nn.Module, state_dict: dict) -> dict:
    return {official_key(model, k): v for k, v in state_dict.items()}
