"""The sampling defaults, in one place.

The command line, the Python API (`Pipeline`), the web page and `glide eval` all read these names, so
changing a value here changes it everywhere (and `glide ... --help` shows the new value). The README states
them once and points here. This module imports nothing, so the command line can parse its arguments
without loading torch.
"""

# Text-to-image sampling: SDE-DPM-Solver++(2M) is good in 15-25 steps (docs/benchmarks.md).
SAMPLER = "dpm++2m-sde"
STEPS = 20
GUIDANCE = 3.0  # classifier-free guidance scale
# Classifier-free guidance only where the noise level sigma = sqrt((1 - alpha_bar) / alpha_bar) lies in (low, high];
# elsewhere the conditional half runs alone, one forward pass instead of two (glide.guidance). None: every step.
# Text-to-image and SDEdit guide every step: on the bundled base, sigma > 0.5 cost a small but measurable 0.06 of
# CLIP score at n = 512 (docs/benchmarks.md, "Guidance in a limited interval").
GUIDANCE_INTERVAL: tuple[float, float] | None = None
# Inpainting (guidance 5) with a v-prediction model (the bundled base) is better on every measure with sigma > 0.5,
# and 6 of the 20 steps skip their second half. eps models (the official checkpoints) are guided at every step, as
# the official notebooks do.
INPAINT_GUIDANCE_INTERVAL = (0.5, float("inf"))
# Outside an interval, reuse the last guided step's difference instead of dropping guidance (--guidance-reuse).
# Off: for text-to-image at sigma > 0.5 it recovers most of the CLIP score (-0.013 +- 0.012 against every step) but
# still moves colours measurably (+0.19 +- 0.06; docs/benchmarks.md); inpainting scores best without guidance there.
GUIDANCE_REUSE = False


def inpaint_guidance_interval(prediction: str) -> tuple[float, float] | None:
    """The default inpainting guidance interval of a model, by what it predicts ("eps" or "v")."""
    return INPAINT_GUIDANCE_INTERVAL if prediction == "v" else None


def interval_text(interval: tuple[float, float] | None) -> str:
    """A guidance interval as `--guidance-interval` and scene scripts take it and PNG settings, eval results and
    cache keys record it: "0.5,inf", or "all" for None (every step guided; JSON has no number for infinity)."""
    return f"{float(interval[0]):g},{float(interval[1]):g}" if interval else "all"


def parse_interval(text: str) -> tuple[float, float] | None:
    """The inverse of `interval_text`: "LOW,HIGH" (HIGH may be inf) or "all" (None). ValueError if malformed."""
    if text.strip().lower() == "all":
        return None
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected LOW,HIGH (two noise levels) or 'all', got {text!r}") from None
    if not 0 <= low < high:  # also false for NaN
        raise ValueError(f"expected 0 <= LOW < HIGH, got {text!r}")
    return low, high


# Inpainting keeps most of the image, and a stronger pull towards the prompt helps the repainted region.
INPAINT_GUIDANCE = 5.0

# SDEdit from a sketch (glide sdedit, the web page's Sketch tab): keep the layout and colours, redraw the rest.
SKETCH_STRENGTH = 0.6

# CLIP guidance shifts the mean of each ancestral step (GLIDE section 3.2), so it needs a sampler that takes a
# cond_fn (glide.samplers.GUIDABLE); like the official notebook it runs 100 steps.
CLIP_SAMPLER = "ddpm"
CLIP_STEPS = 100

# The 64 -> 256 upsampler, as in the official notebook: 27 respaced steps of DDIM, initial noise scaled by 0.997.
UPSAMPLE_STEPS = "fast27"
UPSAMPLE_SAMPLER = "ddim"
UPSAMPLE_TEMPERATURE = 0.997

# `glide eval`: a row per classifier-free scale, EVAL_N held-out captions; `glide eval coco` draws COCO_N (the
# paper's 30k).
EVAL_N = 200
EVAL_CFG_SCALES = (0.0, 1.0, 2.0, 3.0, 5.0)
EVAL_BATCH_SIZE = 16
COCO_N = 30_000

# `glide eval sweep`, the paper's guidance study (Fig. 6): both series on the CLIP-guided sampler, 25 steps.
SWEEP_STEPS = 25
SWEEP_N = 100
SWEEP_CFG_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
SWEEP_CLIP_SCALES = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)

# Images per forward pass.
BATCH_SIZE = 8

# The largest image the CLI and the web page read (width x height, checked from the file's header before any
# pixel is decoded): a guard against decompression bombs.
MAX_IMAGE_PIXELS = 16_000_000


def sampler_and_steps(clip_guided: bool, sampler: str | None = None, steps: int | str | None = None):
    """The sampler and step count to use when the caller left them open (None)."""
    if clip_guided:
        return sampler or CLIP_SAMPLER, steps if steps is not None else CLIP_STEPS
    return sampler or SAMPLER, steps if steps is not None else STEPS
