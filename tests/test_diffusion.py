"""Properties of schedules, respacing, the diffusion maths, samplers and guidance."""

import numpy as np
import pytest
import torch

from glide.config import get_preset
from glide.diffusion import Diffusion, beta_schedule, space_timesteps
from glide.diffusion.schedule import SCHEDULE_SHAPES, SIGMA_MAX
from glide.errors import GlideError
from glide import guidance
from glide.models import GLIDE
from glide.pipeline import Pipeline
from glide.samplers import sample_ddim, sample_ddpm, sample_dpmpp_2m, sample_dpmpp_2m_sde


@pytest.mark.parametrize("name", ["linear", "squaredcos_cap_v2"])
def test_schedule_properties(name):
    betas = beta_schedule(name, 1000)
    assert betas.dtype == np.float64 and betas.shape == (1000,)
    assert (betas > 0).all() and (betas <= 0.999).all()
    ac = Diffusion(betas).alphas_cumprod
    assert (np.diff(ac) < 0).all()
    assert ac[0] > 0.99 and ac[-1] < 0.01


@pytest.mark.parametrize("spec", ["100", "50", "27", "10,10,3,2,2", "ddim25", "fast27", "7"])
def test_respacing_keeps_alpha_bar(spec):
    base = Diffusion(beta_schedule("squaredcos_cap_v2"))
    d = base.respace(spec)
    assert d.timesteps == sorted(d.timesteps)
    np.testing.assert_allclose(d.alphas_cumprod, base.alphas_cumprod[d.timesteps], rtol=1e-6)


def test_respacing_special_cases():
    assert space_timesteps(1000, "ddim25") == list(range(0, 1000, 40))  # 999 not included
    f = space_timesteps(1000, "fast27")
    assert len(f) == 27 and 999 not in f and 997 in f
    assert space_timesteps(1000, "") == list(range(1000))
    assert len(space_timesteps(1000, "100")) == 100 and space_timesteps(1000, "100")[-1] == 999
    for bad in ("ddim7777", "-3", "abc", "2000", "0"):
        with pytest.raises(GlideError):
            space_timesteps(1000, bad)


@pytest.mark.parametrize("shape", sorted(SCHEDULE_SHAPES))
@pytest.mark.parametrize("n", [2, 3, 12, 20, 999, 1000])
def test_shaped_schedules_keep_n_distinct_timesteps_from_0_to_999(shape, n):
    """A shaped schedule ("karras12") makes exactly N model calls: N distinct timesteps, the noisiest first, the
    last at timestep 0, even where the shape crowds more points into one end than it has timesteps."""
    base = Diffusion(beta_schedule("squaredcos_cap_v2"))
    kept = space_timesteps(1000, f"{shape}{n}", base.alphas_cumprod)
    assert len(kept) == len(set(kept)) == n and kept == sorted(kept) and kept[0] == 0 and kept[-1] == 999
    d = base.respace(f"{shape}{n}")  # the process uses the model's own noise levels
    assert d.timesteps == kept
    np.testing.assert_allclose(d.alphas_cumprod, base.alphas_cumprod[kept], rtol=1e-6)


def test_shaped_schedules_follow_their_noise_levels():
    """snr: evenly spaced in log-SNR below sigma_max; karras: sigma^(1/7) evenly spaced below it; quad: t grows as
    the square of the step (to within the rounding to whole timesteps)."""
    ab = np.cumprod(1 - beta_schedule("squaredcos_cap_v2"))
    sigma = np.sqrt((1 - ab) / ab)
    snr = space_timesteps(1000, "snr12", ab)[:-1]
    assert sigma[snr[-1]] == pytest.approx(SIGMA_MAX, rel=0.1)
    gaps = np.diff(np.log(sigma[snr]))
    assert gaps.max() - gaps.min() < 0.35 * gaps.mean()
    karras = space_timesteps(1000, "karras12", ab)[:-1]
    gaps = np.diff(sigma[karras] ** (1 / 7))
    assert gaps.max() - gaps.min() < 0.35 * gaps.mean()
    quad = space_timesteps(1000, "quad12", ab)
    assert quad == [round(999 * (i / 11) ** 2) for i in range(12)]
    for bad in ("karras1", "snr0", "karras", "quadx", "snr1001"):
        with pytest.raises(GlideError):
            space_timesteps(1000, bad)


