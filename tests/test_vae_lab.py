"""The VAE lab's core: encode (mean / sample), scaling, edits, forward noise, metrics, pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from sdstudio.core import vae_lab
from sdstudio.core.errors import UserError
from sdstudio.core.vae_lab import LatentEdit


@pytest.fixture(scope="module")
def vae(tiny_model_dir):
    return vae_lab.load_vae(str(tiny_model_dir))


def _image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_encode_mean_is_scaled_distribution_mean(vae):
    image = _image(48, 32)
    z = vae_lab.encode(vae, image)
    x = torch.from_numpy(np.asarray(image, np.float32) / 255 * 2 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        dist = vae.encode(x).latent_dist
    assert z.shape == (1, 4, 4, 6)
    torch.testing.assert_close(z, dist.mean * 0.18215, rtol=1e-4, atol=1e-5)
    sample = vae_lab.encode(vae, image, sample=True, seed=3)
    assert not torch.allclose(sample, z)  # a sample differs from the mean ...
    torch.testing.assert_close(sample, vae_lab.encode(vae, image, sample=True, seed=3))  # seeded
    g = torch.Generator("cpu").manual_seed(3)
    torch.testing.assert_close(sample, dist.sample(g) * 0.18215, rtol=1e-4, atol=1e-5)


def test_decode_divides_by_the_scaling_factor(vae):
    z = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = vae.decode(z / 0.18215).sample
    expected = ((ref[0] / 2 + 0.5).clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    got = np.asarray(vae_lab.decode(vae, z), np.float64)
    assert np.abs(got - expected).max() <= 1


def test_round_trip_crops_measures_and_describes(vae):
    result = vae_lab.round_trip(vae, _image(50, 35))
    assert result.original.size == result.reconstruction.size == (48, 32)
    assert result.notes == ["Image cropped from 50x35 to 48x32 (multiples of 8)."]
    assert result.psnr == pytest.approx(vae_lab.psnr(result.original, result.reconstruction))
    assert -1 <= result.ssim < 1  # a random VAE does not reconstruct noise
    assert dict(result.shapes)["latents × 0.18215"] == "1×4×4×6"
    assert result.shapes[0] == ("image (RGB, 0…255)", "32×48×3")
    torch.testing.assert_close(result.decoded_latents, result.latents)
    again = vae_lab.round_trip(vae, result.original, edits=[LatentEdit("zero", 2)],
                               latents=result.latents)
    assert again.stats[2].low == again.stats[2].high == 0
    assert again.reconstruction.tobytes() != result.reconstruction.tobytes()


def test_edits():
    z = torch.arange(2 * 4 * 3 * 3, dtype=torch.float32).reshape(2, 4, 3, 3)
    out = vae_lab.apply_edits(z, [LatentEdit("scale", 1, 2.0)])
    torch.testing.assert_close(out[:, 1], z[:, 1] * 2)
    torch.testing.assert_close(out[:, [0, 2, 3]], z[:, [0, 2, 3]])
    assert z[0, 1, 0, 0] == 9  # the input is not modified
    swapped = vae_lab.apply_edits(z, [LatentEdit("swap", 0, other=3)])
    torch.testing.assert_close(swapped[:, 0], z[:, 3])
    torch.testing.assert_close(swapped[:, 3], z[:, 0])
    noisy = vae_lab.apply_edits(z, [LatentEdit("noise", 2, 0.5, seed=1)])
    diff = noisy[:, 2] - z[:, 2]
    assert 0.1 < float(diff.std()) < 1.0 and torch.equal(noisy[:, 1], z[:, 1])
    blurred = vae_lab.apply_edits(z, [LatentEdit("blur", 0, 1.0)])
    assert float(blurred[:, 0].std()) < float(z[:, 0].std())
    assert blurred[:, 0].mean() == pytest.approx(float(z[:, 0].mean()), rel=0.05)
    with pytest.raises(UserError, match="Channel 4 does not exist"):
        vae_lab.apply_edits(z, [LatentEdit("zero", 4)])
    with pytest.raises(UserError, match="Unknown latent edit"):
        vae_lab.apply_edits(z, [LatentEdit("invert", 0)])


def test_forward_noise_follows_the_formula():
    z = torch.ones(1, 4, 8, 8)
    noise = torch.randn(z.shape, generator=torch.Generator("cpu").manual_seed(5))
    out = vae_lab.forward_noise(z, 0.25, seed=5)
    torch.testing.assert_close(out, 0.5 * z + math.sqrt(0.75) * noise)
    torch.testing.assert_close(vae_lab.forward_noise(z, 1.0), z)


def test_psnr_and_ssim():
    a = _image(40, 40)
    assert vae_lab.psnr(a, a) == float("inf")
    assert vae_lab.ssim(a, a) == pytest.approx(1.0)
    b = np.asarray(a, np.int16).copy()
    b[0, 0, 0] += 10 if b[0, 0, 0] < 200 else -10
    assert vae_lab.psnr(a, b.astype(np.uint8)) == pytest.approx(
        10 * math.log10(255**2 / (100 / (40 * 40 * 3))))
    rng = np.random.default_rng(1)
    flat = np.full((40, 40, 3), 128, np.uint8)
    small = np.clip(flat + rng.normal(0, 5, flat.shape), 0, 255).astype(np.uint8)
    large = np.clip(flat + rng.normal(0, 40, flat.shape), 0, 255).astype(np.uint8)
    assert 1 > vae_lab.ssim(flat, small) > vae_lab.ssim(flat, large) > 0
    # Brightness shift only: the luminance term alone, l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    c1 = (0.01 * 255) ** 2
    shifted = np.full_like(flat, 148)
    assert vae_lab.ssim(flat, shifted) == pytest.approx(
        (2 * 128 * 148 + c1) / (128**2 + 148**2 + c1))


def test_channel_pictures():
    ch = torch.tensor([[-2.0, 0.0], [1.0, 2.0]])
    grey = vae_lab.channel_picture(ch, "grey", (64, 64))
    assert grey.size == (64, 64) and grey.mode == "L"
    assert grey.getpixel((0, 0)) == 0 and grey.getpixel((63, 63)) == 255
    assert grey.getpixel((31, 31)) == 0 and grey.getpixel((32, 0)) == 128  # nearest: 32px squares
    div = vae_lab.channel_picture(ch, "diverging")
    assert div.getpixel((0, 0)) == (33, 102, 172)  # -max: blue
    assert div.getpixel((1, 0)) == (247, 247, 247)  # zero: white
    assert div.getpixel((1, 1)) == (178, 24, 43)  # +max: red
    stats = vae_lab.channel_stats(ch[None, None])
    assert (stats[0].low, stats[0].high, stats[0].mean) == (-2.0, 2.0, 0.25)
    assert sum(stats[0].counts) == 4 and stats[0].counts[0] == 1 and stats[0].counts[-1] == 1


def test_notes_for_special_vaes(vae):
    assert vae_lab.vae_notes(vae) == []
    vae.register_to_config(scaling_factor=1.0)
    try:
        notes = vae_lab.vae_notes(vae, "demo")
    finally:
        vae.register_to_config(scaling_factor=0.18215)
    assert "flat coloured shapes" in notes[0] and "scaling_factor 1.0" in notes[1]


def test_unreadable_image_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot be opened"):
        vae_lab.open_image(bad)
    with pytest.raises(UserError, match="smaller than 8x8"):
        vae_lab.crop_to_multiple(Image.new("RGB", (4, 20)))
