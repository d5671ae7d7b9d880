"""Single-file checkpoints (original LDM/SGM layout): tell the family from the keys and shapes,
rename legacy key layouts, and build the diffusers components with the configs shipped in
resources/configs/ (so nothing is fetched from a hub).

Detection follows diffusers' `infer_diffusers_model_type` (the same keys and shapes its
`from_single_file` uses), so a file we accept is one diffusers would load the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdstudio.core.errors import ModelLoadError
from sdstudio.core.models import checkpoints
from sdstudio.core.paths import resources_dir

UNET_PREFIX = "model.diffusion_model."
PREDICTIONS = ("epsilon", "v_prediction")
_PREDICTION_NAMES = {"epsilon": "epsilon", "eps": "epsilon", "v": "v_prediction",
                     "v_prediction": "v_prediction", "v-prediction": "v_prediction"}


def prediction_name(value: str) -> str:
    """epsilon / v_prediction from what a user types (eps, epsilon, v, v_prediction)."""
    name = _PREDICTION_NAMES.get(value.strip().lower())
    if name is None:
        raise ModelLoadError(f"Prediction must be epsilon or v, got {value!r}.")
    return name


@dataclass(frozen=True)
class Kind:
    """What a checkpoint holds: the family (sd1, sd2, sdxl), its variant and its config folder."""

    family: str
    variant: str  # "base", "inpainting" or "refiner"
    label: str  # for the user: "SD 1.x inpainting"
    config: str  # folder name under resources/configs/


KINDS = {
    "v1": Kind("sd1", "base", "SD 1.x", "sd15"),
    "inpainting": Kind("sd1", "inpainting", "SD 1.x inpainting", "sd15-inpainting"),
    "v2": Kind("sd2", "base", "SD 2.x", "sd2"),
    "inpainting_v2": Kind("sd2", "inpainting", "SD 2.x inpainting", "sd2-inpainting"),
    "xl_base": Kind("sdxl", "base", "SDXL", "sdxl-base"),
    "xl_inpaint": Kind("sdxl", "inpainting", "SDXL inpainting", "sdxl-inpainting"),
    "xl_refiner": Kind("sdxl", "refiner", "SDXL refiner", "sdxl-refiner"),
}

# diffusers' model types (infer_diffusers_model_type) that we recognise but do not run.
_OTHER_MODELS = {
    "sd3": "Stable Diffusion 3", "sd35_medium": "Stable Diffusion 3.5 Medium",
    "sd35_large": "Stable Diffusion 3.5 Large", "flux": "FLUX.1", "flux-2": "FLUX.2",
    "chroma": "Chroma", "stable_cascade": "Stable Cascade", "playground-v2-5": "Playground v2.5",
    "upscale": "Stable Diffusion x4 upscaler", "controlnet": "ControlNet",
    "instruct-pix2pix": "InstructPix2Pix", "animatediff": "AnimateDiff motion module",
    "auraflow": "AuraFlow", "ltx": "LTX-Video", "hunyuan-video": "HunyuanVideo",
    "mochi": "Mochi", "wan": "Wan", "sana": "Sana", "lumina2": "Lumina 2", "hidream": "HiDream",
    "cosmos": "Cosmos", "autoencoder-dc": "DC-AE autoencoder", "z-image": "Z-Image",
}

# Legacy layouts A1111 (`checkpoint_dict_replacements_sd1`, `..._sd2_turbo`) and ComfyUI
# (`SD15.process_clip_state_dict`, `SD20.process_clip_state_dict`) rename before loading.
_SD1_TEXT = "cond_stage_model.transformer."
_XL_TEXT = "conditioner.embedders.0.transformer."
_SGM_OPEN_CLIP = "conditioner.embedders.0.model."


def config_folder(kind: Kind) -> Path:
    return resources_dir() / "configs" / kind.config


def clip_tokenizer_folder() -> Path:
    """CLIP's BPE vocabulary; OpenCLIP (SD 2.x, SDXL's second encoder) uses the same one."""
    return resources_dir() / "configs" / "clip-tokenizer"


def normalize_keys(state: dict[str, Any]) -> dict[str, Any]:
    """Rename the legacy key layouts A1111 and ComfyUI accept to the one diffusers converts."""
    # SD 2.x saved by Stability's SGM code (SD 2.1 Turbo) keeps OpenCLIP under `conditioner.`;
    # an SDXL refiner does too, but its UNet has the added (label_emb) conditioning.
    sd2_sgm = _SGM_OPEN_CLIP + "token_embedding.weight" in state and (
        UNET_PREFIX + "label_emb.0.0.weight" not in state
    )
    for key in list(state):
        new = key
        for prefix in (_SD1_TEXT, _XL_TEXT):
            # CLIP text encoder saved without `text_model.` (older transformers, diffusers' script)
            if key.startswith(prefix) and not key.startswith(prefix + "text_model."):
                new = prefix + "text_model." + key[len(prefix):]
        if sd2_sgm and key.startswith(_SGM_OPEN_CLIP):
            new = "cond_stage_model.model." + key[len(_SGM_OPEN_CLIP):]
        if new != key:
            state[new] = state.pop(key)
    return state


def detect_kind(name: str, shapes: Mapping[str, tuple[int, ...]]) -> Kind:
    """The checkpoint's family from its keys and shapes; one sentence for anything else."""
    _refuse_non_models(name, shapes)
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    meta = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    try:
        model_type = infer_diffusers_model_type(meta)
    except Exception:  # diffusers reads a tensor's values for some rare families
        model_type = "unknown"
    if model_type in KINDS:
        if not any(k.startswith(UNET_PREFIX) for k in shapes):
            raise ModelLoadError(
                f"{name} is not a Stable Diffusion checkpoint (it has no UNet weights)."
            )
        return KINDS[model_type]
    for prefix in sorted(_OTHER_MODELS, key=len, reverse=True):  # "flux-2" before "flux"
        label = _OTHER_MODELS[prefix]
        if model_type.startswith(prefix):
            raise ModelLoadError(
                f"{name} is a {label} model, which sdstudio does not run "
                "(it runs SD 1.x, SD 2.x and SDXL)."
            )
    raise ModelLoadError(f"{name} is not a Stable Diffusion checkpoint ({model_type} model).")


