"""Noise schedule numbers and the x0 (denoised) estimate that the live preview shows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sdstudio.core.models import load_model
from sdstudio.core.pipeline import StableDiffusion, fresh_scheduler
from sdstudio.core.request import GenerationRequest
from sdstudio.core.schedule import (
    alpha_bar_at,
    denoised_estimate,
    noise_schedule,
    scheduler_config_for,
    sd_scheduler_config,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_sd_training_schedule():
    s = noise_schedule("Euler", 20)
    assert s.train_steps == 1000
    # scaled_linear: beta_t = (sqrt(b0) + t/(T-1) (sqrt(b1) - sqrt(b0)))^2, alpha-bar = prod(1 - beta)
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    np.testing.assert_allclose(s.betas, betas, rtol=1e-6)
    np.testing.assert_allclose(s.alpha_bars, np.cumprod(1 - betas), rtol=1e-5)
    assert s.sigmas[-1] == pytest.approx(14.61, abs=0.01)  # SD's sigma_max
    assert np.all(np.diff(s.alpha_bars) < 0)


def test_step_sigmas_match_the_sampler_own():
    for name in ("Euler", "Euler a", "LMS", "DPM++ 2M Karras"):
        s = noise_schedule(name, 12)
        sched = fresh_scheduler(name, sd_scheduler_config())
        sched.set_timesteps(12)
        assert len(s.timesteps) == len(sched.timesteps) == 12
        np.testing.assert_allclose(s.timesteps, sched.timesteps.double().numpy())
        if name != "DPM++ 2M Karras":  # its timesteps are rounded to integers
            np.testing.assert_allclose(s.step_sigmas, sched.sigmas[:-1].double().numpy(), rtol=1e-3)
        assert np.all(np.diff(s.step_sigmas) < 0)
        np.testing.assert_allclose(s.step_snr, 1 / s.step_sigmas**2, rtol=1e-9)


def test_second_order_sampler_calls_the_model_twice_per_step():
    assert len(noise_schedule("Heun", 10).timesteps) == 19


def test_alpha_bar_at_interpolates():
    ab = noise_schedule("DDIM", 5).alpha_bars
    assert alpha_bar_at(ab, 10) == pytest.approx(ab[10])
    assert ab[11] < alpha_bar_at(ab, 10.5) < ab[10]


def test_scheduler_config_for(tmp_path):
    assert scheduler_config_for("demo")["beta_schedule"] == "scaled_linear"
    assert scheduler_config_for(str(tmp_path)) == sd_scheduler_config()


def test_fallback_estimate_inverts_the_forward_process():
    sched = fresh_scheduler("DPM++ 2M", sd_scheduler_config())
    sched.set_timesteps(10)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(1, 4, 4, 4, generator=g), torch.randn(1, 4, 4, 4, generator=g)
    t = int(sched.timesteps[3])
    ab = float(sched.alphas_cumprod[t])
    xt = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps
    torch.testing.assert_close(denoised_estimate(sched, (xt,), t, xt, eps), x0)


def _run(tiny_model_dir, name: str, steps: int = 8):
    model = load_model(str(tiny_model_dir), device="cpu")
    events = []
    req = GenerationRequest(prompt="a red cat", model=str(tiny_model_dir), steps=steps, width=32,
                            height=32, scheduler=name, seed=1, guidance=3.0)
    StableDiffusion(model).generate(req, on_step=events.append)
    sched = fresh_scheduler(name, model.scheduler_config)
    sched.set_timesteps(steps)
    start = torch.randn((1, 4, 4, 4), generator=torch.Generator("cpu").manual_seed(1))
    return events, sched, start * sched.init_noise_sigma


@pytest.mark.parametrize("name", ["Euler", "Euler a", "DDIM", "DPM++ 2M", "UniPC", "PNDM"])
def test_pipeline_reports_x0_that_ends_at_the_final_latents(tiny_model_dir, name):
    events, _, _ = _run(tiny_model_dir, name)
    assert all(ev.denoised is not None and ev.denoised.shape == ev.latents.shape for ev in events)
    last = events[-1]
    # At the end the estimate and the sample agree: nothing is left to remove.
    err = float((last.denoised - last.latents).abs().max())
    assert err < 0.1 * float(last.latents.abs().max()), (name, err)


def test_euler_steps_move_towards_the_reported_x0(tiny_model_dir):
    """Euler's update x' = x + (sigma' - sigma) (x - x0) / sigma, with the x0 we report."""
    events, sched, _ = _run(tiny_model_dir, "Euler")
    sigmas = sched.sigmas
    for k in range(1, len(events)):
        x, x0 = events[k - 1].latents, events[k].denoised
        expected = x + (sigmas[k + 1] - sigmas[k]) * (x - x0) / sigmas[k]
        torch.testing.assert_close(events[k].latents, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["DDIM", "DPM++ 2M"])  # returned x0, and the computed fallback
def test_first_order_step_is_ddim_with_the_reported_x0(tiny_model_dir, name):
    """DDIM (eta 0), and DPM-Solver++'s first step, give x' = sqrt(ab') x0 + sqrt(1 - ab') eps
    with eps = (x - sqrt(ab) x0) / sqrt(1 - ab)."""
    events, sched, x = _run(tiny_model_dir, name)
    ab = sched.alphas_cumprod
    a, a_next = float(ab[int(sched.timesteps[0])]), float(ab[int(sched.timesteps[1])])
    x0 = events[0].denoised
    eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
    expected = math.sqrt(a_next) * x0 + math.sqrt(1 - a_next) * eps
    torch.testing.assert_close(events[0].latents, expected, rtol=1e-4, atol=1e-4)
