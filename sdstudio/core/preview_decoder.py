"""Live previews of the x0 estimate through a model's tiny learned decoder (TAESD), where it has one.

A tiny decoder (diffusers' AutoencoderTiny) turns latents into a full-size picture for a small
fraction of the full VAE's cost. Where a model has none the preview stays the latent -> RGB
projection of core/latents.py (chosen by the caller). Looked up, in this order:
- the model's own `vae_tiny/` folder (diffusers layout; the demo model ships one);
- a models folder's VAE folders (`tiny_decoder` in core/models/discovery.py): for a checkpoint
  inside an A1111 / ComfyUI / sdstudio tree that tree's folder, then the default models folder.

Even a tiny decoder costs about as much as a UNet step of a small model on a CPU, so
`PreviewDecoder.preview` decodes only when the time spent decoding stays under `budget` of the
time that passed (and always on the last step); in between it returns the last picture."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any, cast

import torch
from PIL import Image

from sdstudio.core.models.discovery import tiny_decoder

log = logging.getLogger(__name__)

MODEL_SUBFOLDER = "vae_tiny"  # beside a diffusers model's vae/
BUDGET = 0.05  # share of the generation's wall time the preview decodes may take
_SEARCH_UP = 4  # parent folders of a checkpoint tried as a models folder


class PreviewDecoder:
    """A loaded AutoencoderTiny decoding the first latent of a batch to a PIL image."""

    def __init__(self, tiny: Any, budget: float = BUDGET) -> None:
        self.tiny = tiny.eval()
        self.budget = budget
        self._last: Image.Image | None = None
        self._spent = 0.0  # seconds spent decoding in this run
        self._start: float | None = None  # when this run's first preview was asked for
        self.decodes = 0

    @property
    def scaling_factor(self) -> float:
        return float(self.tiny.config.scaling_factor)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> Image.Image:
        """The first latent of the batch (UNet latent space) as an RGB image, 8x its size."""
        p = next(self.tiny.parameters())
        z = latents[:1, :4].to(device=p.device, dtype=p.dtype) / self.scaling_factor
        x = self.tiny.decode(z).sample[0].float().clamp(-1, 1)
        pixels = ((x + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(pixels)

    def reset(self) -> None:
        """A new generation: forget the last picture and the time spent."""
        self._last, self._spent, self._start = None, 0.0, None

    def preview(self, latents: torch.Tensor, last: bool = False) -> Image.Image | None:
        """Decode when within budget (or on the `last` step); None when over it, so the caller
        shows the cheap projection and the preview keeps moving instead of standing still."""
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        if self._last is not None and not last and self._spent > self.budget * (now - self._start):
            return None
        self._last = self.decode(latents)
        self._spent += time.perf_counter() - now
        self.decodes += 1
        return self._last


def load_tiny(path: str | Path, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> Any:
    """An AutoencoderTiny from a diffusers folder or an original TAESD decoder file
    (`taesd_decoder.safetensors` / `.pth`, whose keys are the decoder's nn.Sequential indices)."""
    from diffusers import AutoencoderTiny

    path = Path(path)
    if path.is_dir():
        return AutoencoderTiny.from_pretrained(path, torch_dtype=dtype).to(device).eval()
    tiny = AutoencoderTiny()  # the TAESD release's architecture is diffusers' default
    tiny.decoder.load_state_dict(_taesd_decoder_state(path))
    return tiny.to(device=device, dtype=dtype).eval()


def _taesd_decoder_state(path: Path) -> dict[str, torch.Tensor]:
    """TAESD's decoder keys ("1.weight", "3.conv.0.weight", ...: index 0 is its Clamp, which
    diffusers' DecoderTiny does in forward) renamed to DecoderTiny's ("layers.0.weight", ...)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    out = {}
    for key, value in state.items():
        key = key.removeprefix("decoder.")
        m = re.match(r"(\d+)\.(.+)", key)
        if m is None:
            continue
        out[f"layers.{int(m.group(1)) - 1}.{m.group(2)}"] = value
    return out


def find_tiny_decoder(source: str | Path, family: str,
                      models_root: str | Path | None = None) -> Path | None:
    """Where the model loaded from `source` has a tiny decoder (see the module docstring)."""
    src = Path(source)
    if (src / MODEL_SUBFOLDER / "config.json").is_file():
        return src / MODEL_SUBFOLDER
    roots = list(src.parents)[:_SEARCH_UP] if src.exists() else []
    if models_root is not None:
        roots.append(Path(models_root))
    for root in roots:
        if (found := tiny_decoder(root, family)) is not None:
            return found
    return None


def preview_decoder_for(model: Any) -> PreviewDecoder | None:
    """The loaded model's preview decoder (loaded once and kept on the model), or None."""
    cached = getattr(model, "_preview_decoder", False)
    if cached is not False:
        return cast("PreviewDecoder | None", cached)
    from sdstudio.core.paths import default_models_dir

    decoder = None
    family = getattr(getattr(model, "family", None), "name", "sd1")
    path = find_tiny_decoder(model.source, family, default_models_dir())
    if path is not None:
        try:
            decoder = PreviewDecoder(load_tiny(path, model.device, model.dtype))
        except Exception as exc:  # noqa: BLE001 - a bad preview file must not stop a generation
            log.warning("tiny preview decoder %s not loaded: %s", path, exc)
    model._preview_decoder = decoder
    return decoder
