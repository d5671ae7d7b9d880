"""The gallery panel's source list (read-only folders, watched) and filter bar (offscreen Qt)."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import QDate

from sdstudio.core.gallery import Gallery
from sdstudio.core.gallery.sources import load_sources
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.gallery_filters import FilterBar
from sdstudio.ui.gallery_panel import GalleryPanel
from tests.test_gallery_sources import A1111, _png, _tree

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def panel(qtbot):
    with Gallery() as g:
        g.save(Image.new("RGB", (8, 8)), GenerationRequest("own red cat", seed=5), 5)
    p = GalleryPanel()
    qtbot.addWidget(p)
    p.show()
    qtbot.waitUntil(lambda: p.status.text().startswith("1 image"))
    yield p
    p.shutdown()


def test_filter_bar_writes_query_keys(qtbot):
    bar = FilterBar()
    qtbot.addWidget(bar)
    assert bar.query() == ""
    bar.set_values({"model": ["sd15", "my model"], "sampler": ["Euler a"], "size": ["512x768"]})
    with qtbot.waitSignal(bar.changed):
        bar.set_filter("model", "my model")
    bar.set_filter("sampler", "Euler a")
    bar.set_filter("size", "512x768")
    bar.set_filter("tool", "comfyui")
    bar.dates["from"].setDate(QDate(2026, 1, 5))
    assert bar.query() == ('model:"my model" sampler:"Euler a" tool:"comfyui" size:512x768 '
                           "from:2026-01-05")
    bar.set_values({"model": ["sd15"]})  # new values: the current choice stays
    assert 'model:"my model"' in bar.query()
    bar.clear()
    assert bar.query() == ""


def test_add_source_shows_it_read_only_and_watches_it(qtbot, panel, tmp_path):
    outputs = tmp_path / "webui" / "outputs"
    _png(outputs / "txt2img-images" / "2026-01-05" / "00001-11.png",
         parameters=A1111.format(seed=11))
    before = _tree(outputs)
    panel.sources.pick_folder = lambda: str(outputs)
    with qtbot.waitSignal(panel.synced, timeout=10_000):
        panel.sources.add_button.click()
    assert load_sources() == [outputs.resolve()]
    assert panel.gallery.read_only and panel.gallery.folder == outputs.resolve()
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1)
    # the filter bar offers this folder's values and filters by them
    model_box = panel.filters.boxes["model"]
    assert model_box.findData("anything-v5") > 0
    with qtbot.waitSignal(panel.refreshed, timeout=5000) as blocker:
        panel.filters.set_filter("sampler", "DPM++ 2M")
    assert blocker.args == [1]
    with qtbot.waitSignal(panel.refreshed, timeout=5000) as blocker:
        panel.filters.set_filter("size", "640x640")
    assert blocker.args == [0]
    panel.filters.clear()
    # a new file in a new dated subfolder is picked up by the watcher
    panel.watcher._timer.setInterval(50)
    (outputs / "txt2img-images" / "2026-01-06").mkdir()
    qtbot.wait(200)  # the new subfolder is watched before the file lands in it
    _png(outputs / "txt2img-images" / "2026-01-06" / "00002-12.png",
         parameters=A1111.format(seed=12))
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2, timeout=10_000)
    # a generated image goes to the gallery's own folder, never into the source
    before = _tree(outputs)
    panel.save_image(Image.new("RGB", (8, 8)), GenerationRequest("new one", seed=9), 9)
    qtbot.waitUntil(lambda: panel.pending_saves() == 0, timeout=10_000)
    assert _tree(outputs) == before
    with Gallery() as own:
        assert own.count() == 2
    # back to the gallery, then remove the source (files untouched)
    with qtbot.waitSignal(panel.synced, timeout=10_000):
        panel.sources.box.setCurrentIndex(1)
        panel.sources.remove_current()
    assert load_sources() == [] and not panel.gallery.read_only
    assert _tree(outputs) == before


def test_sync_progress_is_shown(qtbot, panel):
    panel._show_progress(250, 1000)
    assert panel.progress.isVisible() and panel.progress.text() == "Indexing 250 of 1000"
    with qtbot.waitSignal(panel.synced, timeout=10_000):
        panel._sync()
    assert not panel.progress.isVisible()
