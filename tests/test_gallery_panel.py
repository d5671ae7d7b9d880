"""The gallery panel (offscreen Qt): listing, thumbnails, search, saving, actions, drops."""

from __future__ import annotations

import os

import pytest
from PIL import Image, PngImagePlugin
from PySide6.QtGui import QGuiApplication

from sdstudio.core.errors import UserError
from sdstudio.core.gallery import Gallery, saving
from sdstudio.core.png import request_from_png
from sdstudio.core.request import GenerationRequest
from sdstudio.ui import gallery_panel as gp
from sdstudio.ui.gallery_panel import GalleryPanel

pytestmark = pytest.mark.timeout(120)


def _img(color="red"):
    return Image.new("RGB", (64, 64), color)


@pytest.fixture
def folder():
    with Gallery() as g:
        g.save(_img("red"), GenerationRequest("a red circle", "blurry", seed=5), 5)
        g.save(_img("blue"), GenerationRequest("a blue square", seed=6), 6)
        g.save(_img("green"), GenerationRequest("a green circle", seed=7), 7)
        return g.folder


@pytest.fixture
def panel(qtbot, folder):
    p = GalleryPanel()
    qtbot.addWidget(p)
    p.resize(600, 400)
    p.show()
    qtbot.waitUntil(lambda: p.status.text().startswith("3 images"))
    yield p
    p.shutdown()


def _path(panel, seed):
    return next(i.path for i in panel.gallery.search(f"seed:{seed}"))


def test_lists_newest_first_and_loads_thumbnails(qtbot, panel):
    assert [panel.model.image_at(r).seed for r in range(3)] == [7, 6, 5]
    qtbot.waitUntil(lambda: all(panel.model.pixmap(str(panel.model.image_at(r).path))
                                for r in range(3)))
    panel.sort_box.setCurrentIndex(1)
    assert [panel.model.image_at(r).seed for r in range(3)] == [5, 6, 7]


def test_search_box_and_favourites_filter(qtbot, panel):
    with qtbot.waitSignal(panel.refreshed) as blocker:
        panel.search_box.setText("circle")
    assert blocker.args == [2]
    assert panel.status.text() == "2 images of 3"
    with qtbot.waitSignal(panel.refreshed):
        panel.search_box.setText("seed:oops")
        panel.search_box.setText("seed:6")
    assert panel.model.image_at(0).seed == 6
    panel.search_box.setText("")
    panel.refresh()
    panel.do_action("favourite", str(_path(panel, 5)))
    panel.fav_button.setChecked(True)
    assert panel.model.rowCount() == 1 and panel.model.image_at(0).favourite
    panel.do_action("favourite", str(_path(panel, 5)))  # unfavourite drops it from the filter
    assert panel.model.rowCount() == 0


def test_bad_search_shows_sentence(qtbot, panel):
    panel.search_box.setText("seed:abc")
    panel.refresh()
    assert "seed: needs a whole number" in panel.status.text()


def test_save_image_appears_at_top_without_blocking(qtbot, panel):
    req = GenerationRequest("a purple star", seed=42)
    with qtbot.waitSignal(panel.imageSaved, timeout=10_000) as blocker:
        panel.save_image(_img("purple"), req, 42, {"device": "cpu", "dtype": "fp32"})
        assert panel.pending_saves() == 1
    assert os.path.isfile(blocker.args[0])
    assert panel.model.image_at(0).prompt == "a purple star" and panel.model.rowCount() == 4
    assert panel.pending_saves() == 0


def test_save_failure_rescues_the_image(qtbot, panel, monkeypatch):
    def full(*a, **kw):
        raise UserError("The disk holding /x is full: free some space and generate again.")

    monkeypatch.setattr(panel.gallery, "save", full)
    with qtbot.waitSignal(panel.errorOccurred, timeout=10_000) as blocker:
        panel.save_image(_img(), GenerationRequest("precious", seed=1), 1)
    message = blocker.args[0]
    assert message.startswith("The disk holding /x is full: free some space and generate again;")
    assert message.endswith("instead.") and message.count(".") <= 3
    rescued = list(saving.rescue_dir().glob("*.png"))
    assert len(rescued) == 1
    assert request_from_png(rescued[0]).prompt == "precious"


def test_save_failure_everywhere_keeps_image_in_memory(qtbot, panel, monkeypatch):
    def fail(*a, **kw):
        raise UserError("The folder /x is read-only: choose another gallery folder in Settings.")

    monkeypatch.setattr(panel.gallery, "save", fail)
    monkeypatch.setattr(saving.io, "write_png", fail)
    with qtbot.waitSignal(panel.errorOccurred, timeout=10_000) as blocker:
        panel.save_image(_img(), GenerationRequest("keep", seed=1), 1)
    assert "kept in memory" in blocker.args[0]
    monkeypatch.undo()
    with qtbot.waitSignals([panel.imageSaved, panel.imageSaved], timeout=10_000):
        panel.save_image(_img(), GenerationRequest("next", seed=2), 2)
    assert {i.prompt for i in panel.gallery.search()} >= {"keep", "next"}


def test_reuse_img2img_copy(qtbot, panel):
    path = str(_path(panel, 5))
    with qtbot.waitSignal(panel.reuseRequested) as blocker:
        panel.do_action("reuse", path)
    assert blocker.args[0] == GenerationRequest("a red circle", "blurry", seed=5)
    with qtbot.waitSignal(panel.sendRequested) as blocker:
        panel.do_action("img2img", path)
    send = blocker.args[0]
    assert (send.mode, send.image, send.request.init_image) == ("img2img", path, path)
    assert (send.request.prompt, send.request.seed) == ("a red circle", 5)
    panel.do_action("copy_prompt", path)
    assert QGuiApplication.clipboard().text() == "a red circle"
    panel.do_action("copy_seed", path)
    assert QGuiApplication.clipboard().text() == "5"


