"""'Paste parameters' (A1111's paste button): A1111 text or another tool's JSON from the
clipboard sets the prompt and every parameter; what is not used is named in one notice."""

from __future__ import annotations

import pytest
import readers_samples as samples
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from sdstudio.core.png.paste import PasteError, pasted_fields

pytestmark = pytest.mark.timeout(120)

A1111 = ("a castle on a hill, <lora:detail:0.5>\nNegative prompt: blurry, lowres\n"
         "Steps: 12, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 42, Size: 512x768, "
         "Model hash: abc123, Model: dreamshaper_8, Clip skip: 2, Hires upscale: 2, "
         "Hires steps: 5, Hires upscaler: Lanczos, Denoising strength: 0.4, "
         "ADetailer model: face_yolov8n.pt, Lora hashes: \"detail: 1234\", Version: v1.9.4")


def test_a1111_text_gives_every_field():
    fields, notices = pasted_fields(A1111)
    assert fields == {
        "prompt": "a castle on a hill, <lora:detail:0.5>", "negative_prompt": "blurry, lowres",
        "seed": 42, "steps": 12, "guidance": 5.0, "scheduler": "DPM++ 2M Karras",
        "width": 512, "height": 768, "clip_skip": 2, "hires_scale": 2.0, "hires_steps": 5,
        "hires_strength": 0.4, "hires_upscaler": "Lanczos"}
    assert any("dreamshaper_8" in n for n in notices)  # the model is not a path here
    assert notices[-1] == "Not used: ADetailer model."


def test_img2img_text_turns_hires_off():
    fields, _ = pasted_fields("a cat\nSteps: 20, Seed: 3, Size: 64x64, Denoising strength: 0.3")
    assert (fields["strength"], fields["hires_scale"]) == (0.3, 1.0)


def test_other_tools_json():
    invoke = samples.invokeai_v4()["invokeai_metadata"]
    fields, _ = pasted_fields(invoke)
    assert (fields["prompt"], fields["seed"], fields["steps"]) == (
        "a glass teapot, studio light", 123456789, 40)
    comfy = samples.comfy_sdxl_loras()["prompt"]
    fields, _ = pasted_fields(comfy)
    assert (fields["seed"], fields["steps"], fields["guidance"]) == (918273645, 30, 6.5)


@pytest.mark.parametrize("text", ["", "   ", '{"foo": 1}', '{"prompt": {"1": 2}}'])
def test_nothing_to_paste_is_one_sentence(text):
    with pytest.raises(PasteError) as info:
        pasted_fields(text)
    assert "\n" not in str(info.value)


def test_plain_text_is_a_prompt_only():
    assert pasted_fields("a red fox") == ({"prompt": "a red fox", "negative_prompt": ""}, [])


@pytest.fixture
def window(fake_window):
    return fake_window


def test_paste_in_the_window(qtbot, window):
    window.params_panel.set_params({"seed_random": True, "steps": 30, "hires_scale": 1.0})
    QGuiApplication.clipboard().setText(A1111)
    window.prompt_panel.prompt.setFocus()
    qtbot.keyClick(window.prompt_panel.prompt, Qt.Key.Key_V,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.prompt_panel.texts() == ("a castle on a hill, <lora:detail:0.5>",
                                           "blurry, lowres")
    p = window.params_panel.params()
    assert (p["seed"], p["seed_random"], p["steps"], p["guidance"]) == (42, False, 12, 5.0)
    assert (p["width"], p["height"]) == (512, 768)
    assert (p["hires_scale"], p["hires_steps"], p["hires_upscaler"]) == (2.0, 5, "Lanczos")
    assert "ADetailer model" in window.last_error and "dreamshaper_8" in window.last_error


def test_paste_button_and_menu(qtbot, window):
    QGuiApplication.clipboard().setText("a boat\nSteps: 9, Seed: 5, Size: 64x64")
    window.prompt_panel.paste_button.click()
    assert window.prompt_panel.texts()[0] == "a boat"
    assert window.params_panel.params()["steps"] == 9
    assert window.statusBar().currentMessage() == "Parameters pasted."
    edit = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Edit")
    assert window.paste_action in edit.actions()
    QGuiApplication.clipboard().setText("")
    window.paste_action.trigger()
    assert "no text" in window.last_error
    assert window.prompt_panel.texts()[0] == "a boat"  # nothing changed
