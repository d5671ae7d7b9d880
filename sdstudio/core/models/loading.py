"""Finding and loading Stable Diffusion models: diffusers folders, single files, cached HF ids."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sdstudio.core.errors import ModelLoadError, UserError
from sdstudio.core.families import Family, family_of_components, unsupported_pipeline
from sdstudio.core.fastpath import prepare_for_device
from sdstudio.core.latents import load_latent_rgb
from sdstudio.core.model_settings import DEFAULT_GUIDANCE, recommended_guidance
from sdstudio.core.models import checkpoints
from sdstudio.core.paths import demo_model_dir
from sdstudio.core.request import DEMO_MODEL

COMPONENTS = ("tokenizer", "text_encoder", "unet", "vae", "scheduler")
SDXL_TEXT = ("tokenizer_2", "text_encoder_2")  # SDXL's second text encoder (the refiner: its only)
# model_index.json flags the SDXL pipelines read (diffusers' defaults where a folder has none).
PIPELINE_FLAGS = ("force_zeros_for_empty_prompt", "requires_aesthetics_score")


@dataclass
class LoadedModel:
    name: str  # display name
    source: str  # path or id it was loaded from
    tokenizer: Any  # None for an SDXL refiner, which has only the second text encoder
    text_encoder: Any
    unet: Any
    vae: Any
    scheduler_config: dict  # the model's own scheduler config
    device: torch.device
    dtype: torch.dtype
    sha256: str | None = None  # of the single file, where there is one
    # the preview projection [5, 3]: the model's own if it ships one, else its family's
    latent_rgb: torch.Tensor | None = None
    guidance: float = DEFAULT_GUIDANCE  # the CFG scale the model works best at (sdstudio.json)
    # read from the components' configs when not given (see __post_init__), so never None
    family: Family = None  # type: ignore[assignment]
    tokenizer_2: Any = None  # SDXL
    text_encoder_2: Any = None  # SDXL: CLIPTextModelWithProjection (pooled embeddings)
    pipeline_config: dict = field(default_factory=dict)  # model_index flags (PIPELINE_FLAGS)
    vae_source: str | None = None  # a separate VAE (file or folder) in place of the model's own
    vae_sha256: str | None = None  # of that VAE, where it is one file (hashed in the background)
    memory: Any = None  # where it stands on the memory ladder (sdstudio.core.memory)

    def __post_init__(self) -> None:
        if self.family is None:
            self.family = family_of_components(
                self.unet, self.text_encoder, self.text_encoder_2, self.scheduler_config
            )

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        """The image size the model was trained at (512 for SD 1.x, 1024 for SDXL)."""
        size = self.unet.config.sample_size
        if size is None:
            return self.family.default_size
        size = size if isinstance(size, int) else size[0]
        return size * self.vae_scale_factor

    @property
    def family_label(self) -> str:
        """What the model is, as users name it: "SDXL inpainting", "SD 2.x (v)", ..."""
        return self.family.describe(self)

    @property
    def is_inpainting(self) -> bool:
        return self.unet.config.in_channels == 9


def resolve_device(
    device: str = "auto", dtype: str = "auto",
    stored: Callable[[], torch.dtype | None] | None = None,
) -> tuple[torch.device, torch.dtype]:
    """auto: cuda, else mps, else cpu. dtype auto: fp16 on cuda (bf16 where `stored()`, the
    dtype the weights are stored in, is bf16 and the GPU has it), fp32 elsewhere."""
    from sdstudio.core.fastpath import choose_dtype

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
    cuda = device == "cuda"
    weights = stored() if cuda and dtype == "auto" and stored is not None else None
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return torch.device(device), choose_dtype(dtype, device, weights, bf16)


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
    dev, dt = resolve_device(device, dtype, stored=lambda: _stored_dtype(model))
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


def _stored_dtype(model: str) -> torch.dtype | None:
    """The dtype `model`'s UNet weights are stored in, read from a file header (None: unknown)."""
    from sdstudio.core.fastpath import stored_dtype

    if model == DEMO_MODEL:
        return stored_dtype(demo_model_dir())
    path = Path(model).expanduser()
    if path.exists() or _looks_like_path(model):
        return stored_dtype(path)
    try:
        return stored_dtype(_cached_hub_folder(model))
    except ModelLoadError:
        return None


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
    index = _model_index(folder)
    other = unsupported_pipeline(index.get("_class_name"))
    if other is not None:
        raise ModelLoadError(
            f"{folder} is {other}, which sdstudio does not run; it runs SD 1.x, SD 2.x and SDXL."
        )
    second = _declared(index, folder, "text_encoder_2")
    first = _declared(index, folder, "text_encoder") or not second  # a refiner has no first one
    needed = [*(COMPONENTS if first else COMPONENTS[2:]), *(SDXL_TEXT if second else ())]
    missing = [c for c in needed if not (folder / c).is_dir()]
    if missing:
        raise ModelLoadError(
            f"{folder} is not a Stable Diffusion model: it has no {', '.join(missing)} folder."
        )
    try:
        parts = _load_components(folder, second, dtype)
        sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text("utf-8"))
    except Exception as exc:
        raise ModelLoadError(
            f"The model in {folder} cannot be loaded ({checkpoints._first_line(exc)})."
        ) from None
    flags = {k: index[k] for k in PIPELINE_FLAGS if k in index}
    loaded = _assemble(
        name, source or str(folder), parts["tokenizer"], parts["text_encoder"], parts["unet"],
        parts["vae"], sched, device, dtype, tokenizer_2=parts["tokenizer_2"],
        text_encoder_2=parts["text_encoder_2"], pipeline_config=flags,
    )
    loaded.latent_rgb = _or(load_latent_rgb(folder / "vae"), loaded.latent_rgb)
    loaded.guidance = recommended_guidance(folder)
    return loaded