def test_reuse_without_parameters_is_one_sentence(qtbot, panel):
    plain = panel.gallery.folder / "plain.png"
    _img().save(plain)
    panel.gallery.add_file(plain)
    with qtbot.waitSignal(panel.errorOccurred) as blocker:
        panel.do_action("reuse", str(plain))
    assert blocker.args == ["plain.png has no generation parameters to reuse."]


def test_delete_asks_first(qtbot, panel, monkeypatch):
    monkeypatch.setattr("send2trash.send2trash", os.remove)
    path = _path(panel, 6)
    panel.confirm = lambda q: False
    panel.do_action("delete", str(path))
    assert path.exists() and panel.model.rowCount() == 3
    questions = []
    panel.confirm = lambda q: questions.append(q) or True
    panel.do_action("delete", str(path))
    assert questions == [f"Move {path.name} to the trash?"]
    assert not path.exists() and panel.model.rowCount() == 2


def test_open_folder_and_viewer(qtbot, panel, monkeypatch):
    opened = []
    monkeypatch.setattr(gp.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    img = panel.model.image_at(0)
    viewer = panel.open_image(img)
    assert "a green circle" in viewer.info.toPlainText() and "Seed: 7" in viewer.info.toPlainText()
    assert viewer.view.has_image() and viewer.error.isHidden()
    viewer.buttons["folder"].click()
    assert opened == [str(img.path.parent)]
    viewer.buttons["favourite"].click()
    assert viewer.buttons["favourite"].text().startswith("★")
    viewer.close()


def test_viewer_on_damaged_file(qtbot, panel):
    img = panel.model.image_at(0)
    img.path.write_bytes(img.path.read_bytes()[:60])  # truncated on disk after indexing
    viewer = panel.open_image(img)
    assert not viewer.view.has_image() and not viewer.error.isHidden()
    assert img.path.name in viewer.error.text()


def test_outside_changes_and_broken_files_on_open(qtbot, folder):
    _img().save(folder / "added-by-hand.png")
    (folder / "broken.png").write_bytes(b"nope")
    p = GalleryPanel()
    qtbot.addWidget(p)
    with qtbot.waitSignal(p.synced, timeout=10_000):
        pass
    assert p.model.rowCount() == 4
    assert "1 file(s) could not be read" in p.status.text()
    p.shutdown()


def test_drop_png_with_parameters(qtbot, panel, tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a dropped cat\nSteps: 12, Sampler: DDIM, CFG scale: 4, Seed: 99, "
                                "Size: 256x256, Model: demo")
    dropped = tmp_path / "dropped.png"
    _img().save(dropped, pnginfo=info)
    panel.ask_drop = lambda path, params: "reuse"
    with qtbot.waitSignal(panel.reuseRequested) as blocker:
        assert panel.handle_drop(str(dropped))
    req = blocker.args[0]
    assert (req.prompt, req.steps, req.scheduler, req.seed, req.width) == (
        "a dropped cat", 12, "DDIM", 99, 256)
    _img().save(tmp_path / "plain.png")
    assert panel.handle_drop(str(tmp_path / "plain.png")) is False


def test_unusable_folder_is_one_sentence(qtbot, tmp_path):
    blocker_file = tmp_path / "file"
    blocker_file.write_text("x")
    p = GalleryPanel(blocker_file / "sub")
    qtbot.addWidget(p)
    with qtbot.waitSignal(p.errorOccurred) as blocker:
        pass
    assert blocker.args[0].startswith("Could not create the gallery folder")
    p.shutdown()


def test_screenshot(qtbot, panel, tmp_path):
    # every thumbnail is loaded (in a pool thread, in any order) before the grab
    qtbot.waitUntil(lambda: all(panel.model.pixmap(str(panel.model.image_at(i).path)) is not None
                                for i in range(3)))
    shot = panel.grab().toImage()
    colours = {shot.pixelColor(x, y).getRgb()[:3] for x in range(0, shot.width(), 2)
               for y in range(0, shot.height(), 2)}
    # the three thumbnails are painted: each image's own colour (within the thumbnail's
    # compression) is on screen
    for want in ((255, 0, 0), (0, 0, 255), (0, 128, 0)):
        assert any(max(abs(a - b) for a, b in zip(c, want, strict=True)) <= 8 for c in colours), want


def test_ctrl_wheel_zoom_is_clamped(panel):
    panel.set_cell_size(10_000)
    assert panel.view.gridSize().width() == gp.MAX_CELL
    panel.set_cell_size(1)
    assert panel.view.gridSize().width() == gp.MIN_CELL


def test_gallery_folder_is_a_setting(qtbot, tmp_path, folder):
    from PySide6.QtCore import QSettings

    from sdstudio.ui.settings import Settings

    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    p = GalleryPanel(settings=settings)
    qtbot.addWidget(p)
    assert p.gallery.folder == folder and p.model.rowCount() == 3
    p.set_folder(tmp_path / "elsewhere")
    assert p.gallery.folder == (tmp_path / "elsewhere").resolve() and p.model.rowCount() == 0
    p.shutdown()
    p2 = GalleryPanel(settings=settings)
    qtbot.addWidget(p2)
    assert p2.gallery.folder == (tmp_path / "elsewhere").resolve()
    p2.shutdown()
