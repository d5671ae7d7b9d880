"""The course's VAE exercise as functions: encode a picture, look at the latent channels, edit
them, decode again and measure the loss (PSNR, SSIM). Shared by `sdstudio vae` and the window's
VAE lab; no Qt here.

Latents are always the *scaled* ones, as the UNet sees them: the encoder's output times
`vae.config.scaling_factor` (0.18215 for SD 1.x), divided by it again before decoding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sdstudio.core.errors import UserError
from sdstudio.core.latents import _processor

SD1_SCALING_FACTOR = 0.18215
HISTOGRAM_BINS = 32
EDIT_OPS = ("scale", "zero", "swap", "noise", "blur")


# -- loading -------------------------------------------------------------------------------------


def load_vae(model: str, device: str = "cpu"):
    """The VAE of `model` ("demo", a diffusers folder, a checkpoint file or a cached hub id), in
    fp32. A folder loads its vae/ alone; anything else goes through the full model loader."""
    from sdstudio.core.paths import demo_model_dir

    folder = demo_model_dir() if model == "demo" else Path(model).expanduser()
    if (folder / "vae" / "config.json").is_file():
        from diffusers import AutoencoderKL

        try:
            vae = AutoencoderKL.from_pretrained(str(folder / "vae"))
        except Exception as exc:  # noqa: BLE001 - a broken folder is the user's file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"The VAE in {folder} cannot be loaded ({first}).") from None
        return vae.to(device).eval().requires_grad_(False)
    from sdstudio.core.models import load_model

    return load_model(model, device, "fp32").vae


def vae_notes(vae, model: str = "") -> list[str]:
    """Sentences for a VAE that is not SD 1.x's: another scaling factor, a folded normalisation,
    the demo model's narrow training."""
    notes = []
    factor = float(vae.config.scaling_factor)
    if model == "demo":
        notes.append(
            "The demo model's VAE was trained on flat coloured shapes only: photographs and fine "
            "detail come back blurred and with shifted colours."
        )
    if factor == 1.0:
        notes.append(
            "This VAE folds its latent normalisation into its own layers (scaling_factor 1.0): "
            "its latents are already zero-mean with unit variance per channel, where SD 1.x "
            f"multiplies by {SD1_SCALING_FACTOR}."
        )
    elif not math.isclose(factor, SD1_SCALING_FACTOR, rel_tol=1e-4):
        notes.append(f"This VAE scales its latents by {factor:g}, not SD 1.x's {SD1_SCALING_FACTOR}.")
    if int(vae.config.latent_channels) != 4:
        notes.append(f"This VAE has {vae.config.latent_channels} latent channels, not 4.")
    return notes


# -- images --------------------------------------------------------------------------------------


def vae_scale_factor(vae) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


