"""Finding and loading Stable Diffusion models: diffusers folders, single files, cached HF ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdstudio.core.errors import ModelLoadError, UserError
from sdstudio.core.latents import load_latent_rgb
from sdstudio.core.model_settings import DEFAULT_GUIDANCE, recommended_guidance
from sdstudio.core.models import checkpoints
from sdstudio.core.paths import demo_model_dir
from sdstudio.core.request import DEMO_MODEL

COMPONENTS = ("tokenizer", "text_encoder", "unet", "vae", "scheduler")


@dataclass
class LoadedModel:
    name: str  # display name
    source: str  # path or id it was loaded from
    tokenizer: Any
    text_encoder: Any
    unet: Any
    vae: Any
    scheduler_config: dict  # the model's own scheduler config
    device: torch.device
    dtype: torch.dtype
    sha256: str | None = None  # of the single file, where there is one
    latent_rgb: torch.Tensor | None = None  # the model's own preview projection, if it ships one
    guidance: float = DEFAULT_GUIDANCE  # the CFG scale the model works best at (sdstudio.json)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        """The image size the model was trained at (512 for SD 1.x)."""
        size = self.unet.config.sample_size
        size = size if isinstance(size, int) else size[0]
        return size * self.vae_scale_factor

    @property
    def is_inpainting(self) -> bool:
        return self.unet.config.in_channels == 9


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[torch.device, torch.dtype]:
    """auto: cuda, else mps, else cpu; fp16 on cuda, fp32 elsewhere."""
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("CUDA was asked for but no CUDA GPU is available; use --device cpu.")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("MPS was asked for but is not available on this machine; use --device cpu.")
    if device not in ("cpu", "cuda", "mps"):
        raise UserError(f"Device must be auto, cpu, cuda or mps, got {device!r}.")
    if dtype == "auto":
        dtype = "fp16" if device == "cuda" else "fp32"
    if dtype not in ("fp32", "fp16"):
        raise UserError(f"Dtype must be auto, fp32 or fp16, got {dtype!r}.")
    if dtype == "fp16" and device == "cpu":
        raise UserError("fp16 needs a GPU; use fp32 on the CPU.")
    return torch.device(device), torch.float16 if dtype == "fp16" else torch.float32


def available_devices() -> list[str]:
    """The devices this machine has, for a device menu: cpu, and cuda / mps where present."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names.append("cuda")
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def load_model(
    model: str, device: str = "auto", dtype: str = "auto", vae: str | None = None,
    prediction: str | None = None, config: str | None = None,
) -> LoadedModel:
    """Load `model`: "demo", a diffusers folder, a .safetensors/.ckpt file, or a cached HF id.

    `vae`: a separate VAE (file or folder; "none" for the model's own), remembered per model.
    `prediction` (single files): epsilon or v, overriding the guess, remembered per file.
    `config` (single files): a diffusers-layout folder to use instead of the shipped configs.
    """
    from sdstudio.core.models.vae import with_vae

    return with_vae(_load(model, device, dtype, prediction, config), model, vae)


def _load(
    model: str, device: str, dtype: str, prediction: str | None, config: str | None
) -> LoadedModel:
    dev, dt = resolve_device(device, dtype)
    if model == DEMO_MODEL:
        folder = demo_model_dir()
        if not (folder / "model_index.json").is_file():
            raise ModelLoadError(
                f"The demo model is not installed (expected in {folder}); pass --model PATH instead."
            )
        return _from_folder(folder, "demo", dev, dt)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"{path} is not a diffusers model folder (it has no model_index.json)."
            )
        return _from_folder(path, path.name, dev, dt)
    if path.is_file():
        return _from_single_file(path, dev, dt, prediction, config)
    if _looks_like_path(model):
        raise ModelLoadError(f"Model path {model} does not exist.")
    return _from_folder(_cached_hub_folder(model), model, dev, dt, source=model)


def _looks_like_path(model: str) -> bool:
    p = Path(model)
    return (
        p.suffix.lower() in checkpoints.SAFETENSORS | checkpoints.PICKLES
        or model.startswith((".", "/", "~", "\\"))
        or model.count("/") != 1
        or p.drive != ""
    )


def _cached_hub_folder(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        raise ModelLoadError(
            f"{repo_id} is not a file, a folder, or a Hugging Face model in the local cache."
        ) from None


def _from_folder(
    folder: Path, name: str, device: torch.device, dtype: torch.dtype, source: str | None = None
) -> LoadedModel:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    missing = [c for c in COMPONENTS if not (folder / c).is_dir()]
    if missing:
        raise ModelLoadError(
            f"{folder} is not a Stable Diffusion model: it has no {', '.join(missing)} folder."
        )
    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))
        text_encoder = CLIPTextModel.from_pretrained(str(folder / "text_encoder"))
        unet = UNet2DConditionModel.from_pretrained(str(folder / "unet"))
        vae = AutoencoderKL.from_pretrained(str(folder / "vae"))
        sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text("utf-8"))
    except Exception as exc:
        raise ModelLoadError(
            f"The model in {folder} cannot be loaded ({checkpoints._first_line(exc)})."
        ) from None
    loaded = _assemble(
        name, source or str(folder), tokenizer, text_encoder, unet, vae, sched, device, dtype
    )
    loaded.latent_rgb = load_latent_rgb(folder / "vae")
    loaded.guidance = recommended_guidance(folder)
    return loaded


def _from_single_file(
    path: Path, device: torch.device, dtype: torch.dtype, prediction: str | None = None,
    config: str | None = None,
) -> LoadedModel:
    from sdstudio.core.models import choices, hashing
    from sdstudio.core.models.single_file import load_single_file, prediction_name

    if prediction:
        prediction = prediction_name(prediction)
    one = load_single_file(
        path, dtype, prediction, choices.recall(path).get("prediction"),
        Path(config) if config else None,
    )
    if prediction:
        choices.remember(path, prediction=prediction)
    c = one.components
    if one.kind.family == "sdxl":
        raise ModelLoadError(
            f"{path.name} is an {one.kind.label} checkpoint; this build cannot run SDXL yet."
        )
    loaded = _assemble(
        path.stem, str(path), c["tokenizer"], c["text_encoder"], c["unet"], c["vae"],
        one.scheduler_config, device, dtype, sha256=hashing.cached_sha256(path),
    )
    if loaded.sha256 is None:  # hashed once in the background; cached by path, size and mtime
        hashing.hash_in_background(path, lambda _p, digest: setattr(loaded, "sha256", digest))
    return loaded


def _assemble(
    name: str, source: str, tokenizer, text_encoder, unet, vae, sched: dict,
    device: torch.device, dtype: torch.dtype, sha256: str | None = None,
) -> LoadedModel:
    """Move components to the device; the VAE stays fp32 where its config forces upcasting."""
    vae_dtype = torch.float32 if getattr(vae.config, "force_upcast", False) else dtype
    for module, dt in ((text_encoder, dtype), (unet, dtype), (vae, vae_dtype)):
        module.to(device)
        if module.dtype != dt:  # diffusers warns on dtype casts that change nothing
            module.to(dtype=dt)
        module.eval()
        module.requires_grad_(False)
    return LoadedModel(
        name=name, source=source, tokenizer=tokenizer, text_encoder=text_encoder, unet=unet,
        vae=vae, scheduler_config=dict(sched), device=device, dtype=dtype, sha256=sha256,
    )
