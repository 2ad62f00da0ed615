"""The CPU fast path: bf16 with fp32 statistics and outputs, the default precision, the text encoded once per
prompt, and start-up work that sampling must not pay for."""

import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

from glide import runtime
from glide.config import get_preset
from glide.diffusion import Diffusion
from glide.errors import GlideError
from glide.models import GLIDE
from glide.models.layers import GroupNorm32
from glide.pipeline import Pipeline


@pytest.mark.parametrize("shape", [(2, 64, 16, 16), (2, 192, 8, 8)])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_groupnorm_bf16_keeps_fp32_statistics(shape, fmt):
    torch.manual_seed(0)
    norm = GroupNorm32(shape[1])
    torch.nn.init.normal_(norm.weight), torch.nn.init.normal_(norm.bias)
    x = (torch.randn(shape) * 3 + 5).to(torch.bfloat16).contiguous(memory_format=fmt)
    upcast = F.group_norm(x.float(), 32, norm.weight, norm.bias, norm.eps).to(torch.bfloat16)
    out = norm(x)
    assert out.dtype == torch.bfloat16
    # Statistics in bf16 would be off by far more than one bf16 rounding step (x has mean 5, std 3).
    torch.testing.assert_close(out.float(), upcast.float(), rtol=0, atol=2 ** -6)


def _tiny_inputs(model, n=2):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g)
    t = torch.tensor([10, 900])[:n]
    tokens = torch.randint(0, 256, (n, model.cfg.text.context), generator=g)
    mask = torch.ones(n, model.cfg.text.context, dtype=torch.bool)
    return x, t, tokens, mask


def test_bf16_autocast_forward_is_close_to_fp32_and_returns_fp32():
    torch.manual_seed(0)
    model = GLIDE(get_preset("tiny")).eval()
    for p in model.parameters():  # ADM zero-inits the output layers: give every weight some signal
        torch.nn.init.normal_(p, std=0.05)
    x, t, tokens, mask = _tiny_inputs(model)
    with torch.no_grad():
        ref = model(x, t, tokens=tokens, mask=mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x, t, tokens=tokens, mask=mask)
    assert out.dtype == torch.float32  # the output layer leaves in full precision
    err = (out - ref).norm() / ref.norm()
    assert 0 < err < 0.03, err


