"""The models folder: checkpoints, LoRAs, embeddings, VAEs and upscalers in their subfolders.

Point it at sdstudio's own folder, an AUTOMATIC1111 root or a ComfyUI root (or either one's
`models/` folder) and it finds each kind where that tool keeps it. A checkpoint is a diffusers
folder (with model_index.json) or a .safetensors/.ckpt file; `checkpoint_info` tells its family
and native size from the file's header (no weights are read, except one small tensor for SD 2.x).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("checkpoints", "loras", "embeddings", "vaes", "upscalers")

# Subfolders (relative to the root) per layout, first match wins for telling the layout.
LAYOUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "a1111": {
        "checkpoints": ("models/Stable-diffusion",),
        "loras": ("models/Lora", "models/LyCORIS"),
        "embeddings": ("embeddings",),
        "vaes": ("models/VAE",),
        "upscalers": ("models/ESRGAN", "models/RealESRGAN", "models/SwinIR", "models/DAT"),
    },
    "comfyui": {
        "checkpoints": ("models/checkpoints",),
        "loras": ("models/loras",),
        "embeddings": ("models/embeddings",),
        "vaes": ("models/vae",),
        "upscalers": ("models/upscale_models",),
    },
    "sdstudio": {
        "checkpoints": ("checkpoints", "."),  # "." keeps the flat folder of earlier versions
        "loras": ("loras",),
        "embeddings": ("embeddings",),
        "vaes": ("vae",),
        "upscalers": ("upscalers",),
    },
}
_MARKERS = {"a1111": "models/Stable-diffusion", "comfyui": "models/checkpoints"}

_SUFFIXES = {
    "checkpoints": {".safetensors", ".ckpt"},
    "loras": {".safetensors", ".pt", ".ckpt"},
    "embeddings": {".safetensors", ".pt", ".bin"},
    "vaes": {".safetensors", ".pt", ".ckpt"},
    "upscalers": {".pth", ".pt", ".safetensors"},
}
_MAX_DEPTH = 4  # subfolders people sort their models into


@dataclass
class ModelsFolder:
    root: Path
    layout: str
    found: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def checkpoints(self) -> list[Path]:
        return self.found.get("checkpoints", [])

    @property
    def loras(self) -> list[Path]:
        return self.found.get("loras", [])

    @property
    def embeddings(self) -> list[Path]:
        return self.found.get("embeddings", [])

    @property
    def vaes(self) -> list[Path]:
        return self.found.get("vaes", [])

    @property
    def upscalers(self) -> list[Path]:
        return self.found.get("upscalers", [])


def layout_of(root: Path) -> tuple[str, Path]:
    """("a1111" | "comfyui" | "sdstudio", the root the layout's paths start from)."""
    for name, marker in _MARKERS.items():
        if (root / marker).is_dir():
            return name, root
        # pointed at the tool's models/ folder itself
        if root.name == "models" and (root.parent / marker).is_dir():
            return name, root.parent
    return "sdstudio", root


def scan(root: str | os.PathLike[str]) -> ModelsFolder:
    """Everything under `root`, by kind, sorted by name; a missing folder finds nothing."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return ModelsFolder(root, "none", {k: [] for k in KINDS})
    layout, base = layout_of(root)
    found: dict[str, list[Path]] = {}
    for kind in KINDS:
        seen: dict[Path, None] = {}
        for sub in LAYOUTS[layout][kind]:
            flat = sub == "."
            for p in _walk(base / sub, kind, depth=0 if flat else _MAX_DEPTH):
                seen.setdefault(p, None)
        found[kind] = sorted(seen, key=lambda p: str(p).lower())
    return ModelsFolder(root, layout, found)


def kind_folders(root: str | os.PathLike[str], kind: str) -> list[Path]:
    """The folders where `root`'s layout keeps `kind` ("loras", "embeddings", ...), existing
    ones first; the first one is where that kind belongs even when none exists yet."""
    root = Path(root).expanduser()
    layout, base = layout_of(root) if root.is_dir() else ("sdstudio", root)
    found = [base / sub for sub in LAYOUTS[layout][kind] if sub != "."]
    return sorted(found, key=lambda f: not f.is_dir())


def scan_models(folder: str | os.PathLike[str]) -> list[str]:
    """The checkpoints of a models folder, as the strings the model picker lists."""
    return [str(p) for p in scan(folder).checkpoints]


def _walk(folder: Path, kind: str, depth: int) -> list[Path]:
    if not folder.is_dir():
        return []
    out: list[Path] = []
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name.lower())
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if kind == "checkpoints" and (entry / "model_index.json").is_file():
                out.append(entry)
            elif kind == "vaes" and _is_vae_folder(entry):
                out.append(entry)
            elif depth > 0 and not (entry / "model_index.json").is_file():
                out += _walk(entry, kind, depth - 1)
        elif entry.suffix.lower() in _SUFFIXES[kind]:
            out.append(entry)
    return out


def _is_vae_folder(folder: Path) -> bool:
    try:
        cfg = json.loads((folder / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("_class_name") == "AutoencoderKL"


@dataclass(frozen=True)
class CheckpointInfo:
    family: str  # "SD 1.x", "SDXL", ... or "" when it could not be told
    native_size: int | None
    error: str | None = None  # one sentence when the file is not a model sdstudio runs


def checkpoint_info(model: str | os.PathLike[str]) -> CheckpointInfo:
    """Family and native size of a folder or single file, from configs or the file's header."""
    from sdstudio.core.errors import UserError

    path = Path(model)
    try:
        if path.is_dir():
            return _folder_info(path)
        return _file_info(path)
    except UserError as exc:
        return CheckpointInfo("", None, str(exc))


def _folder_info(folder: Path) -> CheckpointInfo:
    try:
        index = json.loads((folder / "model_index.json").read_text("utf-8"))
        unet = json.loads((folder / "unet" / "config.json").read_text("utf-8"))
        vae = json.loads((folder / "vae" / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return CheckpointInfo("", None, f"{folder.name} is not a complete diffusers model folder.")
    size = unet.get("sample_size", 64)
    size = size if isinstance(size, int) else size[0]
    native = size * 2 ** (len(vae.get("block_out_channels", [0] * 4)) - 1)
    family = _folder_family(index, unet)
    if unet.get("in_channels") == 9:
        family += " inpainting"
    return CheckpointInfo(family, native)


def _folder_family(index: dict, unet: dict) -> str:
    if "text_encoder_2" in index:
        return "SDXL refiner" if not (index.get("text_encoder") or [None])[0] else "SDXL"
    return "SD 2.x" if unet.get("cross_attention_dim") == 1024 else "SD 1.x"


def _file_info(path: Path) -> CheckpointInfo:
    from sdstudio.core.models import checkpoints, choices
    from sdstudio.core.models.single_file import (
        UNET_PREFIX,
        config_folder,
        config_for,
        detect_kind,
        guess_prediction,
    )

    if path.suffix.lower() not in checkpoints.SAFETENSORS:
        return CheckpointInfo("", None)  # a pickle is only opened when the user loads it
    shapes = checkpoints.check_safetensors(path)
    kind = detect_kind(path.name, shapes)
    if kind.family == "sd2":
        probe = _tensors(path, [UNET_PREFIX + "output_blocks.11.1.transformer_blocks.0.norm1.bias",
                                "v_pred"])
        prediction = choices.recall(path).get("prediction") or guess_prediction(kind, probe)
        kind = config_for(kind, prediction)
    info = _folder_info(config_folder(kind))
    return CheckpointInfo(kind.label, info.native_size)


def _tensors(path: Path, keys: list[str]) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        have = set(f.keys())
        return {k: f.get_tensor(k) for k in keys if k in have}


TINY_DECODER_STEMS = {"sdxl": "taesdxl"}  # other families (SD 1.x, SD 2.x) share SD 1.x's VAE
_TINY_SUFFIXES = (".safetensors", ".pth", ".pt")


def tiny_decoder(root: str | os.PathLike[str], family: str) -> Path | None:
    """The TAESD preview decoder for `family` ("sd1", "sd2", "sdxl") in a models folder's VAE
    folders: a diffusers `taesd`/`taesdxl` folder (AutoencoderTiny) or a `taesd_decoder.*` /
    `taesdxl_decoder.*` file of the original TAESD release; None where there is none."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return None
    layout, base = layout_of(root)
    stem = TINY_DECODER_STEMS.get(family, "taesd")
    for sub in LAYOUTS[layout]["vaes"]:
        folder = base / sub
        if (folder / stem / "config.json").is_file():
            return folder / stem
        for suffix in _TINY_SUFFIXES:
            if (folder / f"{stem}_decoder{suffix}").is_file():
                return folder / f"{stem}_decoder{suffix}"
    return None
