"""Single-file checkpoints (original LDM layout): tell the family from the keys, pick the shipped config."""

from __future__ import annotations

import json
from pathlib import Path

from sdstudio.core import atomic
from sdstudio.core.errors import ModelLoadError
from sdstudio.core.paths import resources_dir

# Key whose shape tells an SD 1.x UNet and its input channels (4, or 9 for inpainting).
_LDM_UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
_LDM_SD1_TEXT = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"


def single_file_config(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """Pick the shipped diffusers config folder matching an original-layout SD 1.x checkpoint."""
    unet_in = shapes.get(_LDM_UNET_IN)
    if unet_in is None:
        raise ModelLoadError(
            f"{path.name} is not a Stable Diffusion checkpoint (no UNet weights in the original layout)."
        )
    if _LDM_SD1_TEXT not in shapes:
        raise ModelLoadError(
            f"{path.name} is not an SD 1.x checkpoint; only SD 1.x single files are supported, "
            "open other models as diffusers folders."
        )
    base = resources_dir() / "configs" / "sd15"
    return _inpainting_config(base) if unet_in[1] == 9 else base


def _inpainting_config(base: Path) -> Path:
    """The SD 1.x config with a 9-input-channel UNet, made once in the cache folder."""
    import shutil

    from sdstudio.core.paths import cache_dir

    target = cache_dir() / "configs" / "sd15-inpainting"
    unet_cfg = target / "unet" / "config.json"
    if not unet_cfg.is_file() or '"in_channels": 9' not in unet_cfg.read_text("utf-8"):
        shutil.copytree(base, target, dirs_exist_ok=True)  # a copy that died is redone here
        cfg = json.loads((base / "unet" / "config.json").read_text("utf-8"))
        atomic.write_text(unet_cfg, json.dumps({**cfg, "in_channels": 9}, indent=2))
    return target