def test_attention_matches_the_conv1d_formulation():
    """The attention runs its 1x1 convolutions as linear maps over [batch, positions, channels]; the numbers must
    be those of the official layout (qkv as a Conv1d over [batch, channels, positions], head-major channels)."""
    from glide.models.unet import Attention

    torch.manual_seed(0)
    attn = Attention(64, heads=2, text_width=16)
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x, text = torch.randn(2, 64, 4, 4), torch.randn(2, 16, 5)
    b, c = 2, 64
    qkv = attn.qkv(attn.norm(x).reshape(b, c, -1))
    q, k, v = qkv.reshape(b, 2, 3 * c // 2, -1).transpose(2, 3).chunk(3, dim=-1)
    tk, tv = attn.text_kv(text).reshape(b, 2, 2 * c // 2, -1).transpose(2, 3).chunk(2, dim=-1)
    k, v = torch.cat([tk, k], dim=2), torch.cat([tv, v], dim=2)
    w = torch.softmax(q @ k.transpose(-1, -2) / (c // 2) ** 0.5, dim=-1)
    expected = x + attn.proj((w @ v).transpose(2, 3).reshape(b, c, -1)).reshape(x.shape)
    for fmt in (torch.contiguous_format, torch.channels_last):
        torch.testing.assert_close(attn(x.contiguous(memory_format=fmt), text), expected, rtol=1e-5, atol=1e-5)


def test_text_is_encoded_once_per_distinct_prompt():
    torch.manual_seed(0)
    model = GLIDE(get_preset("tiny")).eval()
    pipe = Pipeline(model, "cpu", "fp32")
    calls = []
    encode_text = model.encode_text
    model.encode_text = lambda tokens, mask: calls.append(len(tokens)) or encode_text(tokens, mask)
    emb = pipe.encode(["a cat", "", "a cat", "a dog", ""])
    assert calls == [3]
    one = [pipe.encode([p]) for p in ("a cat", "", "a cat", "a dog", "")]
    torch.testing.assert_close(emb.pooled, torch.cat([e.pooled for e in one]))
    torch.testing.assert_close(emb.tokens, torch.cat([e.tokens for e in one]))


def test_default_precision(monkeypatch):
    """bf16 on CUDA; on a CPU where bf16 is faster than fp32, bf16 for v models and mixed for eps models (runtime
    says why), fp32 where it is emulated or no faster; each model of a pipeline gets its own default, and an
    explicit dtype overrides them all."""
    eps, v = get_preset("tiny"), get_preset("tiny").replace(prediction="v")
    cpu = torch.device("cpu")
    bf16, fp32 = runtime.Precision(torch.bfloat16), runtime.Precision(torch.float32)
    mixed = runtime.Precision(torch.bfloat16, runtime.BF16_MIN_ALPHA_BAR)
    assert runtime.default_precision(torch.device("cuda"), eps) == bf16
    for slow in (None, 0.55, 1.1):  # emulated; bf16 instructions without faster units; barely faster
        monkeypatch.setattr(runtime, "cpu_bf16_speedup", lambda: slow)
        assert runtime.default_precision(cpu, v) == runtime.default_precision(cpu, eps) == fp32, slow
    monkeypatch.setattr(runtime, "cpu_bf16_speedup", lambda: 1.85)
    assert runtime.default_precision(cpu, v) == bf16
    assert runtime.default_precision(cpu, eps) == runtime.default_precision(cpu) == mixed
    assert [p.name for p in (bf16, fp32, mixed)] == ["bf16", "fp32", "mixed"]

    base, up = GLIDE(v), GLIDE(eps)  # (up stands for an eps upsampler)
    pipe = Pipeline(base, "cpu")
    assert pipe.precision == bf16 and pipe.precision_for(up) == mixed
    with pipe.autocast(base):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    forced = Pipeline(base, "cpu", "fp32")
    assert forced.precision == forced.precision_for(up) == fp32
    with forced.autocast(up, torch.tensor([0])):
        assert not torch.is_autocast_enabled("cpu")
    assert Pipeline(GLIDE(eps), "cpu", "bf16").precision == bf16
    with pytest.raises(GlideError, match="mixed"):
        Pipeline(base, "cpu", "int8")


@pytest.mark.parametrize("speedup", [None, 0.55, 1.85])
def test_bf16_asked_for_where_it_is_slower_warns(monkeypatch, speedup):
    """Where bf16 is emulated (no bf16 instructions: None) or slower than fp32 (0.55x), asking for it (bf16 or mixed)
    says so, and why; fp32 and the default (fp32 on such a CPU) stay quiet, and so does a CPU where bf16 is faster."""
    monkeypatch.setattr(runtime, "cpu_bf16_speedup", lambda: speedup)
    model = GLIDE(get_preset("tiny"))
    slow = speedup is None or speedup < 1
    why = "emulated" if speedup is None else "0.55x the speed of fp32"
    for dtype, warns in (("bf16", slow), ("mixed", slow), ("fp32", False), (None, False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Pipeline(model, "cpu", dtype)
        assert [(why in str(w.message)) for w in caught] == ([True] if warns else []), dtype


def test_cpu_bf16_speedup_is_measured_once():
    """The probe times real convolutions: a positive ratio on a CPU with bf16 instructions, None without them;
    measured once per process (the default precision must not change between two calls) without touching the
    global random stream, and benchmark rows record it."""
    runtime.cpu_bf16_speedup.cache_clear()
    state = torch.get_rng_state()
    speedup = runtime.cpu_bf16_speedup()
    assert torch.equal(torch.get_rng_state(), state)  # the probe leaves the global random stream alone
    if runtime.cpu_has_native_bf16():
        assert isinstance(speedup, float) and 0.05 < speedup < 20
    else:
        assert speedup is None
    assert runtime.cpu_bf16_speedup() is speedup
    assert runtime.cpu_prefers_bf16() == (speedup is not None and speedup >= runtime.BF16_MIN_SPEEDUP)
    d = runtime.cpu_description()
    assert d["native_bf16"] == (speedup is not None)
    assert d["bf16_speedup"] == (None if speedup is None else round(speedup, 2))
    assert ("bf16 at" in runtime.device_text(torch.device("cpu"))) == (speedup is not None)


@pytest.mark.filterwarnings("ignore:dtype mixed")  # where bf16 is slower than fp32 (the warning's own test is above)
def test_mixed_precision_switches_at_half_alpha_bar():
    """Mixed precision: bf16 at the steps with alpha_bar_t >= 1/2, fp32 at the noisier ones, decided per call
    by the noisiest row; the samples then differ from fp32 ones only through the low-noise steps."""
    cfg = get_preset("tiny")
    model = GLIDE(cfg)
    pipe = Pipeline(model, "cpu", "mixed")
    ab = Diffusion.from_schedule(cfg.noise_schedule, cfg.diffusion_steps).alphas_cumprod
    quiet, noisy = int((ab >= 0.5).nonzero()[0][-1]), int((ab < 0.5).nonzero()[0][0])
    for t, want in (([0], torch.bfloat16), ([quiet], torch.bfloat16), ([noisy], None), ([0, noisy], None)):
        with pipe.autocast(model, torch.tensor(t)):
            got = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        assert got == want, (t, got)

    seen = []
    orig = model.forward
    model.forward = lambda x, t, *a, **k: seen.append((int(t.max()), torch.is_autocast_enabled("cpu"))) or orig(
        x, t, *a, **k)
    pipe(["a cat"], steps=10, seed=0, progress=False)
    assert seen and all(bf == (ab[t] >= 0.5) for t, bf in seen)
    assert {bf for _, bf in seen} == {True, False}


def test_loading_a_model_does_not_import_the_compiler():
    """Building the model on the meta device must not run initialisers: normal_ on meta tensors imports
    torch._dynamo, 1.4 s of a 2-core start-up."""
    code = ("import sys; from glide.pipeline import load_model; load_model('bundled:base'); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_keep_freed_memory_is_accepted_by_glibc():
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    assert runtime.keep_freed_memory() is True