def test_q_sample_and_posterior_consistency():
    d = Diffusion(beta_schedule("linear"))
    x0 = torch.rand(4, 3, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    i = torch.tensor([0, 10, 500, 999])
    xt = d.q_sample(x0, i, noise)
    torch.testing.assert_close(d.predict_xstart(xt, i, noise), x0, atol=2e-3, rtol=0)
    torch.testing.assert_close(d.predict_eps(xt, i, x0), noise, atol=2e-3, rtol=0)


def _oracle(x0):
    """A denoiser that knows the data is the single image x0 (its optimal eps), learned variance 0."""
    def denoise(xt, t):
        d = _oracle.d
        i = torch.searchsorted(torch.tensor(d.timesteps), t)
        eps = d.predict_eps(xt, i, x0.expand_as(xt))
        return torch.cat([eps, torch.zeros_like(eps)], 1)
    return denoise


@pytest.mark.parametrize("sampler", [sample_ddpm, sample_ddim, sample_dpmpp_2m, sample_dpmpp_2m_sde])
def test_samplers_reach_the_data(sampler):
    d = Diffusion(beta_schedule("squaredcos_cap_v2")).respace("20")
    _oracle.d = d
    x0 = torch.rand(1, 3, 8, 8) * 1.6 - 0.8
    g = torch.Generator().manual_seed(0)
    out = sampler(_oracle(x0), d, torch.randn(2, 3, 8, 8, generator=g), generator=g)
    torch.testing.assert_close(out, x0.expand_as(out), atol=1e-3, rtol=0)


def test_ddim_is_deterministic_and_ddpm_seeded():
    d = Diffusion(beta_schedule("linear")).respace("10")

    def noisy(xt, t):  # a denoiser whose answer depends on x_t, so noise matters
        return torch.cat([torch.tanh(xt), torch.zeros_like(xt)], 1)

    x = torch.randn(2, 3, 4, 4)
    a = sample_ddpm(noisy, d, x, generator=torch.Generator().manual_seed(1))
    b = sample_ddpm(noisy, d, x, generator=torch.Generator().manual_seed(1))
    c = sample_ddpm(noisy, d, x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(sample_ddim(noisy, d, x), sample_ddim(noisy, d, x))


def test_classifier_free_guidance_formula():
    calls = []

    def model(x, t, text=None):
        calls.append(len(x))
        return torch.cat([x * text[:, None, None, None], x * 0 + text[:, None, None, None]], 1)

    x, t = torch.ones(2, 3, 2, 2), torch.tensor([5, 5])
    cond, uncond = {"text": torch.tensor([3.0, 3.0])}, {"text": torch.tensor([1.0, 1.0])}
    out = guidance.classifier_free(model, cond, uncond, 2.5)(x, t)
    assert calls == [4]  # one batched forward for both halves
    torch.testing.assert_close(out[:, :3], torch.full((2, 3, 2, 2), 1 + 2.5 * (3 - 1)))
    torch.testing.assert_close(out[:, 3:], torch.full((2, 3, 2, 2), 3.0))  # conditional variance
    calls.clear()
    torch.testing.assert_close(guidance.classifier_free(model, cond, uncond, 1.0)(x, t), model(x, t, **cond))
    assert calls[0] == 2  # scale 1 skips the unconditional half


def test_guidance_interval_runs_the_conditional_half_alone_outside_it():
    """Inside the noise interval: the guided formula on one batched forward; outside: one forward of the
    conditional half, whose output is returned as is."""
    calls = []

    def model(x, t, text=None):
        calls.append(len(x))
        return torch.cat([x * text[:, None, None, None], x * 0 + text[:, None, None, None]], 1)

    ab = torch.tensor([0.99, 0.5, 0.2, 0.01]).numpy()  # sigma = 0.10, 1.0, 2.0, 9.95
    active = guidance.noise_interval(ab, (0.5, 2.0))
    assert [active(torch.tensor([t, t])) for t in range(4)] == [False, True, True, False]  # (low, high]
    x = torch.ones(2, 3, 2, 2)
    cond, uncond = {"text": torch.tensor([3.0, 3.0])}, {"text": torch.tensor([1.0, 1.0])}
    denoise = guidance.classifier_free(model, cond, uncond, 2.5, active)
    torch.testing.assert_close(denoise(x, torch.tensor([1, 1]))[:, :3], torch.full((2, 3, 2, 2), 1 + 2.5 * (3 - 1)))
    assert calls == [4]
    calls.clear()
    torch.testing.assert_close(denoise(x, torch.tensor([3, 3])), model(x, torch.tensor([3, 3]), **cond))
    assert calls[0] == 2


def test_guidance_reuse_adds_the_last_guided_difference_outside_the_interval():
    """With reuse, a step outside the interval runs the conditional half alone and adds the difference of the
    last guided step (scaled like guidance); before any guided step there is none to add."""
    calls = []

    def model(x, t, text=None):
        calls.append(len(x))
        return torch.cat([x * text[:, None, None, None] * (1 + t[:, None, None, None]), x * 0 + text[:, None, None, None]], 1)

    ab = torch.tensor([0.99, 0.5, 0.2, 0.01]).numpy()  # sigma = 0.10, 1.0, 2.0, 9.95
    active = guidance.noise_interval(ab, (0.5, 2.0))
    x, c = torch.ones(2, 3, 2, 2), {"text": torch.tensor([3.0, 3.0])}
    u = {"text": torch.tensor([1.0, 1.0])}
    denoise = guidance.classifier_free(model, c, u, 2.5, active, reuse=True)
    steps = [torch.tensor([k, k]) for k in (3, 2, 1, 0)]  # sampling order: high noise first
    outs = [denoise(x, t) for t in steps]
    assert calls == [2, 4, 4, 2]  # one row per image outside the interval
    torch.testing.assert_close(outs[0], model(x, steps[0], **c))  # nothing guided yet: conditional alone
    for out, k in zip(outs[1:3], (2, 1)):  # guided: (1 + k) + 2.5 * (3 (1 + k) - (1 + k))
        torch.testing.assert_close(out[:, :3], torch.full((2, 3, 2, 2), (1 + k) * (1 + 2.5 * 2)))
    # t = 0: eps(x | caption) = 3, plus (2.5 - 1) times the last difference, 2 (1 + 1) at t = 1 (t = 0's own is 2)
    torch.testing.assert_close(outs[3][:, :3], torch.full((2, 3, 2, 2), 3 + 1.5 * 4))
    torch.testing.assert_close(outs[3][:, 3:], torch.full((2, 3, 2, 2), 3.0))  # conditional variance
    plain = guidance.classifier_free(model, c, u, 2.5, active)  # without reuse: the conditional half as is
    for t in steps:
        plain(x, t)
    torch.testing.assert_close(plain(x, steps[3]), model(x, steps[3], **c))


def _record_rows(model: GLIDE):
    """The noise level sigma of each of the model's timesteps, and a list that gets (timestep, rows) per call."""
    ab = Diffusion.from_schedule(model.cfg.noise_schedule, model.cfg.diffusion_steps).alphas_cumprod
    seen = []
    orig = model.forward
    model.forward = lambda x, t, *a, **k: seen.append((int(t[0]), len(x))) or orig(x, t, *a, **k)
    return np.sqrt((1 - ab) / ab), seen


def test_pipeline_guides_only_inside_the_interval():
    """A tiny model's sampling run: two rows per image exactly at the steps whose sigma lies in the interval,
    one elsewhere; an interval holding every step samples exactly what no interval does."""
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    model = GLIDE(cfg)
    with torch.no_grad():  # the zero-initialised output layers would make both halves agree
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    pipe = Pipeline(model, "cpu", "fp32")
    sigma, seen = _record_rows(model)
    pipe.guidance_interval = (0.3, 3.0)
    guided = pipe(["a cat", "a dog"], steps=10, seed=0, progress=False)
    assert len(seen) == 10 and {n for _, n in seen} == {2, 4}
    assert all((n == 4) == (0.3 < sigma[t] <= 3.0) for t, n in seen), seen
    seen.clear()
    pipe.guidance_reuse = True  # the same rows per call; the steps below the interval add the last difference
    reused = pipe(["a cat", "a dog"], steps=10, seed=0, progress=False)
    assert all((n == 4) == (0.3 < sigma[t] <= 3.0) for t, n in seen) and min(sigma[t] for t, _ in seen) <= 0.3
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(reused, guided))
    pipe.guidance_reuse = False
    pipe.guidance_interval = (0.0, float("inf"))
    everywhere = pipe(["a cat", "a dog"], steps=10, seed=0, progress=False)
    pipe.guidance_interval = None
    plain = pipe(["a cat", "a dog"], steps=10, seed=0, progress=False)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(everywhere, plain))
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(guided, plain))


