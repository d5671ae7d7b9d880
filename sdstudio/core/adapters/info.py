"""What a LoRA file is made for, from its header alone (no torch, no tensor data): for lists."""

from __future__ import annotations

from pathlib import Path

PREVIEW_SUFFIXES = (".preview.png", ".png", ".jpg", ".jpeg", ".webp")  # A1111's preview files


def is_sdxl_lora(state) -> bool:
    """SDXL LoRAs touch a second text encoder (kohya `lora_te2_`, diffusers `text_encoder_2.`) or
    a second transformer block in a UNet attention (SD 1.x/2.x UNets have one per attention).
    `state` is a state dict or any iterable of its keys."""
    for key in state:
        if key.startswith(("lora_te2_", "text_encoder_2.", "te2.")):
            return True
        if "transformer_blocks_1_" in key or "transformer_blocks.1." in key:
            return True
    return False


def lora_family(path: Path) -> str:
    """"SDXL", "SD 1.x/2.x", or "" for a file whose header cannot be read (or not .safetensors)."""
    if path.suffix.lower() != ".safetensors":
        return ""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            base = (f.metadata() or {}).get("ss_base_model_version", "")  # kohya's own record
            keys = list(f.keys())
    except Exception:  # noqa: BLE001 - a corrupt file is told when it is applied
        return ""
    if base.startswith("sdxl") or is_sdxl_lora(keys):
        return "SDXL"
    return "SD 1.x/2.x"


def preview_image(path: Path) -> Path | None:
    """A picture lying beside the LoRA under its name (NAME.preview.png, NAME.png, ...)."""
    for suffix in PREVIEW_SUFFIXES:
        candidate = path.with_name(path.stem + suffix)
        if candidate.is_file():
            return candidate
    return None
