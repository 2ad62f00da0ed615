"""`glide eval`: sample a base model on held-out captions and score the samples against the real images.

Each *setting* is a guidance configuration: classifier-free guidance at a scale, or CLIP guidance at a scale
(on the plainly conditional model by default, as the paper does). Every setting sees the same captions and the
same starting noise, so rows differ only by the guidance. Per row:
  - fd_clip: Frechet distance in the noised CLIP's image-embedding space (t = 0); needs no outside weights;
  - is_clip: an Inception-Score analogue that needs no outside weights: the CLIP as a zero-shot classifier
    over the evaluated captions (see `Scorer.zero_shot_probs`); comparable only within one table;
  - fid, is: standard FID and Inception Score, only when the user supplies the Inception weights file;
  - clip_score: 100 * cos(image, its caption) under the CLIP, clipped at 0, averaged;
  - precision / recall: k-NN manifold overlap in the CLIP space (and in Inception space, with its weights);
  - judge_clip_score, judge_fd: the same under a second, independently trained CLIP, when one is given.
Generated images are cached per batch under the output folder, keyed by model, captions, seed and settings,
so an interrupted run resumes where it stopped. Real-image features are cached by data file and network.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import defaults, guidance, samplers
from ..checkpoint import model_key  # noqa: F401  (glide eval's cache keys; imported from here by scripts)
from ..data.arrays import arrays_path, load_arrays
from ..errors import GlideError
from ..files import atomic_write
from ..images import from_uint8, grid, save_atomic, to_uint8
from .metrics import clip_score, fd_from_features, inception_score, precision_recall, softmax_probs


@dataclass
class EvalConfig:
    data: str = "data/emoji"  # an emoji_64.npz, or the folder holding it
    splits: tuple[str, ...] = ("heldout_pair", "heldout_emoji")
    n: int = defaults.EVAL_N  # images per setting (and real images drawn)
    guidance_scales: tuple[float, ...] = defaults.EVAL_CFG_SCALES  # classifier-free guidance rows
    clip_scales: tuple[float, ...] = ()  # CLIP guidance rows (0 = the unguided conditional model)
    clip_cfg_scale: float = 1.0  # classifier-free scale under CLIP guidance (1: the conditional model alone)
    steps: int | str = defaults.STEPS
    sampler: str = defaults.SAMPLER
    seed: int = 0
    batch_size: int = defaults.EVAL_BATCH_SIZE
    k: int = 3  # neighbourhood size for precision/recall
    is_splits: int = 1  # Inception Score splits (the original protocol: 10, over 50k images)
    # Score the cascade's 256 px samples (the paper's FID protocol): each base sample through the upsampler.
    upsample: bool = False
    upsample_steps: int | str = defaults.UPSAMPLE_STEPS
    upsample_sampler: str = defaults.UPSAMPLE_SAMPLER
    upsample_temperature: float = defaults.UPSAMPLE_TEMPERATURE


@dataclass(frozen=True)
class Setting:
    """One row of a table: classifier-free scale, plus a CLIP-guidance scale for the CLIP series."""

    guidance: str  # "cfg" or "clip": the series the row belongs to
    guidance_scale: float
    clip_scale: float = 0.0

    @property
    def name(self) -> str:
        if self.guidance == "cfg":
            return f"g{self.guidance_scale:g}"
        return f"clip{self.clip_scale:g}" + (f"-g{self.guidance_scale:g}" if self.guidance_scale != 1 else "")

    @property
    def sampling_name(self) -> str:
        """Names what is sampled, whatever the series: CLIP scale 0 at cfg 1 is the cfg-1 row's samples."""
        return f"g{self.guidance_scale:g}" + (f"-clip{self.clip_scale:g}" if self.clip_scale else "")


def settings(cfg: EvalConfig) -> list[Setting]:
    return ([Setting("cfg", float(s)) for s in cfg.guidance_scales]
            + [Setting("clip", float(cfg.clip_cfg_scale), float(c)) for c in cfg.clip_scales])


def _npz_path(data: str | os.PathLike, size: int) -> Path:
    p = arrays_path(data, size)
    if not p.is_file():
        raise GlideError(f"no evaluation data at {p}: build it with `glide data emoji --out DIR`")
    return p


