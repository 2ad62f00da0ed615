"""OpenAI's released GLIDE (filtered) checkpoints: where they live and a local cache for them.

Files are fetched from OpenAI's public URLs (as glide-text2im does) into `$GLIDE_CACHE` (default
`~/.cache/glide`). With no network, place the file there yourself: the error names the URL and path.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import GlideError
from ..files import atomic_write

_ROOT = "https://openaipublic.blob.core.windows.net/diffusion/dec-2021/"
URLS = {
    "base": _ROOT + "base.pt",
    "upsample": _ROOT + "upsample.pt",
    "base-inpaint": _ROOT + "base_inpaint.pt",
    "upsample-inpaint": _ROOT + "upsample_inpaint.pt",
    "clip-image": _ROOT + "clip_image_enc.pt",
    "clip-text": _ROOT + "clip_text_enc.pt",
}


def cache_dir() -> Path:
    return Path(os.environ.get("GLIDE_CACHE") or Path.home() / ".cache" / "glide")


def official_file(name: str, download: bool = True) -> Path:
    """Path to an official checkpoint file, downloading it once if needed."""
    if name not in URLS:
        raise GlideError(f"unknown official checkpoint {name!r}; choose one of {', '.join(URLS)}")
    url = URLS[name]
    path = cache_dir() / url.rsplit("/", 1)[1]
    if path.is_file():
        return path
    if not download:
        raise GlideError(f"official checkpoint {name!r} is not cached: download {url} to {path}")
    try:
        with atomic_write(path, suffix=".part") as f, urllib.request.urlopen(url, timeout=30) as r:
            total = int(r.headers.get("content-length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=path.name) as bar:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except OSError as e:
        raise GlideError(
            f"could not download the official {name!r} checkpoint ({e.__class__.__name__}: {e}). "
            f"Without network, download {url} elsewhere and put it at {path}"
        ) from None
    return path


def converted_dir(name: str) -> Path:
    """Where the converted (safetensors) copy of an official checkpoint is cached."""
    return cache_dir() / f"official-{name}"


def ensure_converted(name: str) -> Path:
    """Convert the official checkpoint once into our format and return the model folder: `official:NAME`
    resolves here, for a GLIDE model (base, upsample, ...) and for the noised CLIP ("clip": the two released
    encoders become one CLIP folder)."""
    out = converted_dir(name)
    if (out / "model.safetensors").is_file():
        return out
    if name == "clip":
        from ..clip.io import convert_official_clip

        convert_official_clip(official_file("clip-image"), official_file("clip-text"), out)
        return out
    from .convert import convert_official

    convert_official(official_file(name), name, out)
    return out


def ensure_official_clip() -> Path:
    """The released noised CLIP as a CLIP folder in the cache (downloaded and converted on first use)."""
    return ensure_converted("clip")


__all__ = ["URLS", "cache_dir", "official_file", "converted_dir", "ensure_converted", "ensure_official_clip"]
