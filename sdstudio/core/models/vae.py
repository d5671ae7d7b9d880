"""A separate VAE for a model (a fine-tuned SD 1.5 VAE, SDXL's fp16-fix VAE), remembered per model.

A VAE comes as a diffusers folder (config.json + weights, or a model folder with vae/), or as one
file in the original layout (`encoder.down.0.block…`, optionally under `first_stage_model.` or
`vae.`) or the diffusers layout. A file carries no config: it gets the model's own VAE config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdstudio.core.errors import ModelLoadError
from sdstudio.core.models import checkpoints, choices

NO_VAE = ("", "none", "default", "model")  # the model's own VAE (and forget the choice)


def with_vae(loaded: Any, model: str, vae: str | None) -> Any:
    """Give `loaded` the VAE chosen for `model`: `vae` (then remembered), else the remembered one.

    `vae` of "" / "none" / "default" goes back to the model's own VAE and forgets the choice.
    """
    if vae is not None and vae.strip().lower() in NO_VAE:
        choices.remember(model, vae=None)
        return loaded
    if vae is None:
        vae = choices.recall(model).get("vae")
        if not vae:
            return loaded
        if not Path(vae).exists():
            raise ModelLoadError(
                f"The VAE chosen for this model, {vae}, no longer exists; choose another VAE "
                "or none (--vae none)."
            )
    path = Path(vae).expanduser()
    new = load_vae(path, loaded.vae.config)
    if new.config.latent_channels != loaded.vae.config.latent_channels:
        raise ModelLoadError(
            f"{path.name} does not fit this model: its latents have "
            f"{new.config.latent_channels} channels, the model's {loaded.vae.config.latent_channels}."
        )
    from sdstudio.core.models.loading import vae_dtype

    new.to(device=loaded.device, dtype=vae_dtype(new, loaded.family, loaded.dtype))
    new.eval().requires_grad_(False)
    loaded.vae = new
    loaded.vae_source = str(path.resolve())
    choices.remember(model, vae=loaded.vae_source)
    if path.is_file():  # A1111 writes the VAE's hash too; hashed once, cached like the model's
        from sdstudio.core.models import hashing

        loaded.vae_sha256 = hashing.cached_sha256(path)
        if loaded.vae_sha256 is None:
            hashing.hash_in_background(path, lambda _p, h: setattr(loaded, "vae_sha256", h))
    return loaded


def load_vae(path: Path, model_config: Any) -> Any:
    """An AutoencoderKL from a folder or a file; `model_config` shapes a file's VAE."""
    from diffusers import AutoencoderKL

    if not path.exists():
        raise ModelLoadError(f"VAE {path} does not exist.")
    try:
        if path.is_dir():
            folder = path / "vae" if (path / "vae" / "config.json").is_file() else path
            if not (folder / "config.json").is_file():
                raise ModelLoadError(f"{path} is not a VAE folder (it has no config.json).")
            return AutoencoderKL.from_pretrained(str(folder), local_files_only=True)
        return _vae_from_file(path, model_config)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"{path.name} cannot be loaded as a VAE ({checkpoints._first_line(exc)})."
        ) from None


def _vae_from_file(path: Path, model_config: Any) -> Any:
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    from sdstudio.core.models.single_file import is_vae, load_state_dict

    state = load_state_dict(path)
    if not is_vae(state) and "decoder.conv_in.weight" not in state:
        raise ModelLoadError(f"{path.name} is not a VAE (it has no decoder weights).")
    vae = AutoencoderKL.from_config(dict(model_config))
    if any(k.startswith("decoder.up_blocks.") for k in state):  # already diffusers layout
        weights = {k.removeprefix("vae."): v for k, v in state.items()}
    else:
        weights = convert_ldm_vae_checkpoint(state, vae.config)
    weights = {k: v for k, v in weights.items() if not k.startswith("model_ema.")}
    missing, unexpected = vae.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ModelLoadError(
            f"{path.name} does not fit this model's VAE ({len(missing)} weights missing, "
            f"{len(unexpected)} unexpected)."
        )
    return vae
