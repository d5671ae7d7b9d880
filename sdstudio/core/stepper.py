"""Step-through generation for teaching: the sampler loop of `StableDiffusion.generate`, one model
call at a time, keeping what the course looks at in each step: the latent x_t, the x0 estimate,
the predicted noise, and the guidance difference (conditional minus unconditional prediction).

Text-to-image, one image. Run to the end it gives the same image as `generate` (tested), since
it is the same loop built from the same parts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from PIL import Image

from sdstudio.core.errors import UserError
from sdstudio.core.pipeline import StableDiffusion, _Inputs, fresh_scheduler
from sdstudio.core.request import GenerationRequest
from sdstudio.core.schedule import alpha_bar_at, denoised_estimate


@dataclass(frozen=True)
class StepDetail:
    step: int  # 1-based
    total: int
    timestep: float
    sigma: float  # noise level at this timestep, sqrt((1 - alpha-bar) / alpha-bar)
    guidance: float  # the CFG scale (1: no negative pass)
    latents: torch.Tensor  # x_t going into the step (1, C, h, w)
    denoised: torch.Tensor  # the model's x0 estimate
    noise: torch.Tensor  # the (guided) prediction the scheduler used: eps, v or x0 per the model
    guidance_difference: torch.Tensor | None  # conditional - unconditional prediction
    next_latents: torch.Tensor  # what the scheduler made of it


class StepThrough:
    @torch.no_grad()
    def __init__(self, engine: StableDiffusion, request: GenerationRequest) -> None:
        req = dataclasses.replace(request, batch_size=1).validate()
        if req.init_image or req.mode != "txt2img":
            raise UserError("Step-through mode does text-to-image only; clear the init image.")
        self.engine, self.request = engine, req
        m = engine.model
        self.notices: list[str] = []
        engine.load_inputs(req, self.notices)
        self.do_cfg = req.guidance > 1 and m.unet.config.time_cond_proj_dim is None
        self.cond = m.family.conditioning(m, req, self.do_cfg, self.notices)
        self.scheduler = fresh_scheduler(req.scheduler, m.scheduler_config)
        self.scheduler.set_timesteps(req.steps, device=m.device)
        self.timesteps = self.scheduler.timesteps
        generators = [torch.Generator("cpu").manual_seed(s) for s in req.seeds()]
        f = engine.vae_scale_factor
        shape = (1, m.vae.config.latent_channels, req.height // f, req.width // f)
        self.latents = engine.prepare_latents(req, _Inputs(), self.scheduler, self.timesteps, shape,
                                              self.cond.embeds.dtype, generators, self.do_cfg)[0]
        self.step_kwargs = engine.extra_step_kwargs(self.scheduler, generators)
        self.index = 0

    @property
    def total(self) -> int:
        return len(self.timesteps)

    @property
    def done(self) -> bool:
        return self.index >= self.total

    @torch.no_grad()
    def step(self) -> StepDetail:
        """Run the next model call and the scheduler step (the body of generate's loop)."""
        if self.done:
            raise UserError("All steps are done; decode the image or start again.")
        m, scheduler, t = self.engine.model, self.scheduler, self.timesteps[self.index]
        model_input = torch.cat([self.latents] * 2) if self.do_cfg else self.latents
        model_input = scheduler.scale_model_input(model_input, t)
        noise_pred = m.unet(model_input, t, encoder_hidden_states=self.cond.embeds,
                            added_cond_kwargs=self.cond.added, return_dict=False)[0]
        difference = None
        if self.do_cfg:
            uncond, text = noise_pred.chunk(2)
            difference = text - uncond
            noise_pred = uncond + self.request.guidance * difference
        sample = self.latents
        step_out = scheduler.step(noise_pred, t, sample, **self.step_kwargs, return_dict=False)
        self.latents = step_out[0]
        self.index += 1
        ab = alpha_bar_at(scheduler.alphas_cumprod, float(t))
        return StepDetail(
            step=self.index, total=self.total, timestep=float(t),
            sigma=math.sqrt((1 - ab) / ab), guidance=float(self.request.guidance),
            latents=sample, denoised=denoised_estimate(scheduler, step_out, t, sample, noise_pred),
            noise=noise_pred, guidance_difference=difference, next_latents=self.latents,
        )

    @torch.no_grad()
    def decode(self) -> Image.Image:
        """The image of the current latents (the final image once `done`)."""
        return self.engine.decode(self.latents, self.notices)
