"""Stable Diffusion assembled by hand from diffusers parts.

`StableDiffusion.generate` reads like diffusers' `StableDiffusionPipeline.__call__` (and its img2img
and inpaint siblings, and the SDXL ones) as numbered steps, and gives the same pixels for the same
components, seeds and settings. What differs between SD 1.x, 2.x and SDXL (text and added
conditioning, VAE scaling and upcasting) is the model's family's (`sdstudio.core.families`).
Image i of a batch draws all its random numbers from its own CPU generator seeded with seed + i,
so it regenerates alone identically.
"""

from __future__ import annotations

import copy
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import torch
from PIL import Image

from sdstudio.core.adapters.apply import apply_adapters
from sdstudio.core.conditioning import parse_extra_networks
from sdstudio.core.conditioning.prompt import Scheduled, per_step
from sdstudio.core.errors import GenerationCancelled, UserError
from sdstudio.core.events import GenerationResult, ImageEvent, StepEvent
from sdstudio.core.families import Conditioning
from sdstudio.core.memory import execution_device
from sdstudio.core.models import LoadedModel
from sdstudio.core.request import GenerationRequest
from sdstudio.core.schedule import denoised_estimate
from sdstudio.core.schedulers import make_scheduler


@dataclass
class _Inputs:
    """Images prepared for img2img / inpainting (tensors in [-1, 1], mask in {0, 1})."""

    init: torch.Tensor | None = None  # (1, 3, H, W)
    mask: torch.Tensor | None = None  # (1, 1, H, W), 1 = repaint