def test_default_guidance_intervals():
    """Text-to-image guides every step; inpainting with a v-prediction model (the bundled base) guides above the
    measured noise level, with an eps model (the official checkpoints) at every step, as the official notebooks."""
    from glide import defaults

    cfg = get_preset("tiny")
    eps, v = Pipeline(GLIDE(cfg), "cpu"), Pipeline(GLIDE(cfg.replace(prediction="v")), "cpu")
    assert eps.guidance_interval is None and v.guidance_interval is None
    assert eps.inpaint_guidance_interval is None
    assert v.inpaint_guidance_interval == defaults.INPAINT_GUIDANCE_INTERVAL
    with pytest.raises(GlideError, match="low < high"):
        guidance.noise_interval([0.5, 0.1], (1.0, 0.5))
    # One notation for the command line, PNG settings, eval results and cache keys.
    assert defaults.interval_text(defaults.INPAINT_GUIDANCE_INTERVAL) == "0.5,inf"
    assert defaults.interval_text((0.28, 5.42)) == "0.28,5.42" and defaults.interval_text(None) == "all"


def test_inpainting_uses_its_own_guidance_interval():
    """pipe.inpaint samples with pipe.inpaint_guidance_interval: one row per image at the steps outside it."""
    cfg = get_preset("tiny").replace(inpaint=True)
    torch.manual_seed(0)
    model = GLIDE(cfg)
    pipe = Pipeline(model, "cpu", "fp32")
    sigma, seen = _record_rows(model)
    pipe.inpaint_guidance_interval = (0.3, float("inf"))
    image = np.zeros((cfg.unet.image_size, cfg.unet.image_size, 3), np.uint8)
    from PIL import Image

    pipe.inpaint(Image.fromarray(image), None, "a cat", 2, box=(0, 0, 4, 4), steps=8, seed=0, progress=False)
    assert len(seen) == 8 and all((n == 4) == (sigma[t] > 0.3) for t, n in seen), seen


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("steps", ["8", "15"])
def test_dpmpp_2m_is_more_accurate_than_ddim(schedule, steps):
    """Data ~ N(mu, s^2) has an exact denoiser, and its probability-flow ODE is known in closed form:
    x_t = sqrt(ab) mu + sqrt(ab s^2 + 1 - ab) z. Compare both solvers' x just before the final jump to the
    data (whose single coarse step dominates any end-point error); second order must win clearly."""
    mu, s = 0.3, 0.5
    d = Diffusion(beta_schedule(schedule)).respace(steps)

    def denoise(xt, t):
        i = torch.searchsorted(torch.tensor(d.timesteps), t)
        ab = d.extract("alphas_cumprod", i, xt.ndim)
        x0 = mu + (ab.sqrt() * s**2) / (ab * s**2 + 1 - ab) * (xt - ab.sqrt() * mu)
        return torch.cat([(xt - ab.sqrt() * x0) / (1 - ab).sqrt(), torch.zeros_like(xt)], 1)

    x = torch.randn(256, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    ab_T = d.alphas_cumprod[-1]
    z = (x - ab_T**0.5 * mu) / (ab_T * s * s + 1 - ab_T) ** 0.5
    ab_1 = d.alphas_cumprod[1]
    exact = ab_1**0.5 * mu + (ab_1 * s * s + 1 - ab_1) ** 0.5 * z
    errors = {}
    for name, sampler in (("ddim", sample_ddim), ("dpm", sample_dpmpp_2m)):
        seen = {}
        sampler(denoise, d, x, clip_denoised=False, callback=lambda i, xn, out: seen.setdefault(i, xn))
        errors[name] = (seen[2] - exact).abs().mean().item()  # the sample at the second-smallest timestep
    assert errors["dpm"] < 0.6 * errors["ddim"], errors


def _gaussian_denoiser(d, mu, s):
    """The exact eps for data ~ N(mu, s^2) under the respaced schedule `d`."""
    def denoise(xt, t):
        i = torch.searchsorted(torch.tensor(d.timesteps), t)
        ab = d.extract("alphas_cumprod", i, xt.ndim)
        x0 = mu + (ab.sqrt() * s**2) / (ab * s**2 + 1 - ab) * (xt - ab.sqrt() * mu)
        return torch.cat([(xt - ab.sqrt() * x0) / (1 - ab).sqrt(), torch.zeros_like(xt)], 1)
    return denoise


def test_dpmpp_2m_sde_first_step_is_the_ddpm_posterior():
    """Its first step has no history, so it must be exactly DDIM with eta = 1, i.e. a draw from
    q(x_t | x_s, x_0) with the same noise."""
    d = Diffusion(beta_schedule("squaredcos_cap_v2")).respace("10")
    denoise = _gaussian_denoiser(d, 0.3, 0.5)
    x = torch.randn(64, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    first = {}
    for name, f, kw in (("ddim", sample_ddim, {"eta": 1.0}), ("sde", sample_dpmpp_2m_sde, {}),
                        ("ode", sample_ddim, {"eta": 0.0})):
        f(denoise, d, x, clip_denoised=False, generator=torch.Generator().manual_seed(1),
          callback=lambda i, xn, out, name=name: first.setdefault(name, xn), **kw)
    # The schedule is float32 and the two formulas cancel differently at alpha_bar ~ 1e-4: float32 agreement.
    torch.testing.assert_close(first["sde"], first["ddim"], rtol=0, atol=2e-3)
    assert (first["sde"] - first["ode"]).abs().max() > 0.3  # the noise matters: the check can tell them apart


def test_dpmpp_2m_sde_samples_the_data_distribution_at_second_order():
    """Data ~ N(mu, s^2) with its exact denoiser: the sampled spread converges to s, and the multistep
    correction makes the error shrink much faster with steps than first-order ancestral sampling's."""
    mu, s = 0.3, 0.5
    x = torch.randn(50000, 1, 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    err = {}
    for steps in ("50", "250"):
        d = Diffusion(beta_schedule("linear")).respace(steps)
        for name, f, kw in (("ddim", sample_ddim, {"eta": 1.0}), ("sde", sample_dpmpp_2m_sde, {})):
            out = f(_gaussian_denoiser(d, mu, s), d, x, clip_denoised=False,
                    generator=torch.Generator().manual_seed(1), **kw)
            assert abs(out.mean().item() - mu) < 0.01
            err[name, steps] = abs(out.std().item() - s)
    assert err["sde", "250"] < 0.006 and err["sde", "250"] < 0.4 * err["ddim", "250"], err
    assert err["sde", "50"] / err["sde", "250"] > 2 * err["ddim", "50"] / err["ddim", "250"], err


def test_hybrid_loss_terms_and_min_snr_weighting():
    from glide.diffusion.losses import hybrid_loss

    d = Diffusion(beta_schedule("squaredcos_cap_v2"))
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    i = torch.tensor([3, 200, 600, 990])
    xt = d.q_sample(x0, i, noise)
    # The exact eps with v = -1 (variance = the true posterior's): the KL terms vanish (t > 0).
    exact = torch.cat([noise, -torch.ones_like(noise)], 1)
    out = hybrid_loss(d, exact, x0, xt, i, noise)
    assert out["mse"].abs().max() < 1e-10 and out["vlb"].abs().max() < 1e-4
    # A wrong eps: the VLB sees it only through a stop-gradient, so eps gets gradient from the MSE alone.
    wrong = torch.cat([noise + 0.3 * torch.randn(x0.shape, generator=g), torch.zeros_like(noise)], 1)
    wrong.requires_grad_(True)
    plain = hybrid_loss(d, wrong, x0, xt, i, noise)
    grad_eps = torch.autograd.grad(plain["loss"].sum(), wrong, retain_graph=True)[0][:, :3]
    torch.testing.assert_close(grad_eps, torch.autograd.grad(plain["mse"].sum(), wrong)[0][:, :3])
    # Min-SNR-gamma: the MSE is weighted by min(SNR, gamma) / SNR, the reported mse stays unweighted.
    ab = d.alphas_cumprod[i.numpy()]
    snr = torch.tensor(ab / (1 - ab), dtype=torch.float32)
    capped = hybrid_loss(d, wrong.detach(), x0, xt, i, noise, snr_gamma=5.0)
    torch.testing.assert_close(capped["mse"], plain["mse"].detach())
    vlb_part = plain["loss"].detach() - plain["mse"].detach()
    torch.testing.assert_close(capped["loss"] - vlb_part, plain["mse"].detach() * snr.clamp(max=5.0) / snr)
    assert snr[0] > 5 > snr[3]  # the test covers both sides of the cap
    huge = hybrid_loss(d, wrong.detach(), x0, xt, i, noise, snr_gamma=float(snr.max()) * 2)
    torch.testing.assert_close(huge["loss"], plain["loss"].detach())


def test_v_prediction_model_returns_eps_and_trains_on_the_v_error():
    """A "v" model's U-Net outputs v = sqrt(ab) eps - sqrt(1 - ab) x_0; GLIDE.forward turns it into eps, and the
    loss's MSE is then v's (the eps MSE / ab)."""
    from glide.config import get_preset
    from glide.diffusion.losses import hybrid_loss
    from glide.models import GLIDE
    from glide.models.layers import timestep_embedding

    d = Diffusion(beta_schedule("squaredcos_cap_v2"))
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    i = torch.tensor([3, 200, 600, 999])
    xt = d.q_sample(x0, i, noise)
    ab = torch.tensor(d.alphas_cumprod[i.numpy()], dtype=torch.float32).view(-1, 1, 1, 1)
    v = ab.sqrt() * noise - (1 - ab).sqrt() * x0
    model = GLIDE(get_preset("tiny").replace(text=None, prediction="v"))
    torch.nn.init.normal_(model.unet.output_conv.weight, std=0.1)  # a non-zero output to convert
    unet_out = model.unet(xt, model.unet.time_mlp(timestep_embedding(i, 32)), None)
    out = model(xt, i)
    torch.testing.assert_close(out[:, 3:], unet_out[:, 3:])
    torch.testing.assert_close(out[:, :3], ab.sqrt() * unet_out[:, :3] + (1 - ab).sqrt() * xt)
    # Fed the exact v, the conversion gives the exact eps, and x_0 comes back even at t = 999.
    exact = model.v_to_eps(torch.cat([v, torch.zeros_like(v)], 1), xt, i)
    torch.testing.assert_close(exact[:, :3], noise, atol=2e-4, rtol=0)
    assert (d.predict_xstart(xt, i, exact[:, :3])[:3] - x0[:3]).abs().max() < 1e-3
    # The loss: the eps MSE divided by ab is v's MSE.
    wrong_v = v + 0.3 * torch.randn(v.shape, generator=g)
    out = model.v_to_eps(torch.cat([wrong_v, torch.zeros_like(v)], 1), xt, i)
    loss = hybrid_loss(d, out, x0, xt, i, noise, vlb_weight=0.0, prediction="v")
    torch.testing.assert_close(loss["loss"], ((wrong_v - v) ** 2).mean((1, 2, 3)), rtol=2e-3, atol=1e-5)
    with pytest.raises(GlideError, match="prediction"):
        get_preset("tiny").replace(prediction="x0").validate()