def open_image(path: str | Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise UserError(f"Image {path} cannot be opened ({exc}).") from None


def crop_to_multiple(image: Image.Image, f: int = 8) -> tuple[Image.Image, str | None]:
    """Crop the right and bottom edges to multiples of `f`; says so when it did."""
    w, h = image.width // f * f, image.height // f * f
    if w == 0 or h == 0:
        raise UserError(f"The image is smaller than {f}x{f} pixels.")
    if (w, h) == image.size:
        return image, None
    note = f"Image cropped from {image.width}x{image.height} to {w}x{h} (multiples of {f})."
    return image.crop((0, 0, w, h)), note


# -- encode / decode -----------------------------------------------------------------------------


@torch.no_grad()
def encode(vae, image: Image.Image, sample: bool = False, seed: int = 0) -> torch.Tensor:
    """Scaled latents (1, C, H/8, W/8): the mean of the encoder's distribution, or one sample of
    it (mean + std * noise, from a CPU generator seeded with `seed`)."""
    x = _processor(vae).preprocess(image.convert("RGB")).to(device=vae.device, dtype=vae.dtype)
    dist = vae.encode(x).latent_dist
    z = dist.sample(torch.Generator("cpu").manual_seed(seed)) if sample else dist.mean
    return z.float().cpu() * float(vae.config.scaling_factor)


@torch.no_grad()
def decode(vae, latents: torch.Tensor) -> Image.Image:
    z = latents.to(device=vae.device, dtype=vae.dtype) / float(vae.config.scaling_factor)
    return _processor(vae).postprocess(vae.decode(z).sample.float(), output_type="pil")[0]


def stage_shapes(image: Image.Image, latents: torch.Tensor, factor: float) -> list[tuple[str, str]]:
    """The course's shapes at each stage, as (stage, shape) lines."""
    w, h = image.size
    c, lh, lw = latents.shape[1:]
    dims = "×".join
    return [
        ("image (RGB, 0…255)", dims(map(str, (h, w, 3)))),
        ("tensor in [−1, 1]", dims(map(str, (1, 3, h, w)))),
        ("encoder output (mean / sample)", dims(map(str, (1, c, lh, lw)))),
        (f"latents × {factor:g}", dims(map(str, (1, c, lh, lw)))),
        (f"decoder input (÷ {factor:g})", dims(map(str, (1, c, lh, lw)))),
        ("reconstruction (RGB)", dims(map(str, (h, w, 3)))),
    ]


# -- latent edits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentEdit:
    """One edit of one channel: scale by `value`, zero, swap with channel `other`, add Gaussian
    noise of std `value` (seeded), or blur with a Gaussian of std `value` latent pixels."""

    op: str
    channel: int
    value: float = 1.0
    other: int = 0
    seed: int = 0


def apply_edits(latents: torch.Tensor, edits: Sequence[LatentEdit]) -> torch.Tensor:
    """A copy of `latents` with the edits applied in order."""
    from scipy.ndimage import gaussian_filter

    z = latents.detach().float().cpu().clone()
    n = z.shape[1]
    for e in edits:
        if e.op not in EDIT_OPS:
            raise UserError(f"Unknown latent edit {e.op!r}; choose one of {', '.join(EDIT_OPS)}.")
        for ch in (e.channel, e.other) if e.op == "swap" else (e.channel,):
            if not 0 <= ch < n:
                raise UserError(f"Channel {ch} does not exist; the latents have channels 0-{n - 1}.")
        c = e.channel
        if e.op == "scale":
            z[:, c] *= e.value
        elif e.op == "zero":
            z[:, c] = 0
        elif e.op == "swap":
            z[:, [c, e.other]] = z[:, [e.other, c]]
        elif e.op == "noise":
            g = torch.Generator("cpu").manual_seed(e.seed)
            z[:, c] += e.value * torch.randn(z[:, c].shape, generator=g)
        elif e.value > 0:  # blur
            for b in range(z.shape[0]):
                z[b, c] = torch.from_numpy(gaussian_filter(z[b, c].numpy(), e.value, mode="nearest"))
    return z


def forward_noise(latents: torch.Tensor, alpha_bar: float, seed: int = 0) -> torch.Tensor:
    """Forward diffusion: x_t = sqrt(alpha_bar_t) * x_0 + sqrt(1 - alpha_bar_t) * noise."""
    g = torch.Generator("cpu").manual_seed(seed)
    noise = torch.randn(latents.shape, generator=g)
    return math.sqrt(alpha_bar) * latents.float().cpu() + math.sqrt(1 - alpha_bar) * noise


# -- looking at channels -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelStats:
    low: float
    high: float
    mean: float
    std: float
    counts: tuple[int, ...]  # histogram over [low, high], HISTOGRAM_BINS bins


def channel_stats(latents: torch.Tensor, bins: int = HISTOGRAM_BINS) -> list[ChannelStats]:
    """Per-channel range, mean, std and histogram of the first latent of the batch."""
    out = []
    for ch in latents[0].detach().float().cpu().numpy():
        lo, hi = float(ch.min()), float(ch.max())
        counts, _ = np.histogram(ch, bins=bins, range=(lo, hi if hi > lo else lo + 1e-6))
        out.append(ChannelStats(lo, hi, float(ch.mean()), float(ch.std()),
                                tuple(int(c) for c in counts)))
    return out


def _diverging(t: np.ndarray) -> np.ndarray:
    """t in [-1, 1] -> RGB uint8: blue (-1), white (0), red (+1)."""
    t = np.clip(t, -1, 1)[..., None]
    white = np.array([247.0, 247.0, 247.0])
    blue, red = np.array([33.0, 102.0, 172.0]), np.array([178.0, 24.0, 43.0])
    rgb = np.where(t < 0, white + (blue - white) * -t, white + (red - white) * t)
    return rgb.round().astype(np.uint8)


def channel_picture(
    channel: np.ndarray | torch.Tensor, colormap: str = "grey", size: tuple[int, int] | None = None
) -> Image.Image:
    """One latent channel (h, w) as a picture: "grey" stretches its min..max to black..white,
    "diverging" maps -m..0..+m (m = its largest magnitude) to blue..white..red. `size` (w, h)
    upscales it with nearest neighbour, so each latent pixel stays a visible square."""
    a = channel.detach().float().cpu().numpy() if isinstance(channel, torch.Tensor) else channel
    a = np.asarray(a, dtype=np.float64)
    if colormap == "grey":
        lo, hi = a.min(), a.max()
        pixels = np.zeros(a.shape, np.uint8) if hi <= lo else ((a - lo) / (hi - lo) * 255).round()
        image = Image.fromarray(pixels.astype(np.uint8), "L")
    elif colormap == "diverging":
        m = float(np.abs(a).max())
        image = Image.fromarray(_diverging(a / m if m > 0 else a), "RGB")
    else:
        raise UserError(f"Unknown colour map {colormap!r}; use grey or diverging.")
    return image.resize(size, Image.Resampling.NEAREST) if size else image


def difference_image(a: Image.Image, b: Image.Image, gain: float = 4.0) -> Image.Image:
    """|a - b| per pixel, amplified by `gain` so small errors show."""
    d = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).astype(np.float32) * gain
    return Image.fromarray(np.clip(d, 0, 255).astype(np.uint8))


