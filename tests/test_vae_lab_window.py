"""The VAE lab dock in the window: it follows the chosen model; closing waits for its task."""

from __future__ import annotations

from PIL import Image

from sdstudio.ui.main_window import MainWindow


def test_lab_follows_the_model_and_close_waits_for_its_task(qtbot, tiny_model_dir, tmp_path):
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.vae_lab.model == w.params_panel.model.current_model()
    w.params_panel.modelChosen.emit(str(tiny_model_dir))
    assert w.vae_lab.model == str(tiny_model_dir)
    Image.new("RGB", (32, 32), (10, 200, 30)).save(tmp_path / "g.png")
    w.show()
    w.vae_lab.open_image(tmp_path / "g.png")
    assert w.vae_lab.runner.busy()
    w.close()  # the engine never started: only the lab's task runs
    assert w.vae_lab.runner.wait(0)  # already finished: close waited for it
    qtbot.waitUntil(lambda: w.vae_lab.view is not None, timeout=10_000)
    assert w.vae_lab.view.state.model == str(tiny_model_dir)
