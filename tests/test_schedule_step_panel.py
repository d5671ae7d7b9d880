"""Step-through panel, offscreen: Start, Next step, Run to end, with the tiny model."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from sdstudio.ui.panels.step_through import StepThroughPanel

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _params(model_dir, **extra):
    return {"prompt": "a red cat", "model": str(model_dir), "steps": 3, "width": 32,
            "height": 32, "scheduler": "Euler", "seed": 2, "guidance": 4.0, "device": "cpu",
            "dtype": "fp32", **extra}


def _press(qtbot, panel, button):
    with qtbot.waitSignal(panel.stepShown, timeout=120_000) as blocker:
        button.click()
    return blocker.args[0]


def test_step_by_step_then_to_the_end(qtbot, tiny_model_dir):
    from sdstudio.core.models import load_model
    from sdstudio.core.pipeline import StableDiffusion
    from sdstudio.core.request import GenerationRequest

    panel = StepThroughPanel(params=lambda: _params(tiny_model_dir))
    qtbot.addWidget(panel)
    panel.resize(600, 500)
    panel.show()
    assert not panel.next_button.isEnabled()
    assert _press(qtbot, panel, panel.start_button) == 0
    assert panel.views["latent"].has_image() and not panel.views["denoised"].has_image()
    assert panel.next_button.isEnabled()
    assert _press(qtbot, panel, panel.next_button) == 1
    text = panel.numbers.text()
    assert text.startswith("Step 1/3 · t = ") and "CFG 4" in text and "σ = " in text
    for key in ("latent", "denoised", "noise", "difference"):
        assert panel.views[key].has_image(), key
    noise = panel.views["noise"].image_pixmap().toImage()
    # A 2x2 sheet of the 4x4 latent's channels, each 24x upscaled, with 2 px grey gaps.
    assert (noise.width(), noise.height()) == (196, 196)
    assert noise.pixelColor(97, 10).getRgb()[:3] == (60, 60, 60)
    assert _press(qtbot, panel, panel.decode_button) == 1  # the latent after step 1, decoded
    assert panel.views["final"].has_image() and panel.next_button.isEnabled()
    assert panel.numbers.text().count("decoded after 1/3 steps") == 1
    assert _press(qtbot, panel, panel.end_button) == 3
    assert not panel.next_button.isEnabled() and panel.start_button.isEnabled()
    shown = panel.views["final"].image_pixmap().toImage().convertToFormat(
        QImage.Format.Format_RGB888)
    # The same image as a plain Generate of the same request.
    engine = StableDiffusion(load_model(str(tiny_model_dir), device="cpu"))
    ref = engine.generate(GenerationRequest.from_dict(_params(tiny_model_dir))).images[0].image
    from sdstudio.ui.imaging import pil_to_qimage

    assert shown == pil_to_qimage(ref).convertToFormat(QImage.Format.Format_RGB888)


def test_errors_are_one_sentence(qtbot, tiny_model_dir):
    panel = StepThroughPanel(params=lambda: _params(tiny_model_dir, scheduler="Eulerish"))
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.errorOccurred, timeout=120_000) as blocker:
        panel.start_button.click()
    assert "Unknown scheduler" in blocker.args[0]
    empty = StepThroughPanel(params=lambda: _params(tiny_model_dir, prompt=""))
    qtbot.addWidget(empty)
    with qtbot.waitSignal(empty.errorOccurred, timeout=5_000) as blocker:
        empty.start_button.click()
    assert blocker.args[0] == "Type a prompt first."
