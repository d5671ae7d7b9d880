"""The model picker: groups by family with native sizes, marks models that failed to open and
removes them, falls back to the last model that opened; the window undoes the failed model's CFG
and offers only devices that exist."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("pytestqt")

from sdstudio.ui.model_picker import DEMO, ModelPicker  # noqa: E402

WAIT_MS = 180_000


def _texts(picker):
    return [picker.itemText(i) for i in range(picker.count())]


@pytest.fixture
def models_folder(tmp_path, tiny_model_dir, tiny_inpaint_model_dir):
    from sdstudio.testing.single_files import write_single_file

    root = tmp_path / "ComfyUI"
    ckpts = root / "models" / "checkpoints"
    ckpts.mkdir(parents=True)
    shutil.copytree(tiny_model_dir, ckpts / "tiny-folder")
    shutil.copytree(tiny_inpaint_model_dir, ckpts / "tiny-inpaint")
    write_single_file(tiny_model_dir, ckpts / "tiny-file.safetensors")
    return root


def test_groups_by_family_with_native_size(qtbot, models_folder):
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_models_folder(models_folder)
    # the single file's family is read in the background
    qtbot.waitUntil(lambda: any("tiny-file.safetensors · 512px" in t for t in _texts(picker)),
                    timeout=60_000)
    texts = [t.strip() for t in _texts(picker)]
    assert texts[0] == "Demo model (shipped)"
    assert texts.index("SD 1.x") < texts.index("tiny-folder · 32px")
    assert texts.index("SD 1.x inpainting") < texts.index("tiny-inpaint · 32px")
    header = picker.model().item(texts.index("SD 1.x"))
    assert not header.isEnabled()  # a group title cannot be chosen


def test_failed_model_is_marked_falls_back_and_can_be_removed(qtbot, tmp_path, tiny_model_dir):
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_current_model(str(tiny_model_dir))
    picker.mark_loaded(str(tiny_model_dir))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    picker.set_current_model(str(bad))
    assert picker.current_model() == str(bad)
    picker.mark_failed(str(bad), "bad.safetensors is not a valid .safetensors file.")
    assert picker.current_model() == str(tiny_model_dir)  # back to the model that opened
    (i,) = [i for i in range(picker.count()) if picker.itemData(i) == str(bad)]
    assert "failed to open" in picker.itemText(i)
    assert "not a valid" in picker.itemData(i, 3)  # tooltip carries the sentence
    assert "Remove failed models from the list" in _texts(picker)
    picker.remove_failed()
    assert str(bad) not in [picker.itemData(i) for i in range(picker.count())]
    assert "Remove failed models from the list" not in _texts(picker)
    assert picker.opened() == [str(tiny_model_dir)]


def test_demo_never_fails_away(qtbot):
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.mark_failed(DEMO, "x")
    assert picker.current_model() == DEMO and picker.failed_models() == []


def test_window_marks_a_model_that_failed_and_keeps_the_cfg(qtbot, tmp_path, tiny_model_dir):
    from sdstudio.ui.main_window import MainWindow

    low = tmp_path / "low"
    shutil.copytree(tiny_model_dir, low)
    (low / "sdstudio.json").write_text('{"guidance": 3.0}')
    w = MainWindow()
    qtbot.addWidget(w)
    w.params_panel.set_params({"model": str(low), "device": "cpu", "dtype": "fp32"})
    with qtbot.waitSignal(w.modelReady, timeout=WAIT_MS):
        w.start_engine()
    assert w.params_panel.params()["guidance"] == 3.0
    from sdstudio.core.models.loading import available_devices

    devices = [w.params_panel.device.itemText(i) for i in range(w.params_panel.device.count())]
    assert devices == ["auto", *available_devices()]  # only devices that exist
    bad = tmp_path / "lora.safetensors"
    import torch
    from safetensors.torch import save_file

    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, str(bad))
    w.params_panel.model.set_current_model(str(bad))
    with qtbot.waitSignal(w.errorShown, timeout=WAIT_MS) as shown:
        w._preload(str(bad))
    assert "is a LoRA" in shown.args[0]
    assert w.params_panel.params()["guidance"] == 3.0  # not left at the failed file's 7.5
    assert w.params_panel.params()["model"] == str(low)  # back to the model that opened
    assert str(bad) in w.params_panel.model.failed_models()
    if w.last_error_dialog is not None:
        w.last_error_dialog.close()
    w.close()


def test_window_vae_for_a_model_is_remembered_and_reloads(qtbot, tmp_path, tiny_model_dir,
                                                          monkeypatch):
    import torch

    from sdstudio.core.models import choices
    from sdstudio.testing.tiny_models import TINY, _vae
    from sdstudio.ui import model_picker
    from sdstudio.ui.main_window import MainWindow

    torch.manual_seed(99)
    other = _vae(TINY)
    other.save_pretrained(str(tmp_path / "my-vae"))
    w = MainWindow()
    qtbot.addWidget(w)
    w.params_panel.set_params({"model": str(tiny_model_dir), "device": "cpu", "dtype": "fp32"})
    with qtbot.waitSignal(w.modelReady, timeout=WAIT_MS):
        w.start_engine()
    picker = w.params_panel.model
    monkeypatch.setattr(model_picker.QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(tmp_path / "my-vae" / "config.json"), ""))
    with qtbot.waitSignal(w.modelReady, timeout=WAIT_MS):
        picker._on_activated(picker.findData("__vae__"))
    assert choices.recall(str(tiny_model_dir))["vae"] == str((tmp_path / "my-vae").resolve())
    k = "decoder.conv_in.weight"
    loaded = w.jobs.worker.engine.model.vae.state_dict()[k]
    assert torch.equal(loaded, other.state_dict()[k])
    assert picker.findData("__own_vae__") >= 0
    with qtbot.waitSignal(w.modelReady, timeout=WAIT_MS):
        picker._on_activated(picker.findData("__own_vae__"))
    assert "vae" not in choices.recall(str(tiny_model_dir))
    assert not torch.equal(w.jobs.worker.engine.model.vae.state_dict()[k], other.state_dict()[k])
    # a VAE that does not open: one sentence, the model stays (not marked failed), VAE undone
    (tmp_path / "bad-vae.safetensors").write_bytes(b"nope")
    monkeypatch.setattr(model_picker.QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(tmp_path / "bad-vae.safetensors"), ""))
    with qtbot.waitSignal(w.errorShown, timeout=WAIT_MS) as shown:
        picker._on_activated(picker.findData("__vae__"))
    assert "bad-vae.safetensors" in shown.args[0]
    assert picker.failed_models() == [] and picker.current_model() == str(tiny_model_dir)
    assert "vae" not in choices.recall(str(tiny_model_dir))
    if w.last_error_dialog is not None:
        w.last_error_dialog.close()
    w.close()


def test_folder_is_scanned_once_and_again_when_the_list_opens(qtbot, tmp_path, tiny_model_dir):
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_models_folder(tmp_path)
    assert picker.findData(str(tmp_path / "new-model")) < 0
    shutil.copytree(tiny_model_dir, tmp_path / "new-model")
    assert picker.findData(str(tmp_path / "new-model")) < 0  # no rescan on every rebuild
    picker.showPopup()
    assert picker.findData(str(tmp_path / "new-model")) >= 0
    picker.hidePopup()