# -- quality -------------------------------------------------------------------------------------


def psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    """Peak signal-to-noise ratio of two 8-bit images, in dB (inf when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    """Structural similarity of two 8-bit images (Wang et al. 2004: Gaussian window sigma 1.5,
    K1 0.01, K2 0.03), averaged over pixels and colour channels."""
    from scipy.ndimage import gaussian_filter

    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape:
        raise UserError(f"Images of different sizes: {x.shape} and {y.shape}.")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for i in range(x.shape[-1]):
        xi, yi = x[..., i], y[..., i]

        def blur(v: np.ndarray) -> np.ndarray:
            return gaussian_filter(v, 1.5, truncate=3.5, mode="reflect")

        mx, my = blur(xi), blur(yi)
        vx, vy, cov = blur(xi * xi) - mx * mx, blur(yi * yi) - my * my, blur(xi * yi) - mx * my
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        scores.append(float(s.mean()))
    return float(np.mean(scores))


# -- the whole round trip ------------------------------------------------------------------------


@dataclass
class RoundTrip:
    """What the lab shows: the (cropped) original, its latents, the edited latents that were
    decoded, the reconstruction, the error and the shapes at each stage."""

    original: Image.Image
    latents: torch.Tensor  # scaled, as encoded
    decoded_latents: torch.Tensor  # after edits / forward noise
    reconstruction: Image.Image
    difference: Image.Image
    psnr: float
    ssim: float
    scaling_factor: float
    shapes: list[tuple[str, str]]
    stats: list[ChannelStats]  # of decoded_latents
    notes: list[str] = field(default_factory=list)


def round_trip(
    vae,
    image: Image.Image,
    sample: bool = False,
    seed: int = 0,
    edits: Sequence[LatentEdit] = (),
    alpha_bar: float | None = None,
    latents: torch.Tensor | None = None,
) -> RoundTrip:
    """Encode (unless `latents` of this image are given, e.g. to re-decode after an edit), apply
    the edits and optionally forward noise to alpha_bar, decode, and measure."""
    image, note = crop_to_multiple(image.convert("RGB"), vae_scale_factor(vae))
    if latents is None:
        latents = encode(vae, image, sample, seed)
    z = apply_edits(latents, edits)
    if alpha_bar is not None and alpha_bar < 1.0:
        z = forward_noise(z, alpha_bar, seed)
    recon = decode(vae, z)
    factor = float(vae.config.scaling_factor)
    return RoundTrip(
        original=image, latents=latents, decoded_latents=z, reconstruction=recon,
        difference=difference_image(image, recon), psnr=psnr(image, recon),
        ssim=ssim(image, recon), scaling_factor=factor,
        shapes=stage_shapes(image, latents, factor), stats=channel_stats(z),
        notes=[note] if note else [],
    )