def _model_index(folder: Path) -> dict:
    try:
        index = json.loads((folder / "model_index.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{folder}'s model_index.json cannot be read ({checkpoints._first_line(exc)})."
        ) from None
    if not isinstance(index, dict):
        raise ModelLoadError(f"{folder}'s model_index.json is not a diffusers model index.")
    return index


def _declared(index: dict, folder: Path, component: str) -> bool:
    """Whether the model has `component`: in model_index.json (not [null, null]) or as a folder."""
    entry = index.get(component)
    return (isinstance(entry, list) and any(entry)) or (folder / component).is_dir()


def _load_components(folder: Path, second: bool, dtype: torch.dtype) -> dict[str, Any]:
    """The diffusers components in `folder`, read straight into `dtype` (an SDXL UNet is 10 GB
    in fp32); the text encoders present (one or both of SDXL's)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    def weights(cls, name: str, dtype_arg: str):
        path = folder / name
        return cls.from_pretrained(str(path), variant=_variant(path), **{dtype_arg: dtype})

    parts: dict[str, Any] = dict.fromkeys(("tokenizer", "text_encoder", *SDXL_TEXT))
    if (folder / "text_encoder").is_dir():
        parts["tokenizer"] = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))
        parts["text_encoder"] = weights(CLIPTextModel, "text_encoder", "dtype")
    if second:
        parts["tokenizer_2"] = CLIPTokenizer.from_pretrained(str(folder / "tokenizer_2"))
        parts["text_encoder_2"] = weights(CLIPTextModelWithProjection, "text_encoder_2", "dtype")
    parts["unet"] = weights(UNet2DConditionModel, "unet", "torch_dtype")
    parts["vae"] = weights(AutoencoderKL, "vae", "torch_dtype")
    return parts


def _variant(component: Path) -> str | None:
    """"fp16" where a component folder has only fp16-variant weights (`*.fp16.safetensors`, as
    many SDXL downloads are), else None (the plain weights)."""
    names = [p.name for p in component.iterdir() if p.suffix in (".safetensors", ".bin")]
    plain = [n for n in names if n.count(".") == 1]
    if not plain and any(".fp16." in n for n in names):
        return "fp16"
    return None


def _or(value, default):
    return default if value is None else value


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
    loaded = _assemble(
        path.stem, str(path), c.get("tokenizer"), c.get("text_encoder"), c["unet"], c["vae"],
        one.scheduler_config, device, dtype, sha256=hashing.cached_sha256(path),
        tokenizer_2=c.get("tokenizer_2"), text_encoder_2=c.get("text_encoder_2"),
        pipeline_config={k: one.pipeline_config[k] for k in PIPELINE_FLAGS
                         if k in one.pipeline_config},
    )
    if loaded.sha256 is None:  # hashed once in the background; cached by path, size and mtime
        hashing.hash_in_background(path, lambda _p, digest: setattr(loaded, "sha256", digest))
    return loaded


def vae_dtype(vae, family: Family, dtype: torch.dtype) -> torch.dtype:
    """`dtype`, or fp32 for a VAE the family upcasts in fp16 (SDXL's `force_upcast`; in bf16 it
    does not, as diffusers): diffusers holds that VAE in fp16 and upcasts it to decode, so its weights are rounded the same way here (same
    pixels), but it is kept in fp32 instead of being cast for every image."""
    if not family.upcast_vae(vae) or dtype != torch.float16:  # bf16 has fp32's range
        return dtype
    with torch.no_grad():
        for tensor in (*vae.parameters(), *vae.buffers()):
            tensor.copy_(tensor.to(dtype))
    return torch.float32


def _assemble(
    name: str, source: str, tokenizer, text_encoder, unet, vae, sched: dict,
    device: torch.device, dtype: torch.dtype, sha256: str | None = None, *,
    tokenizer_2=None, text_encoder_2=None, family: Family | None = None,
    pipeline_config: dict | None = None,
) -> LoadedModel:
    """A LoadedModel from built components (folder or single file): the family is read from
    their configs unless given; modules move to the device, in `dtype` except a VAE the family
    keeps in fp32 (SDXL's `force_upcast`, as diffusers decodes it); on CUDA, the fast path's
    memory format and attention (`sdstudio.core.fastpath`)."""
    family = family or family_of_components(unet, text_encoder, text_encoder_2, sched)
    if family.name == "sdxl" and text_encoder_2 is None:
        raise ModelLoadError(
            f"{name} has an SDXL UNet but no second text encoder (text_encoder_2)."
        )
    modules = [(m, dtype) for m in (text_encoder, text_encoder_2, unet) if m is not None]
    for module, dt in (*modules, (vae, vae_dtype(vae, family, dtype))):
        module.to(device)
        if module.dtype != dt:  # diffusers warns on dtype casts that change nothing
            module.to(dtype=dt)
        module.eval()
        module.requires_grad_(False)
    prepare_for_device(unet, vae, device)
    return LoadedModel(
        name=name, source=source, tokenizer=tokenizer, text_encoder=text_encoder, unet=unet,
        vae=vae, scheduler_config=dict(sched), device=device, dtype=dtype, sha256=sha256,
        latent_rgb=family.latent_rgb.clone(), family=family, tokenizer_2=tokenizer_2,
        text_encoder_2=text_encoder_2, pipeline_config=dict(pipeline_config or {}),
    )