def load_reference(cfg: EvalConfig, size: int) -> tuple[np.ndarray, list[str], Path]:
    """The real images (uint8 [N, S, S, 3]) and captions of `cfg.n` items of the held-out splits, drawn with
    a fixed seed, and the file they came from."""
    path = _npz_path(cfg.data, size)
    arrays = load_arrays(path, cfg.splits)
    images, captions = arrays["images"], arrays["captions"]
    if cfg.n < len(images):  # the same draw as choosing from the split rows' file positions
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(images), cfg.n, replace=False))
        images, captions = images[pick], [captions[i] for i in pick]
    if images.shape[1] != size:
        raise GlideError(f"{path} holds {images.shape[1]} px images; the model makes {size} px ones")
    return images, captions, path


def to_model_range(images: np.ndarray) -> torch.Tensor:
    return from_uint8(images)


@torch.no_grad()
def clip_image_features(clip, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    device = clip.logit_scale.device
    side = clip.cfg.image_size
    out = []
    for s in range(0, len(images), batch_size):
        x = to_model_range(images[s : s + batch_size]).to(device)
        if x.shape[-1] != side:  # a CLIP sees images at its own resolution (256 px cascade samples -> 64 px)
            x = torch.nn.functional.interpolate(x, size=(side, side), mode="bicubic", antialias=True).clamp(-1, 1)
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


def _precision_key(precision) -> str:
    """A precision in a sample cache key: the torch dtype as before mixed precision existed (so old caches stay
    valid), with the fp32 threshold when there is one."""
    return str(precision.dtype) + (f"@{precision.min_alpha_bar:g}" if precision.min_alpha_bar else "")


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_key(path: str | os.PathLike) -> list:
    st = os.stat(path)
    return [str(Path(path).resolve()), st.st_size, int(st.st_mtime)]


def _savez_atomic(path: Path, **arrays) -> None:
    with atomic_write(path) as f:
        np.savez_compressed(f, **arrays)


def _interval_key(pipe, interval, reuse: bool = False) -> list[str]:
    """A guidance interval (and reuse outside it; two rows on a distilled model) in a sample cache key, as the model
    timesteps it guides, so "0.5,inf" and "0.5,1e9" share samples; none when every timestep is guided."""
    key = ["two-row"] if pipe.cfg.distilled_guidance and not pipe.distilled_guidance else []
    t = np.flatnonzero(guidance.guided_timesteps(pipe.alpha_bar(pipe.model), interval)) if interval else None
    if t is None or t.size == pipe.model.cfg.diffusion_steps:
        return key
    return key + ["guided-t" + (f"{t[0]}-{t[-1]}" if t.size else "none")] + (["reuse"] if reuse else [])


def _cached(path: Path, make):
    """np.ndarray from `path`, else make() and store it atomically."""
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["x"]
    x = make()
    _savez_atomic(path, x=x)
    return x


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "glide" / "eval"


@dataclass
class Scorer:
    """Feature networks and the real-image statistics they are compared against.

    `clip` gives the offline metrics; `inception` (optional) standard FID and IS; `judge` (optional) is a
    second CLIP, trained independently of the one that guides sampling, for the adversarial-example check.
    """

    clip: object
    inception: object | None = None
    inception_key: str = ""
    clip_key: str = ""
    cache_dir: Path = field(default_factory=default_cache_dir)
    judge: object | None = None
    judge_key: str = ""

    def _clips(self) -> dict[str, tuple[object, str]]:
        out = {"clip": (self.clip, self.clip_key)}
        if self.judge is not None:
            out["judge"] = (self.judge, self.judge_key)
        return out

    def real_features(self, images: np.ndarray, ref_key: list) -> dict[str, np.ndarray]:
        feats = {name: _cached(self.cache_dir / f"real-clip-{_digest(ref_key, key)}.npz",
                               lambda net=net: clip_image_features(net, images))
                 for name, (net, key) in self._clips().items()}
        if self.inception is not None:
            feats["inception"] = _cached(
                self.cache_dir / f"real-inception-{_digest(ref_key, self.inception_key)}.npz",
                lambda: inception_features(self.inception, images))
        return feats

    def text_features(self, captions: Sequence[str]) -> dict[str, np.ndarray]:
        return {name: clip_text_features(net, captions) for name, (net, _) in self._clips().items()}

    @staticmethod
    def zero_shot_probs(clip, image_emb: np.ndarray, captions: Sequence[str], text_emb: np.ndarray) -> np.ndarray:
        """p(caption | image) over the distinct captions, from the CLIP's own trained temperature: the
        classifier behind is_clip. Repeated captions count as one class."""
        _, first = np.unique(np.asarray(captions), return_index=True)
        classes = text_emb[np.sort(first)]
        scale = float(clip.scale().detach())
        return softmax_probs(scale * image_emb.astype(np.float64) @ classes.astype(np.float64).T)

    def score(self, images: np.ndarray | None, captions: Sequence[str], real: dict[str, np.ndarray], k: int,
              text: dict[str, np.ndarray], is_splits: int = 1) -> dict[str, float]:
        """Metrics of `images` (uint8 [N,S,S,3]); with images=None, of the real images themselves."""
        is_real = images is None
        row: dict[str, float] = {}
        feats = {name: real[name] if is_real else clip_image_features(net, images)
                 for name, (net, _) in self._clips().items()}
        f = feats["clip"]
        if not is_real:
            row["fd_clip"] = fd_from_features(real["clip"], f)
        row["is_clip"] = inception_score(self.zero_shot_probs(self.clip, f, captions, text["clip"]), is_splits)[0]
        if self.inception is not None:
            f_inc = real["inception"] if is_real else inception_features(self.inception, images)
            if not is_real:
                row["fid"] = fd_from_features(real["inception"], f_inc)
                row["precision_inception"], row["recall_inception"] = precision_recall(real["inception"], f_inc, k=k)
            probs = softmax_probs(self.inception.logits(torch.as_tensor(f_inc)).double().numpy())
            row["is"] = inception_score(probs, is_splits)[0]
        row["clip_score"] = clip_score(f, text["clip"])
        if not is_real:
            row["precision"], row["recall"] = precision_recall(real["clip"], f, k=k)
        if "judge" in feats:
            if not is_real:
                row["judge_fd"] = fd_from_features(real["judge"], feats["judge"])
            row["judge_clip_score"] = clip_score(feats["judge"], text["judge"])
        return row


def check_settings(pipe, cfg: EvalConfig) -> None:
    """Refuse up front what would otherwise fail after other settings were sampled."""
    if not cfg.guidance_scales and not cfg.clip_scales:
        raise GlideError("no guidance scales given")
    if cfg.upsample and getattr(pipe, "upsampler", None) is None:
        raise GlideError("scoring 256 px samples (--upsample) needs an upsampler model (--upsampler)")
    if any(cfg.clip_scales):
        samplers.check(cfg.sampler, clip_guided=True)
        if getattr(pipe, "clip", None) is None:
            raise GlideError("CLIP-guided rows need a noised CLIP (--clip-model)")


def evaluate(pipe, scorer: Scorer, cfg: EvalConfig, out_dir: str | os.PathLike | None = None,
             progress: bool = True, reference: tuple[np.ndarray, list[str], list] | None = None) -> list[dict]:
    """One row per setting, after a first row scoring the real held-out images themselves (its CLIP score is
    the ceiling; FD, precision and recall against themselves would be 0, 1 and 1, so they are left out).
    With `out_dir`, samples are cached in out_dir/samples/ and each setting gets a grid NAME.png.
    `reference` = (images, captions, cache key) replaces the emoji held-out selection (e.g. MS-COCO)."""
    check_settings(pipe, cfg)
    size = eval_size(pipe, cfg)
    if reference is None:
        real_images, captions, path = load_reference(cfg, size)
        ref_key = [_file_key(path), list(cfg.splits), cfg.n, cfg.seed]
    else:
        real_images, captions, ref_key = reference
    real = scorer.real_features(real_images, ref_key)
    text = scorer.text_features(captions)
    rows = [{"guidance": "real", "guidance_scale": None, "clip_scale": None, "n": len(captions),
             **scorer.score(None, captions, real, cfg.k, text, cfg.is_splits)}]
    out = Path(out_dir) if out_dir else None
    for setting in settings(cfg):
        fake, seconds = sample_all(pipe, captions, setting, cfg, out / "samples" if out else None, progress)
        if out:
            save_atomic(pair_grid(real_images, fake), out / f"{setting.name}.png")
        row = {"guidance": setting.guidance, "guidance_scale": setting.guidance_scale,
               "clip_scale": setting.clip_scale, "n": len(fake),
               **scorer.score(fake, captions, real, cfg.k, text, cfg.is_splits), "sample_seconds": round(seconds, 1)}
        rows.append(row)
        if progress:
            tqdm.write(json.dumps(_rounded(row)))
    return rows


def eval_size(pipe, cfg: EvalConfig) -> int:
    """The side of the images scored: the base model's, or the upsampler's with `cfg.upsample`."""
    return pipe.upsampler.cfg.unet.image_size if cfg.upsample else pipe.cfg.unet.image_size


def sample_all(pipe, captions: Sequence[str], setting: Setting, cfg: EvalConfig, cache: Path | None = None,
               progress: bool = True) -> tuple[np.ndarray, float]:
    """uint8 [N, S, S, 3], one sample per caption, and the seconds of sampling they cost.

    Batch b starts from the noise of seed `cfg.seed * 100003 + b`, so every setting sees the same noise. With
    `cache`, each batch is stored as it finishes (with the time it took) under a key of the model, the
    batch's captions, its seed and every sampling setting, and found again on the next run.
    """
    chunks, seconds = [], 0.0
    bar = tqdm(total=len(captions), desc=f"eval {setting.name}", unit="img", disable=not progress)
    clip_key = pipe.clip_key if setting.clip_scale else ""
    # The 256 px samples depend on the upsampler and its settings as well.
    up_key = ([getattr(pipe, "upsampler_key", ""), str(cfg.upsample_steps), cfg.upsample_sampler,
               cfg.upsample_temperature, _precision_key(pipe.precision_for(pipe.upsampler))] if cfg.upsample else [])
    for b, s in enumerate(range(0, len(captions), cfg.batch_size)):
        chunk = list(captions[s : s + cfg.batch_size])
        seed = cfg.seed * 100_003 + b
        path = None
        if cache is not None:
            key = _digest(pipe.model_key, _precision_key(pipe.precision), clip_key, chunk, seed, str(cfg.steps), cfg.sampler,
                          setting.guidance_scale, setting.clip_scale, *up_key,
                          *_interval_key(pipe, pipe.guidance_interval if setting.guidance_scale not in (0, 1) else None,
                                         pipe.guidance_reuse))
            folder = setting.sampling_name + ("-256" if cfg.upsample else "")
            path = cache / folder / f"b{b:04d}-{key}.npz"
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                x, dt = z["x"], float(z["seconds"])
        else:
            t0 = time.perf_counter()
            g = pipe.generator(seed)
            x = pipe.sample(chunk, guidance_scale=setting.guidance_scale, steps=cfg.steps, sampler=cfg.sampler,
                            generator=g, progress=False,
                            cond_fn=pipe.clip_guidance(chunk, setting.clip_scale) if setting.clip_scale else None)
            if cfg.upsample:  # as Pipeline(..., upsample=True) does: the same generator goes on to the upsampler
                x = pipe._upsample(x, chunk, cfg.upsample_steps, cfg.upsample_sampler, cfg.upsample_temperature, g,
                                   False)
            x, dt = to_uint8(x).numpy(), time.perf_counter() - t0
            if path is not None:
                _savez_atomic(path, x=x, seconds=np.float64(dt))
        chunks.append(x)
        seconds += dt
        bar.update(len(chunk))
    bar.close()
    return np.concatenate(chunks), seconds


def pair_grid(real: np.ndarray, fake: np.ndarray, n: int = 16):
    """The first n (real, generated) pairs side by side, 8 tiles a row."""
    from PIL import Image

    tiles = [Image.fromarray(im) for pair in zip(real[:n], fake[:n]) for im in pair]
    return grid(tiles, cols=8)


def _rounded(row: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


COLUMNS = ["guidance", "guidance_scale", "clip_scale", "n", "fd_clip", "fid", "is_clip", "is", "clip_score",
           "precision", "recall", "precision_inception", "recall_inception", "judge_fd", "judge_clip_score",
           "sample_seconds"]
_TWO_DECIMALS = {"fid", "is", "is_clip", "clip_score", "judge_clip_score"}


def format_table(rows: list[dict]) -> str:
    """A markdown table of the rows; columns no row has are left out, and so is the CLIP series' column
    when there is no CLIP-guided row."""
    cols = [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    if not any(r.get("guidance") == "clip" for r in rows):
        cols = [c for c in cols if c not in ("guidance", "clip_scale")]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if c == "guidance_scale" and r.get("guidance") == "real" and "guidance" not in cols:
                cells.append("real")
            elif v is None:
                cells.append("")
            elif c in ("guidance_scale", "clip_scale", "sample_seconds"):
                cells.append(f"{v:g}")
            elif isinstance(v, float):
                cells.append(f"{v:.2f}" if c in _TWO_DECIMALS else f"{v:.3f}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def config_dict(cfg: EvalConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
