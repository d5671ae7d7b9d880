"""Latent helpers: shapes, scaling factor, round trip, channel images, RGB preview."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sdstudio.core.latents import channel_images, latents_to_pil, pil_to_latent, preview_rgb


@pytest.fixture(scope="module")
def vae(tiny_model_dir):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(str(tiny_model_dir / "vae")).eval()


def _image(w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_pil_to_latent_shape_and_scaling(vae):
    z = pil_to_latent(vae, _image(48, 32))
    assert z.shape == (1, 4, 4, 6)
    assert vae.config.scaling_factor == pytest.approx(0.18215)
    x = torch.from_numpy(np.asarray(_image(48, 32), dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
    with torch.no_grad():
        mean = vae.encode(x[None]).latent_dist.mean
    torch.testing.assert_close(z, mean * 0.18215, atol=1e-5, rtol=1e-4)


def test_latents_to_pil_divides_by_scaling_factor(vae):
    z = torch.randn(2, 4, 4, 6, generator=torch.Generator().manual_seed(0))
    images = latents_to_pil(vae, z)
    assert [im.size for im in images] == [(48, 32), (48, 32)]
    with torch.no_grad():
        ref = vae.decode(z / 0.18215).sample
    ref = ((ref / 2 + 0.5).clamp(0, 1) * 255).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
    assert np.abs(np.asarray(images[1], dtype=int) - ref[1].astype(int)).max() <= 1


def test_round_trip_keeps_shapes(vae):
    image = _image(64, 40)
    z = pil_to_latent(vae, image)
    back = latents_to_pil(vae, z)[0]
    assert back.size == image.size and back.mode == "RGB"
    assert pil_to_latent(vae, back).shape == z.shape == (1, 4, 5, 8)


def test_round_trip_through_an_identity_like_vae():
    """With a VAE whose decode inverts encode, the round trip gives the image back."""

    class Dist:
        def __init__(self, mean):
            self.mean = mean

    class Identity(torch.nn.Module):
        class config:  # noqa: N801 - mimics diffusers' config attribute
            scaling_factor = 0.18215
            block_out_channels = (1, 1, 1, 1)

        dtype = torch.float32
        device = torch.device("cpu")

        def encode(self, x):
            pooled = torch.nn.functional.avg_pool2d(x, 8)
            return type("Out", (), {"latent_dist": Dist(torch.cat([pooled, pooled[:, :1]], 1))})

        def decode(self, z):
            up = torch.nn.functional.interpolate(z[:, :3], scale_factor=8, mode="nearest")
            return type("Out", (), {"sample": up})

    flat = Image.new("RGB", (32, 16), (200, 40, 90))
    vae = Identity()
    z = pil_to_latent(vae, flat)
    assert z.shape == (1, 4, 2, 4)
    back = np.asarray(latents_to_pil(vae, z)[0], dtype=int)
    assert np.abs(back - np.array([200, 40, 90])).max() <= 1


def test_channel_images():
    z = torch.randn(2, 4, 5, 7, generator=torch.Generator().manual_seed(1))
    chans = channel_images(z)
    assert len(chans) == 4
    for c, (im, lo, hi) in enumerate(chans):
        assert im.mode == "L" and im.size == (7, 5)
        assert lo == pytest.approx(float(z[0, c].min())) and hi == pytest.approx(float(z[0, c].max()))
        a = np.asarray(im)
        assert a.min() == 0 and a.max() == 255


def test_channel_images_constant_channel():
    im, lo, hi = channel_images(torch.zeros(1, 4, 2, 2))[0]
    assert (lo, hi) == (0.0, 0.0) and np.asarray(im).max() == 0


def test_preview_rgb_first_image_latent_size():
    z = torch.zeros(3, 4, 6, 10)
    z[1] = 5  # only the first image counts
    im = preview_rgb(z)
    assert im.mode == "RGB" and im.size == (10, 6)
    assert np.all(np.asarray(im) == 127)  # zero latents -> mid grey


def test_preview_rgb_rescales_sigma_scaled_latents():
    """Early latents of Euler-type samplers (std ~ sigma ~ 15) must not preview as clipped noise."""
    z = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    clipped = np.isin(np.asarray(preview_rgb(15 * z)), (0, 255)).mean()
    assert clipped < 0.1
    assert np.array_equal(np.asarray(preview_rgb(15 * z)), np.asarray(preview_rgb(z / z.std())))


def test_fit_latent_rgb_recovers_a_linear_projection(tmp_path):
    from sdstudio.core.latents import fit_latent_rgb, load_latent_rgb, save_latent_rgb

    torch.manual_seed(0)
    true = torch.randn(5, 3) * 0.3
    lat = torch.randn(16, 4, 4, 4) * 0.5  # std < 1: the preview does not rescale it
    rgb = torch.einsum("nchw,cr->nrhw", lat, true[:4]) + true[4].view(1, 3, 1, 1)
    images = rgb.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)  # flat 8x8 patches
    fitted = fit_latent_rgb(lat, images)
    torch.testing.assert_close(fitted, true, rtol=1e-3, atol=1e-4)
    save_latent_rgb(tmp_path, fitted)
    torch.testing.assert_close(load_latent_rgb(tmp_path), fitted)
    preview = np.asarray(preview_rgb(lat[:1], fitted)).astype(float)
    expected = ((rgb[0].permute(1, 2, 0) + 1) * 127.5).clamp(0, 255).numpy()
    assert np.abs(preview - expected).max() <= 1.0


def test_load_latent_rgb_ignores_missing_or_bad_files(tmp_path):
    from sdstudio.core.latents import LATENT_RGB_FILE, load_latent_rgb

    assert load_latent_rgb(tmp_path) is None
    (tmp_path / LATENT_RGB_FILE).write_text("not json")
    assert load_latent_rgb(tmp_path) is None
    (tmp_path / LATENT_RGB_FILE).write_text('{"latent_rgb": [[1, 2, 3]]}')
    assert load_latent_rgb(tmp_path) is None
