"""Our own `sdstudio` chunk: the full request (an exact round trip) and a reproducibility record
(package versions, device, dtype, scheduler config, model hash)."""

from __future__ import annotations

import functools
import json
import math
import os
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import PngImagePlugin

from sdstudio import __version__
from sdstudio.core.png.a1111 import PARAMETERS_KEY, format_parameters, parse_parameters
from sdstudio.core.png.parameters import Parameters

if TYPE_CHECKING:
    from sdstudio.core.request import GenerationRequest

SDSTUDIO_KEY = "sdstudio"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a model file, cached on disk by path, size and mtime (checkpoints are
    gigabytes); waits for a background hash of the same file that is under way."""
    from sdstudio.core.models.hashing import sha256

    return sha256(path)


@functools.cache
def package_versions() -> dict[str, str]:
    """Versions of the packages that decide the pixels (looked up once: it is slow)."""
    out = {"sdstudio": __version__}
    for pkg in ("torch", "diffusers", "transformers", "numpy", "Pillow"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def reproducibility_record(request: GenerationRequest, extra: dict[str, Any] | None) -> dict[str, Any]:
    """Versions, device, dtype, scheduler config and model hash; `extra` (from the engine) wins."""
    record: dict[str, Any] = {"versions": dict(package_versions()), "device": request.device,
                              "dtype": request.dtype}
    model = Path(request.model)
    if "model_sha256" not in (extra or {}) and model.is_file():
        record["model_sha256"] = file_sha256(model)
    if "scheduler_config" not in (extra or {}):
        record["scheduler_config"] = _scheduler_config(request.model)
    record.update(extra or {})
    return record


def _scheduler_config(model: str) -> dict[str, Any] | None:
    """The model's own scheduler config, for diffusers folders (the demo model included)."""
    from sdstudio.core.paths import demo_model_dir

    folder = demo_model_dir() if model == "demo" else Path(model)
    try:
        return json.loads((folder / "scheduler" / "scheduler_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None


def build_pnginfo(
    request: GenerationRequest, seed: int, extra: dict[str, Any] | None = None
) -> PngImagePlugin.PngInfo:
    record = reproducibility_record(request, extra)
    text = format_parameters(request, seed, record.get("model_sha256"),
                             vae=record.get("vae"), vae_hash=record.get("vae_sha256"))
    ours = {"request": {**request.to_dict(), "seed": seed, "batch_size": 1}, "seed": seed,
            "created": time.time(), "record": record}
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, text)  # tEXt when Latin-1, else iTXt (UTF-8), as A1111 does
    info.add_text(SDSTUDIO_KEY, json.dumps(ours, ensure_ascii=False, default=str))
    return info


def parse_record(ours: str, text: str | None) -> Parameters | None:
    """Parameters from our chunk (with the A1111 text for the settings); None when the chunk is
    damaged or odd in any way, so the caller falls back to the A1111 text."""
    try:
        data = json.loads(ours)
        req = data["request"]
        seed = data.get("seed", req.get("seed", 0))
        record = data.get("record", {})
        prompt, negative = req.get("prompt", ""), req.get("negative_prompt", "")
        created = data.get("created")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if (not isinstance(seed, int) or isinstance(seed, bool) or not isinstance(record, dict)
            or not isinstance(prompt, str) or not isinstance(negative, str)):
        return None
    p = parse_parameters(text) if isinstance(text, str) else Parameters()
    p.prompt, p.negative_prompt = prompt, negative
    p.settings.setdefault("Seed", str(seed))
    p.request = {**req, "seed": seed, "batch_size": 1}
    p.record = record
    if _finite(created):
        p.record.setdefault("created", created)
    if not _finite(p.record.get("created")):
        p.record.pop("created", None)  # NaN, Infinity or not a number: the file time stands in
    p.source = "sdstudio"
    return p


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
