"""`glide eval`: sample a base model on held-out captions and score the samples against the real images.

For each guidance scale the same captions and seeds are used, so rows differ only by the scale. Per row:
  - fd_clip: Frechet distance in the noised CLIP's image-embedding space (t = 0); needs no outside weights;
  - fid: standard FID (Inception pool3), only when the user supplies the Inception weights file;
  - clip_score: 100 * cos(image, its caption) under the CLIP, clipped at 0, averaged;
  - precision / recall: k-NN manifold overlap in the CLIP space.
Real features are cached (keyed by data file, selection and feature network), and generated images are
kept as .npz in the output folder, so re-scoring does not re-sample.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import GlideError
from ..images import grid, save_atomic
from .metrics import clip_score, fd_from_features, precision_recall


@dataclass
class EvalConfig:
    data: str = "data/emoji"  # an emoji_64.npz, or the folder holding it
    splits: tuple[str, ...] = ("heldout_pair", "heldout_emoji")
    n: int = 200  # images per guidance scale (and real images drawn)
    guidance_scales: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0)
    steps: int | str = 25
    sampler: str = "dpm++2m"
    seed: int = 0
    batch_size: int = 16
    k: int = 3  # neighbourhood size for precision/recall


def _npz_path(data: str | os.PathLike, size: int) -> Path:
    p = Path(data)
    if p.is_dir():
        p = p / f"emoji_{size}.npz"
    if not p.is_file():
        raise GlideError(f"no evaluation data at {p}: build it with `glide data emoji --out DIR`")
    return p


def load_reference(cfg: EvalConfig, size: int) -> tuple[np.ndarray, list[str], Path]:
    """The real images (uint8 [N, S, S, 3]) and captions of `cfg.n` items of the held-out splits, drawn with
    a fixed seed, and the file they came from."""
    path = _npz_path(cfg.data, size)
    with np.load(path, allow_pickle=False) as z:
        split = z["split"]
        idx = np.flatnonzero(np.isin(split, list(cfg.splits)))
        if len(idx) == 0:
            raise GlideError(f"{path} has no images in split(s) {', '.join(cfg.splits)}")
        if cfg.n < len(idx):
            idx = np.sort(np.random.default_rng(cfg.seed).choice(idx, cfg.n, replace=False))
        images = z["images"][idx]
        captions = [str(c) for c in z["captions"][idx]]
    if images.shape[1] != size:
        raise GlideError(f"{path} holds {images.shape[1]} px images; the model makes {size} px ones")
    return images, captions, path


def to_model_range(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def clip_image_features(clip, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    device = clip.logit_scale.device
    out = []
    for s in range(0, len(images), batch_size):
        x = to_model_range(images[s : s + batch_size]).to(device)
        out.append(clip.image_embeddings(x, 0).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def clip_text_features(clip, captions: Sequence[str], batch_size: int = 256) -> np.ndarray:
    from ..clip.tokenizer import get_clip_tokenizer

    tok = get_clip_tokenizer()
    device = clip.logit_scale.device
    out = []
    for s in range(0, len(captions), batch_size):
        tokens, lens = tok(list(captions[s : s + batch_size]), clip.cfg.text_context)
        out.append(clip.text_embeddings_from_tokens(tokens.to(device), lens.to(device)).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def inception_features(net, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    device = next(net.parameters()).device
    return torch.cat([net(to_model_range(images[s : s + batch_size]).to(device)).float().cpu()
                      for s in range(0, len(images), batch_size)]).numpy()


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_key(path: str | os.PathLike) -> list:
    st = os.stat(path)
    return [str(Path(path).resolve()), st.st_size, int(st.st_mtime)]


def _cached(path: Path, make):
    """np.ndarray from `path`, else make() and store it atomically."""
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["x"]
    x = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, x=x)
    os.replace(tmp, path)
    return x


def model_key(path: Path) -> str:
    """Identity of a model folder or weights file for caches: names, sizes and times of its files."""
    path = Path(path)
    files = sorted(path.glob("*")) if path.is_dir() else [path]
    return json.dumps([[f.name, os.stat(f).st_size, int(os.stat(f).st_mtime)] for f in files if f.is_file()])


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "glide" / "eval"


@dataclass
class Scorer:
    """Feature networks and the real-image statistics they are compared against."""

    clip: object
    inception: object | None = None
    inception_key: str = ""
    clip_key: str = ""
    cache_dir: Path = field(default_factory=default_cache_dir)

    def real_features(self, images: np.ndarray, ref_key: list) -> dict[str, np.ndarray]:
        feats = {"clip": _cached(self.cache_dir / f"real-clip-{_digest(ref_key, self.clip_key)}.npz",
                                 lambda: clip_image_features(self.clip, images))}
        if self.inception is not None:
            feats["inception"] = _cached(
                self.cache_dir / f"real-inception-{_digest(ref_key, self.inception_key)}.npz",
                lambda: inception_features(self.inception, images))
        return feats

    def score(self, fake: np.ndarray, captions: Sequence[str], real: dict[str, np.ndarray], k: int,
              text_emb: np.ndarray | None = None) -> dict[str, float]:
        f_clip = clip_image_features(self.clip, fake)
        text_emb = clip_text_features(self.clip, captions) if text_emb is None else text_emb
        p, r = precision_recall(real["clip"], f_clip, k=k)
        row = {"fd_clip": fd_from_features(real["clip"], f_clip), "clip_score": clip_score(f_clip, text_emb),
               "precision": p, "recall": r}
        if self.inception is not None:
            row["fid"] = fd_from_features(real["inception"], inception_features(self.inception, fake))
        return row


def evaluate(pipe, scorer: Scorer, cfg: EvalConfig, out_dir: str | os.PathLike | None = None,
             progress: bool = True) -> list[dict]:
    """One row per guidance scale, plus a first row scoring the real held-out images themselves
    (its CLIP score is the ceiling; its FD and precision/recall are 0 and 1 by construction).
    With `out_dir`, samples are kept in out_dir/samples/ (and reused) and each scale S gets a grid gS.png."""
    size = pipe.cfg.unet.image_size
    real_images, captions, path = load_reference(cfg, size)
    ref_key = [_file_key(path), list(cfg.splits), cfg.n, cfg.seed]
    real = scorer.real_features(real_images, ref_key)
    text_emb = clip_text_features(scorer.clip, captions)
    rows = [{"guidance_scale": "real", "n": len(captions),
             "clip_score": clip_score(real["clip"], text_emb)}]
    out = Path(out_dir) if out_dir else None
    pipe_key = getattr(pipe, "model_key", "")
    for scale in cfg.guidance_scales:
        def make(scale=scale) -> np.ndarray:
            return sample_all(pipe, captions, scale, cfg, progress)

        if out:
            key = _digest(pipe_key, ref_key, scale, str(cfg.steps), cfg.sampler, cfg.batch_size)
            fake = _cached(out / "samples" / f"samples-g{scale:g}-{key}.npz", make)
            save_atomic(pair_grid(real_images, fake), out / f"g{scale:g}.png")
        else:
            fake = make()
        row = {"guidance_scale": scale, "n": len(fake), **scorer.score(fake, captions, real, cfg.k, text_emb)}
        rows.append(row)
        if progress:
            tqdm.write(json.dumps(_rounded(row)))
    return rows


def sample_all(pipe, captions: Sequence[str], scale: float, cfg: EvalConfig, progress: bool) -> np.ndarray:
    """uint8 [N, S, S, 3]: one sample per caption, seeded per batch so every scale sees the same noise."""
    chunks = []
    bar = tqdm(total=len(captions), desc=f"eval g={scale:g}", unit="img", disable=not progress)
    for b, s in enumerate(range(0, len(captions), cfg.batch_size)):
        chunk = list(captions[s : s + cfg.batch_size])
        x = pipe.sample(chunk, guidance_scale=scale, steps=cfg.steps, sampler=cfg.sampler,
                        generator=pipe._generator(cfg.seed * 100_003 + b), progress=False)
        chunks.append(((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
        bar.update(len(chunk))
    bar.close()
    return np.concatenate(chunks)


def pair_grid(real: np.ndarray, fake: np.ndarray, n: int = 16):
    """The first n (real, generated) pairs side by side, 8 tiles a row."""
    from PIL import Image

    tiles = [Image.fromarray(im) for pair in zip(real[:n], fake[:n]) for im in pair]
    return grid(tiles, cols=8)


def _rounded(row: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def format_table(rows: list[dict]) -> str:
    cols = ["guidance_scale", "n", "fd_clip", "fid", "clip_score", "precision", "recall"]
    cols = [c for c in cols if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            if c == "guidance_scale" and isinstance(v, float):
                cells.append(f"{v:g}")
            elif isinstance(v, float):
                cells.append(f"{v:.2f}" if c in ("fid", "clip_score") else f"{v:.3f}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def config_dict(cfg: EvalConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
