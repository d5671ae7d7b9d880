"""`sdstudio vae`: a thin wrapper of core.vae_lab that writes visible channel images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sdstudio.cli import main


@pytest.fixture()
def png(tmp_path):
    path = tmp_path / "in.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def test_vae_writes_upscaled_channels_and_stats(capsys, tiny_model_dir, tmp_path, png):
    out_dir = tmp_path / "out"
    code = main(["vae", str(png), "--model", str(tiny_model_dir), "--out", str(out_dir),
                 "--edit", "zero:1", "--edit", "scale:0:2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "latents × 0.18215: 1×4×5×6" in out and "scaling factor: 0.18215" in out
    assert "channel 1: min +0.000 max +0.000" in out
    assert "reconstruction SSIM: " in out and out.splitlines()[-1].endswith(" dB")
    for i in range(4):
        with Image.open(out_dir / f"channel_{i}.png") as im:
            assert im.size == (48, 40) and im.mode == "L"
            if i == 0:  # 8x8 blocks of one value each: a visible latent pixel
                a = np.asarray(im)
                assert (a[:8, :8] == a[0, 0]).all() and len(np.unique(a)) > 2
        with Image.open(out_dir / f"channel_{i}_diverging.png") as im:
            assert im.mode == "RGB"
    assert (out_dir / "difference.png").is_file() and (out_dir / "reconstruction.png").is_file()


def test_vae_bad_edit_is_one_sentence(capsys, tiny_model_dir, tmp_path, png):
    code = main(["vae", str(png), "--model", str(tiny_model_dir), "--out", str(tmp_path),
                 "--edit", "spin:1"])
    _out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert "error: Edit 'spin:1' is not one of" in err


def test_vae_on_the_demo_model_says_its_vae_is_special(capsys, tmp_path):
    from sdstudio.core.paths import demo_model_dir

    if not (demo_model_dir() / "vae" / "config.json").is_file():
        pytest.skip("the demo model is not installed")
    image = Image.new("RGB", (64, 64), (240, 240, 240))
    image.paste((220, 30, 30), (16, 16, 48, 48))
    image.save(tmp_path / "square.png")
    code = main(["vae", str(tmp_path / "square.png"), "--out", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "flat coloured shapes" in err and "scaling_factor 1.0" in err
    assert "scaling factor: 1" in out
    psnr = float(out.splitlines()[-1].split()[-2])
    assert psnr > 25  # the demo VAE reconstructs a flat square well
