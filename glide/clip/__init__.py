"""GLIDE's noised CLIP (§3.2): a CLIP that reads noisy images, for CLIP-guided sampling; and standard CLIPs from
open_clip weight files, for CLIP score."""

from .tokenizer import CLIPTokenizer, get_clip_tokenizer
from .model import CLIP_PRESETS, CLIPConfig, NoisedCLIP, get_clip_preset
from .guidance import clip_cond_fn, clip_score, retrieval_accuracy
from .loss import contrastive_loss
from .io import convert_official_clip, load_clip, read_clip_dir, save_clip_dir
from .openclip import OpenCLIP, load_open_clip

__all__ = ["CLIPTokenizer", "get_clip_tokenizer", "CLIP_PRESETS", "CLIPConfig", "NoisedCLIP", "get_clip_preset",
           "clip_cond_fn", "clip_score", "retrieval_accuracy", "contrastive_loss", "convert_official_clip",
           "load_clip", "read_clip_dir", "save_clip_dir", "OpenCLIP", "load_open_clip"]