def _refuse_non_models(name: str, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """LoRAs, VAEs, embeddings and upscalers opened as a model: say what the file is."""
    keys = list(shapes)
    if any(k.startswith(UNET_PREFIX) for k in keys):
        return
    if any("lora_" in k or ".lora." in k or k.endswith(".alpha") for k in keys):
        raise ModelLoadError(f"{name} is a LoRA, not a model: use it with a model, not as one.")
    if is_vae(shapes):
        raise ModelLoadError(
            f"{name} is a VAE, not a full model: choose it as a model's VAE instead."
        )
    if any(k.startswith("string_to_param") or k in ("emb_params", "clip_l", "clip_g")
           for k in keys):
        raise ModelLoadError(
            f"{name} is a textual-inversion embedding, not a model: use it in a prompt."
        )
    if any(k.startswith(("conv_first.", "model.0.", "body.", "params_ema")) for k in keys):
        raise ModelLoadError(f"{name} is an upscaler, not a Stable Diffusion model.")


def is_vae(shapes: Mapping[str, Any]) -> bool:
    """A file holding only an autoencoder (original layout, diffusers layout, or with a prefix)."""
    keys = set(shapes)
    for prefix in ("", "first_stage_model.", "vae."):
        if f"{prefix}decoder.conv_in.weight" in keys and not any(
            k.startswith(UNET_PREFIX) for k in keys
        ):
            return True
    return False


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a single file; pickles only through `weights_only`."""
    if path.suffix.lower() in checkpoints.SAFETENSORS:
        checkpoints.check_safetensors(path)
        from safetensors.torch import load_file

        state: Any = load_file(str(path))
    elif path.suffix.lower() in checkpoints.PICKLES:
        state = checkpoints.load_pickle_weights(path)
    else:
        raise ModelLoadError(
            f"{path.name} is not a model file; use a .safetensors or .ckpt file or a diffusers "
            "folder."
        )
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path.name} holds no weights that sdstudio can read.")
    return state


def shapes_of(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def guess_prediction(kind: Kind, state: Mapping[str, Any]) -> str:
    """epsilon or v_prediction, which the keys cannot say for SD 2.x.

    diffusers (`_legacy_load_scheduler`): SD 2.x is v-prediction unless `global_step` is 875000
    (the 512-base release). Files saved as safetensors rarely keep `global_step`; then ComfyUI's
    rule (`SD20.model_type`): a v-model's last attention norm bias has a larger spread. SDXL and
    SD 1.x are epsilon unless the file carries ComfyUI's `v_pred` marker.
    """
    if "v_pred" in state:
        return "v_prediction"
    if kind.family != "sd2" or kind.variant == "inpainting":
        return "epsilon"
    step = state.get("global_step")
    if step is not None:
        return "epsilon" if int(step) == 875000 else "v_prediction"
    bias = state.get(UNET_PREFIX + "output_blocks.11.1.transformer_blocks.0.norm1.bias")
    if isinstance(bias, torch.Tensor):
        return "v_prediction" if torch.std(bias.float(), unbiased=False) > 0.09 else "epsilon"
    return "v_prediction"


def config_for(kind: Kind, prediction: str) -> Kind:
    """SD 2.x: the 768 v-prediction config, or the 512 epsilon one."""
    if kind.family == "sd2" and kind.variant == "base" and prediction == "v_prediction":
        return Kind(kind.family, kind.variant, "SD 2.x 768-v", "sd2-v")
    return kind


@dataclass
class SingleFile:
    """The diffusers components of one checkpoint, not yet on the device."""

    kind: Kind
    components: dict[str, Any]  # tokenizer(_2), text_encoder(_2), unet, vae (what the kind has)
    scheduler_config: dict
    prediction: str
    pipeline_config: dict  # the config folder's model_index.json (SDXL pipeline flags)


def load_single_file(
    path: Path, dtype: torch.dtype | None = None, prediction: str | None = None,
    remembered: str | None = None, config: Path | None = None,
) -> SingleFile:
    """Read `path`, tell its family, and build its components with the shipped configs.

    `prediction` (epsilon / v_prediction) overrides the guess; `remembered` is the user's earlier
    choice for this file, used when there is no override. `config` is a diffusers-layout folder
    to use instead of the shipped one (a model of another size, such as the tests' tiny ones).
    """
    state = normalize_keys(load_state_dict(path))
    kind = detect_kind(path.name, shapes_of(state))
    chosen = prediction or remembered or guess_prediction(kind, state)
    if chosen not in PREDICTIONS:
        raise ModelLoadError(f"Prediction must be epsilon or v_prediction, got {chosen!r}.")
    kind = config_for(kind, chosen)
    folder = config or config_folder(kind)
    try:
        components = build_components(state, folder, kind, dtype)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"{path.name} looks like an {kind.label} checkpoint but cannot be loaded "
            f"({checkpoints._first_line(exc)})."
        ) from None
    import json

    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text("utf-8"))
    sched["prediction_type"] = chosen
    index = json.loads((folder / "model_index.json").read_text("utf-8"))
    return SingleFile(kind, components, sched, chosen, index)


def build_components(
    state: dict[str, Any], config: Path, kind: Kind, dtype: torch.dtype | None = None
) -> dict[str, Any]:
    """diffusers' own single-file converters, one component at a time, with `config`'s folders.

    Each component's keys are dropped from `state` once converted, so a 7 GB file is not held
    twice.
    """
    import json

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    index = json.loads((config / "model_index.json").read_text("utf-8"))
    out: dict[str, Any] = {}
    out["unet"] = UNet2DConditionModel.from_single_file(
        state, config=str(config), subfolder="unet", torch_dtype=dtype, local_files_only=True
    )
    _drop(state, UNET_PREFIX)
    out["vae"] = AutoencoderKL.from_single_file(
        state, config=str(config), subfolder="vae", torch_dtype=dtype, local_files_only=True
    )
    _drop(state, "first_stage_model.")
    classes = {"CLIPTextModel": CLIPTextModel,
               "CLIPTextModelWithProjection": CLIPTextModelWithProjection}
    for name in ("text_encoder", "text_encoder_2"):
        entry = index.get(name) or [None, None]
        if entry[1] is None:
            continue
        out[name] = create_diffusers_clip_model_from_ldm(
            classes[entry[1]], checkpoint=state, subfolder=name, config=str(config),
            torch_dtype=dtype, local_files_only=True,
        )
    for name, enc, open_clip in (("tokenizer", "text_encoder", kind.family == "sd2"),
                                 ("tokenizer_2", "text_encoder_2", True)):
        if enc in out:  # a config folder's own tokenizer, else CLIP's shared one
            own = config / name
            if own.is_dir():
                out[name] = CLIPTokenizer.from_pretrained(str(own))
            else:
                out[name] = _tokenizer(CLIPTokenizer, str(clip_tokenizer_folder()),
                                       "!" if open_clip else None)
    return out


def _tokenizer(cls, folder: str, pad: str | None):
    # OpenCLIP pads with "!" (token 0) where CLIP pads with <|endoftext|>, as the hub configs do.
    return cls.from_pretrained(folder, pad_token=pad) if pad else cls.from_pretrained(folder)


def _drop(state: dict[str, Any], prefix: str) -> None:
    for k in [k for k in state if k.startswith(prefix)]:
        del state[k]
