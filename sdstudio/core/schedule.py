"""The noise schedule as numbers, for the window's schedule view and the VAE lab's forward
diffusion: the training schedule (beta_t, alpha-bar_t, sigma_t over all 1000 timesteps), the
timesteps a sampler visits for a step count, and the model's x0 estimate at a step.

    alpha-bar_t = prod_{s<=t} (1 - beta_s)      x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps
    sigma_t = sqrt((1 - alpha-bar_t) / alpha-bar_t)   (k-diffusion's noise level: x = x_0 + sigma eps)
    SNR_t = alpha-bar_t / (1 - alpha-bar_t) = 1 / sigma_t^2
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


def sd_scheduler_config() -> dict:
    """SD 1.x's scheduler config, the one shipped in resources/configs/sd15 (for single files);
    the fallback when a model has no scheduler config of its own."""
    return dict(_shipped_sd15_config())


@functools.cache
def _shipped_sd15_config() -> dict:
    from sdstudio.core.paths import resources_dir

    path = resources_dir() / "configs" / "sd15" / "scheduler" / "scheduler_config.json"
    return json.loads(path.read_text("utf-8"))


def scheduler_config_for(model: str) -> dict:
    """The model folder's scheduler config ("demo" or a diffusers folder; torch-free), else SD's."""
    from sdstudio.core.paths import demo_model_dir

    folder = demo_model_dir() if model == "demo" else Path(model).expanduser()
    try:
        config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return sd_scheduler_config()
    return config if isinstance(config, dict) else sd_scheduler_config()


@dataclass(frozen=True)
class NoiseSchedule:
    """The training schedule, and what one sampler visits: one entry per model call (a step of
    the progress bar; second-order samplers call the model twice per step)."""

    sampler: str
    steps: int
    betas: np.ndarray  # (T,) training schedule
    alpha_bars: np.ndarray  # (T,)
    timesteps: np.ndarray  # (n,) the timesteps visited, in order (may be fractional)
    step_sigmas: np.ndarray  # (n,) sigma at each visited timestep
    step_alpha_bars: np.ndarray  # (n,)

    @property
    def sigmas(self) -> np.ndarray:
        return np.sqrt((1 - self.alpha_bars) / self.alpha_bars)

    @property
    def step_snr(self) -> np.ndarray:
        return self.step_alpha_bars / (1 - self.step_alpha_bars)

    @property
    def train_steps(self) -> int:
        return len(self.betas)


def alpha_bar_at(alpha_bars: np.ndarray | torch.Tensor, t: float) -> float:
    """alpha-bar at a (possibly fractional) timestep, interpolating log sigma as k-diffusion does."""
    ab = np.asarray(alpha_bars, dtype=np.float64)
    t = min(max(float(t), 0.0), len(ab) - 1.0)
    lo = math.floor(t)
    hi = min(lo + 1, len(ab) - 1)
    log_sigma = np.log(np.sqrt((1 - ab[[lo, hi]]) / ab[[lo, hi]]))
    sigma = math.exp(log_sigma[0] + (t - lo) * (log_sigma[1] - log_sigma[0]))
    return 1.0 / (1.0 + sigma * sigma)


def training_alpha_bars(config: dict | None = None) -> np.ndarray:
    """alpha-bar_t for t = 0..T-1 of a scheduler config (SD's when None)."""
    from diffusers import DDPMScheduler

    cfg = {k: v for k, v in (config or sd_scheduler_config()).items() if not k.startswith("_")}
    return DDPMScheduler.from_config(cfg).alphas_cumprod.double().numpy()


def noise_schedule(sampler: str, steps: int, config: dict | None = None) -> NoiseSchedule:
    """The schedule `sampler` follows for `steps` steps, built from the model's config exactly as
    the pipeline builds it."""
    from sdstudio.core.pipeline import fresh_scheduler

    scheduler = fresh_scheduler(sampler, dict(config or sd_scheduler_config()))
    scheduler.set_timesteps(steps, device="cpu")
    ab = scheduler.alphas_cumprod.double().numpy()
    timesteps = scheduler.timesteps.double().numpy()
    step_ab = np.array([alpha_bar_at(ab, t) for t in timesteps])
    return NoiseSchedule(
        sampler=sampler, steps=steps, betas=scheduler.betas.double().numpy(), alpha_bars=ab,
        timesteps=timesteps, step_sigmas=np.sqrt((1 - step_ab) / step_ab), step_alpha_bars=step_ab,
    )


def denoised_estimate(scheduler, step_output: tuple, t, sample: torch.Tensor,
                      model_output: torch.Tensor) -> torch.Tensor:
    """The model's current estimate of the clean latents x0 at this step.

    Schedulers that compute it return it second from `step(..., return_dict=False)` (Euler, Euler
    a, DDIM, LMS, Heun, DPM2, DDPM: `pred_original_sample`). The others (DPM++, UniPC, DEIS,
    PNDM) work on variance-preserving latents x_t = sqrt(ab) x0 + sqrt(1 - ab) eps, so x0 follows
    from the prediction: (x_t - sqrt(1 - ab) eps) / sqrt(ab) for epsilon prediction.
    """
    if len(step_output) > 1 and isinstance(step_output[1], torch.Tensor) \
            and step_output[1].shape == sample.shape:
        return step_output[1]
    ab = alpha_bar_at(scheduler.alphas_cumprod, float(t))
    a, s = math.sqrt(ab), math.sqrt(1.0 - ab)
    kind = scheduler.config.get("prediction_type", "epsilon")
    if kind == "v_prediction":
        return a * sample - s * model_output
    if kind == "sample":
        return model_output
    return (sample - s * model_output) / a