class StableDiffusion:
    def __init__(self, model: LoadedModel):
        from diffusers.image_processor import VaeImageProcessor

        self.model = model
        self.vae_scale_factor = model.vae_scale_factor
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)
        self.mask_processor = VaeImageProcessor(
            vae_scale_factor=self.vae_scale_factor,
            do_normalize=False,
            do_binarize=True,
            do_convert_grayscale=True,
        )

    @torch.no_grad()
    def generate(
        self,
        request: GenerationRequest,
        on_step: Callable[[StepEvent], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        on_image: Callable[[ImageEvent], None] | None = None,
    ) -> GenerationResult:
        m = self.model
        notices: list[str] = []
        # 1. Check inputs and load the init image / mask.
        req = request.validate()
        inputs = self.load_inputs(req, notices)
        apply_adapters(m, req, notices)  # LoRAs (prompt tags, --lora) and embeddings
        batch = req.batch_size
        do_cfg = req.guidance > 1 and m.unet.config.time_cond_proj_dim is None

        # 2. Encode the prompt (and the negative prompt for classifier-free guidance), and the
        #    family's added conditioning (SDXL: pooled text embeddings and size time ids), for
        #    each text of A1111's prompt editing/alternation schedule.
        conds = self.encode_prompt(req, do_cfg, notices)

        # 3. Prepare the scheduler and its timesteps (img2img/inpaint start part-way in).
        scheduler = fresh_scheduler(req.scheduler, m.scheduler_config)
        scheduler.set_timesteps(req.steps, device=m.device)
        timesteps = scheduler.timesteps
        if inputs.init is not None:
            timesteps = self.strength_timesteps(scheduler, req.steps, req.strength)

        # 4. Prepare the latents: per-image CPU generators, like diffusers given a list of them.
        generators = [torch.Generator("cpu").manual_seed(s) for s in req.seeds()]
        f = self.vae_scale_factor
        shape = (batch, m.vae.config.latent_channels, req.height // f, req.width // f)
        latents, noise, image_latents, mask, masked = self.prepare_latents(
            req, inputs, scheduler, timesteps, shape, conds.at(0).embeds.dtype, generators, do_cfg
        )

        # 5. Denoising loop.
        step_kwargs = self.extra_step_kwargs(scheduler, generators)
        # The timesteps once on the host too (an explicit copy, on the CPU as well): the
        # scheduler indexes its host-side tables with them, and a GPU timestep read there, or by
        # float(t), would wait for the GPU every step. The UNet takes them on its device.
        host_timesteps = timesteps.to("cpu", copy=True)
        start = time.perf_counter()
        for i, t in enumerate(timesteps):
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled()
            t_host = host_timesteps[i]
            model_input = torch.cat([latents] * 2) if do_cfg else latents
            model_input = scheduler.scale_model_input(model_input, t_host)
            if mask is not None and masked is not None:  # 9-channel inpainting UNet
                model_input = torch.cat([model_input, mask, masked], dim=1)
            noise_pred = self.predict_noise(model_input, t, conds.at(i))
            if do_cfg:
                uncond, text = noise_pred.chunk(2)
                noise_pred = uncond + req.guidance * (text - uncond)
            sample = latents
            step_out = scheduler.step(noise_pred, t_host, latents, **step_kwargs,
                                      return_dict=False)
            latents = step_out[0]
            if image_latents is not None:  # 4-channel inpainting: keep the unmasked part
                latents = self.blend_known(
                    scheduler, host_timesteps, i, latents, image_latents, noise, mask, do_cfg
                )
            if on_step is not None:
                elapsed = time.perf_counter() - start
                x0 = denoised_estimate(scheduler, step_out, t_host, sample, noise_pred)
                on_step(StepEvent(i + 1, len(timesteps), float(t_host), latents, elapsed, x0))

        # 6. Decode with the VAE, one image at a time.
        events = []
        for index, seed in enumerate(req.seeds()):
            image = self.decode(latents[index : index + 1], notices)
            event = ImageEvent(index, seed, image, req, notices)
            events.append(event)
            if on_image is not None:
                on_image(event)
        return GenerationResult(events, notices)

    # -- 1. inputs -------------------------------------------------------------------------------

    def load_inputs(self, req: GenerationRequest, notices: list[str]) -> _Inputs:
        if req.mode == "inpaint" and self.model.unet.config.in_channels not in (4, 9):
            raise UserError("This model's UNet is neither a 4- nor a 9-channel UNet.")
        if req.mode == "txt2img" and self.model.unet.config.in_channels != 4:
            raise UserError("This is an inpainting model: give it an init image and a mask.")
        if not req.init_image:
            return _Inputs()
        size = (req.width, req.height)
        init = _open_image(req.init_image, "Init image", "RGB", size, notices)
        inputs = _Inputs(init=self.image_processor.preprocess(init, req.height, req.width))
        if req.mask:
            mask = _open_image(req.mask, "Mask", "L", size, notices)
            inputs.mask = self.mask_processor.preprocess(mask, req.height, req.width)
        return inputs

    # -- 2. prompt -------------------------------------------------------------------------------

    def encode_prompt(self, req: GenerationRequest, do_cfg: bool, notices: list[str]) -> Scheduled:
        """The family's conditioning per step: A1111's <lora:...> tags taken out (step 1 applied
        them), prompt editing and alternation followed, each distinct text encoded once."""
        m = self.model
        prompt = parse_extra_networks(req.prompt)[0]
        negative = parse_extra_networks(req.negative_prompt or "")[0]

        def condition(prompt_text: str, negative_text: str) -> Conditioning:
            texts = replace(req, prompt=prompt_text, negative_prompt=negative_text)
            return m.family.conditioning(m, texts, do_cfg, notices)

        return per_step(prompt, negative, req.steps, condition)

    # -- 3. timesteps ----------------------------------------------------------------------------

    @staticmethod
    def strength_timesteps(scheduler, steps: int, strength: float) -> torch.Tensor:
        """Skip the first (1 - strength) of the schedule, as diffusers' img2img `get_timesteps`."""
        init_timestep = min(int(steps * strength), steps)
        t_start = max(steps - init_timestep, 0)
        if steps - t_start < 1:
            raise UserError(
                f"Strength {strength} with {steps} steps leaves no step to run; raise one of them."
            )
        timesteps = scheduler.timesteps[t_start * scheduler.order :]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(t_start * scheduler.order)
        return timesteps

    # -- 4. latents ------------------------------------------------------------------------------

    def prepare_latents(self, req, inputs, scheduler, timesteps, shape, dtype, generators, do_cfg):
        """Initial latents, in the order diffusers draws its random numbers from each generator.

        Returns (latents, noise, image_latents, mask, masked_image_latents); the last four are
        None unless inpainting needs them (image_latents: 4-channel UNet blending; mask and
        masked_image_latents: the extra inputs of a 9-channel UNet).
        """
        from diffusers.utils.torch_utils import randn_tensor

        device = self.model.device
        if inputs.init is None:  # txt2img
            latents = randn_tensor(shape, generator=generators, device=device, dtype=dtype)
            return latents * scheduler.init_noise_sigma, None, None, None, None
        latent_t = timesteps[:1].repeat(shape[0])
        if inputs.mask is None:  # img2img
            init_latents = self.encode_image(inputs.init, generators, dtype)
            noise = randn_tensor(shape, generator=generators, device=device, dtype=dtype)
            return scheduler.add_noise(init_latents, noise, latent_t), None, None, None, None
        return self._prepare_inpaint(req, inputs, scheduler, latent_t, shape, dtype, generators, do_cfg)

    def _prepare_inpaint(self, req, inputs, scheduler, latent_t, shape, dtype, generators, do_cfg):
        from diffusers.utils.torch_utils import randn_tensor

        device = self.model.device
        nine = self.model.unet.config.in_channels == 9
        full_strength = req.strength == 1.0
        image_latents = None
        if not nine or not full_strength:
            image_latents = self.encode_image(inputs.init, generators, dtype)
        noise = randn_tensor(shape, generator=generators, device=device, dtype=dtype)
        if full_strength:
            latents = noise * scheduler.init_noise_sigma
        else:
            latents = scheduler.add_noise(image_latents, noise, latent_t)
        mask = torch.nn.functional.interpolate(inputs.mask, size=shape[-2:])
        mask = mask.to(device=device, dtype=dtype).repeat(shape[0], 1, 1, 1)
        masked_image = inputs.init * (inputs.mask < 0.5)
        if not nine:
            # diffusers encodes the masked image even for 4-channel UNets (and drops it): draw
            # the same random numbers instead, so every later draw of each generator matches.
            self._skip_latent_sample(shape, generators)
            return latents, noise, image_latents, mask, None
        masked = self.encode_image(masked_image, generators, dtype)
        if do_cfg:
            mask, masked = torch.cat([mask] * 2), torch.cat([masked] * 2)
        return latents, noise, None, mask, masked

    def encode_image(self, image: torch.Tensor, generators, dtype) -> torch.Tensor:
        """VAE-encode one image, then sample its latent once per generator (scaled)."""
        vae = self.model.vae
        dist = vae.encode(image.to(device=execution_device(vae), dtype=vae.dtype)).latent_dist
        samples = torch.cat([dist.sample(g) for g in generators])
        return self.model.family.from_vae_space(vae, samples.to(dtype))

    def _skip_latent_sample(self, shape, generators) -> None:
        from diffusers.utils.torch_utils import randn_tensor

        vae = self.model.vae
        for g in generators:
            randn_tensor((1, *shape[1:]), generator=g, device=execution_device(vae), dtype=vae.dtype)

    # -- 5. loop helpers -------------------------------------------------------------------------

    @staticmethod
    def extra_step_kwargs(scheduler, generators) -> dict:
        """`eta` (DDIM) and `generator` (ancestral/SDE samplers) where `step` takes them."""
        params = set(inspect.signature(scheduler.step).parameters)
        kwargs: dict = {}
        if "eta" in params:
            kwargs["eta"] = 0.0
        if "generator" in params:
            kwargs["generator"] = generators
        return kwargs

    def predict_noise(self, model_input, t, cond: Conditioning) -> torch.Tensor:
        """One UNet call; two (negatives, then prompts) where the negative prompt's conditioning
        has another length than the prompt's (A1111's default: no padding)."""
        unet = self.model.unet
        if cond.uncond is None:
            return unet(model_input, t, encoder_hidden_states=cond.embeds,
                        added_cond_kwargs=cond.added, return_dict=False)[0]
        halves = model_input.chunk(2)
        return torch.cat([
            unet(x, t, encoder_hidden_states=c.embeds, added_cond_kwargs=c.added,
                 return_dict=False)[0]
            for x, c in zip(halves, (cond.uncond, cond), strict=True)
        ])

    @staticmethod
    def blend_known(scheduler, timesteps, i, latents, image_latents, noise, mask, do_cfg):
        """4-channel inpainting: the known region is the init image noised to the next timestep
        (`timesteps` on the host; diffusers' `add_noise` itself still looks the index up)."""
        init_mask = mask.chunk(2)[0] if do_cfg else mask
        proper = image_latents
        if i < len(timesteps) - 1:
            proper = scheduler.add_noise(image_latents, noise, timesteps[i + 1 : i + 2])
        return (1 - init_mask) * proper + init_mask * latents

    # -- 6. decode -------------------------------------------------------------------------------

    def decode(self, latents: torch.Tensor, notices: list[str]) -> Image.Image:
        """VAE-decode in the VAE's dtype (fp32 where the family upcasts it); a VAE that gives
        NaN in fp16 or bf16 is switched to fp32 for good and the image decoded again."""
        vae, family = self.model.vae, self.model.family
        image = vae.decode(family.to_vae_space(vae, latents.to(vae.dtype)), return_dict=False)[0]
        if vae.dtype != torch.float32 and torch.isnan(image).any():
            name = "bf16" if vae.dtype == torch.bfloat16 else "fp16"
            vae.to(torch.float32)
            notices.append(f"The VAE gave NaN in {name} and was switched to fp32.")
            image = vae.decode(family.to_vae_space(vae, latents.float()), return_dict=False)[0]
        return self.image_processor.postprocess(image, output_type="pil")[0]


def fresh_scheduler(name: str, config: dict):
    """`make_scheduler(name, config)`, built once per (name, config) and copied: some schedulers
    (KDPM2, Heun) spend a second of numpy in their constructor."""
    return copy.deepcopy(_scheduler_template(name, json.dumps(config, sort_keys=True, default=str)))


@lru_cache(maxsize=32)
def _scheduler_template(name: str, config_json: str):
    return make_scheduler(name, json.loads(config_json))


def _open_image(path: str, what: str, mode: str, size: tuple[int, int], notices: list[str]):
    try:
        with Image.open(path) as im:
            image = im.convert(mode)
    except (OSError, ValueError) as exc:
        raise UserError(f"{what} {path} cannot be opened ({exc}).") from None
    if image.size != size:
        notices.append(
            f"{what} was resized from {image.size[0]}x{image.size[1]} to {size[0]}x{size[1]}."
        )
    return image
