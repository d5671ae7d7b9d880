"""Sending a gallery image to img2img / inpaint (with its prompt, parameters and mask) and
upscaling it into the gallery, in the window (offscreen, FakeWorker: no engine runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sdstudio.core.png import read_info, read_png
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.gallery_send import send_image
from sdstudio.ui.panels.canvas import save_mask_file

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def window(fake_window):
    return fake_window


def _save(window, request: GenerationRequest, size=(96, 80), color="orange") -> str:
    row = window.gallery_panel.gallery.save(Image.new("RGB", size, color), request, request.seed)
    window.gallery_panel.refresh()
    return str(row.path)


REQUEST = GenerationRequest("a lighthouse at dusk", "fog", seed=77, steps=7, guidance=3.5,
                            width=64, height=64, strength=0.6, hires_scale=1.0)


def test_send_to_img2img_carries_prompt_and_parameters(qtbot, window):
    window.params_panel.set_params({"seed": 1, "seed_random": True, "steps": 30})
    path = _save(window, REQUEST)
    window.gallery_panel.do_action("img2img", path)
    assert window.prompt_panel.texts() == ("a lighthouse at dusk", "fog")
    p = window.params_panel.params()
    assert (p["seed"], p["seed_random"], p["steps"], p["guidance"], p["strength"]) == (
        77, False, 7, 3.5, 0.6)
    assert (p["init_image"], p["mask"]) == (path, None)
    assert (p["width"], p["height"]) == (96, 80)  # the image's own size, as A1111 sends it
    assert "Sent" in window.statusBar().currentMessage()


def test_send_to_inpaint_restores_the_mask(qtbot, window, tmp_path):
    source = tmp_path / "source.png"
    Image.new("RGB", (64, 64), "grey").save(source)
    mask = save_mask_file(Image.new("L", (64, 64), 255))
    assert mask.parent.name == "masks"
    request = GenerationRequest("a red door", seed=9, steps=5, width=64, height=64,
                                init_image=str(source), mask=str(mask),
                                inpaint_area="only-masked", mask_blur=4)
    path = _save(window, request, size=(64, 64))
    window.gallery_panel.do_action("inpaint", path)
    p = window.params_panel.params()
    assert (p["init_image"], p["mask"]) == (path, str(mask))  # repaint the result, same mask
    assert (p["inpaint_area"], p["mask_blur"], p["seed"]) == ("only-masked", 4, 9)
    assert window.prompt_panel.texts()[0] == "a red door"
    # sent to img2img, the same image loses its mask (img2img repaints everything)
    window.gallery_panel.do_action("img2img", path)
    assert window.params_panel.params()["mask"] is None


def test_send_to_inpaint_without_a_mask_says_so(qtbot, window):
    path = _save(window, REQUEST)
    window.params_panel.mask_slot.set_path(None)
    window.gallery_panel.do_action("inpaint", path)
    assert window.params_panel.params()["init_image"] == path
    assert window.params_panel.params()["mask"] is None
    assert "without a mask" in window.statusBar().currentMessage()


def test_mask_gone_and_no_parameters(tmp_path):
    gone = GenerationRequest("x", seed=1, init_image=str(tmp_path / "a.png"),
                             mask=str(tmp_path / "mask-gone.png"))
    from sdstudio.core.png import write_png

    png = write_png(tmp_path / "made.png", Image.new("RGB", (70, 64)), gone, 1)
    send = send_image(png, "inpaint")
    assert send.request.mask is None and "is gone" in send.notices[0]
    assert (send.request.width, send.request.height) == (64, 64)  # 70 -> a multiple of 8
    plain = tmp_path / "plain.png"
    Image.new("RGB", (64, 64)).save(plain)
    send = send_image(plain, "img2img")
    assert send.request is None and "only the image" in send.notices[0]


def test_send_without_parameters_sends_the_image(qtbot, window):
    plain = window.gallery_panel.gallery.folder / "plain.png"
    Image.new("RGB", (64, 64), "teal").save(plain)
    window.gallery_panel.gallery.add_file(plain)
    window.prompt_panel.set_texts("kept", "")
    window.gallery_panel.do_action("img2img", str(plain))
    assert Path(window.params_panel.params()["init_image"]).resolve() == plain.resolve()
    assert window.prompt_panel.texts()[0] == "kept"
    assert "no generation parameters" in window.statusBar().currentMessage()


def test_upscale_puts_a_new_image_in_the_gallery(qtbot, window):
    panel = window.gallery_panel
    path = _save(window, REQUEST, size=(64, 48))
    before = panel.gallery.count()
    with qtbot.waitSignal(panel.imageSaved, timeout=20_000) as blocker:
        panel.do_action("upscale", path)
    out = Path(blocker.args[0])
    assert out != Path(path) and out.parent == panel.gallery.folder
    with Image.open(out) as im:
        assert im.size == (128, 96)
    assert panel.gallery.count() == before + 1
    row = panel.gallery.get(out)
    assert (row.prompt, row.seed) == ("a lighthouse at dusk", 77)
    assert panel.model.image_at(0).path == row.path  # shown first, as a new image
    info, _ = read_info(out)
    assert info["postprocessing"] == (f"Postprocess upscale by: 2, Postprocess upscaler: "
                                      f"Lanczos, Source: {Path(path).name}")
    assert read_png(out).to_request().prompt == "a lighthouse at dusk"
    # again: a second file, never over the first
    with qtbot.waitSignal(panel.imageSaved, timeout=20_000) as blocker:
        panel.upscale(path, 4, "Nearest")
    second = Path(blocker.args[0])
    assert second != out and Image.open(second).size == (256, 192)
    assert "Nearest" in read_info(second)[0]["postprocessing"]


def test_upscale_failure_is_one_sentence(qtbot, window):
    panel = window.gallery_panel
    path = _save(window, REQUEST)
    with qtbot.waitSignal(panel.errorOccurred, timeout=20_000) as blocker:
        panel.upscale(path, 2, "Latent")  # a latent upscaler cannot resize a picture
    assert "upscales latents" in blocker.args[0] and "\n" not in blocker.args[0]
    assert panel.pending_saves() == 0


def test_viewer_sends_and_upscales(qtbot, window):
    panel = window.gallery_panel
    path = _save(window, REQUEST)
    viewer = panel.open_image(panel.gallery.get(path))
    viewer.buttons["inpaint"].click()
    assert window.params_panel.params()["init_image"] == path
    with qtbot.waitSignal(panel.imageSaved, timeout=20_000):
        viewer.buttons["upscale"].click()
    viewer.close()


def test_context_menu_offers_the_sends(qtbot, window):
    panel = window.gallery_panel
    path = _save(window, REQUEST)
    menu = panel.image_menu(panel.gallery.get(path))
    labels = [a.text() for a in menu.actions()]
    assert {"Send to img2img", "Send to inpaint", "Upscale"} <= set(labels)
    up = next(a.menu() for a in menu.actions() if a.text() == "Upscale")
    assert [a.text() for a in up.actions()] == ["2× Lanczos", "4× Lanczos", "2× Nearest"]
    with qtbot.waitSignal(panel.imageSaved, timeout=20_000) as blocker:
        up.actions()[2].trigger()
    assert "Nearest" in read_info(blocker.args[0])[0]["postprocessing"]
    menu.deleteLater()
