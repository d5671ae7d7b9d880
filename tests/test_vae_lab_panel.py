"""The VAE lab panel, offscreen: what it draws after encoding, editing and noising a picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QColor, QImage

from sdstudio.core import vae_lab
from sdstudio.ui.panels.vae_lab import VaeLabPanel


@pytest.fixture()
def picture(tmp_path):
    image = Image.new("RGB", (40, 32), (240, 240, 240))
    image.paste((200, 20, 20), (8, 8, 24, 24))
    path = tmp_path / "square.png"
    image.save(path)
    return path


@pytest.fixture()
def panel(qtbot, tiny_model_dir):
    p = VaeLabPanel()
    qtbot.addWidget(p)
    p.resize(900, 900)
    p.show()
    p.set_model(str(tiny_model_dir))
    return p


def _rgb(image: QImage) -> QImage:
    return image.convertToFormat(QImage.Format.Format_RGB888)


def _open(qtbot, panel, path):
    with qtbot.waitSignal(panel.viewShown, timeout=60_000) as blocker:
        panel.open_image(path)
    return blocker.args[0]


def test_open_shows_original_channels_and_metrics(qtbot, panel, picture, tiny_model_dir):
    view = _open(qtbot, panel, picture)
    original = panel.original.image_pixmap().toImage()
    assert (original.width(), original.height()) == (40, 32)
    assert original.pixelColor(12, 12) == QColor(200, 20, 20)
    # The same numbers as the core, on screen.
    vae = vae_lab.load_vae(str(tiny_model_dir))
    expected = vae_lab.round_trip(vae, vae_lab.open_image(picture))
    assert view.psnr == pytest.approx(expected.psnr)
    assert panel.metrics.text() == f"PSNR {expected.psnr:.2f} dB\nSSIM {expected.ssim:.4f}"
    assert "latents × 0.18215" in panel.shapes.text() and "1×4×4×5" in panel.shapes.text()
    # Channel 0, greyscale, drawn large: the darkest latent pixel is black, the brightest white.
    grey = panel.cells[0].grey.image_pixmap().toImage()
    assert grey.width() == 192
    z = expected.latents[0, 0].numpy()
    lo = np.unravel_index(z.argmin(), z.shape)
    block = 192 // 5
    assert grey.pixelColor(lo[1] * block + block // 2, lo[0] * block + block // 2).value() == 0
    # Histogram: bars drawn in blue on the widget itself.
    shot = panel.cells[0].histogram.grab().toImage()
    blues = sum(shot.pixelColor(x, y) == QColor(70, 130, 200)
                for x in range(0, shot.width(), 2) for y in range(0, shot.height(), 2))
    assert blues > 20
    assert sum(panel.cells[0].histogram.counts()) == 20  # 4x5 latent pixels


def test_edit_decodes_again_at_once(qtbot, panel, picture):
    before = _open(qtbot, panel, picture)
    panel.edit_channel.setCurrentIndex(2)
    panel.edit_op.setCurrentIndex(panel.edit_op.findData("zero"))
    with qtbot.waitSignal(panel.viewShown, timeout=60_000) as blocker:
        panel.apply_button.click()
    after = blocker.args[0]
    assert after.stats[2].low == after.stats[2].high == 0.0
    assert "zero 2" in panel.edits_label.text()
    recon = _rgb(panel.reconstruction.image_pixmap().toImage())
    assert recon != _rgb(before.reconstruction)  # the picture on screen changed
    assert recon == _rgb(after.reconstruction)
    # Reset: back to the first reconstruction, pixel for pixel.
    with qtbot.waitSignal(panel.viewShown, timeout=60_000) as blocker:
        panel.reset_button.click()
    assert _rgb(blocker.args[0].reconstruction) == _rgb(before.reconstruction)


def test_forward_noise_slider(qtbot, panel, picture):
    clean = _open(qtbot, panel, picture)
    with qtbot.waitSignal(panel.viewShown, timeout=60_000) as blocker:
        panel.t_slider.setValue(1000)
    noisy = blocker.args[0]
    assert noisy.alpha_bar == pytest.approx(0.0047, abs=2e-4)  # SD's alpha-bar at t = T
    assert "t = 1000 of 1000" in panel.t_label.text()
    assert noisy.stats[0].std > 3 * clean.stats[0].std  # almost pure unit noise now


def test_bad_image_is_one_sentence(qtbot, panel, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with qtbot.waitSignal(panel.errorOccurred, timeout=60_000) as blocker:
        panel.open_image(bad)
    assert blocker.args[0].startswith("Image ") and "cannot be opened" in blocker.args[0]
    assert not panel.original.has_image()
