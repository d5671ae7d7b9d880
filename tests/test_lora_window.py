"""The window's part of A1111 prompts: token counters, clip skip, the LoRA list, `<lora:`
completion, and the models folder's LoRA / embeddings folders in every request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from sdstudio.core.adapters.apply import lora_folders
from sdstudio.core.conditioning.counter import counter_text, load_tokenizer, tokenizer_folder
from sdstudio.core.conditioning.lora_tags import set_lora_tag
from sdstudio.core.events import EventKind
from sdstudio.core.paths import default_models_dir
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.main_window import MainWindow
from sdstudio.ui.panels.loras import HAS_PREVIEW
from sdstudio.ui.prompt_panel import PromptPanel
from sdstudio.ui.prompt_tools import PromptEdit
from sdstudio.ui.settings import Settings

WAIT_MS = 180_000


def _fake_lora(path: Path, sdxl: bool = False) -> None:
    """A LoRA file's header as kohya writes it (family is told by its keys, nothing more)."""
    from safetensors.numpy import save_file

    keys = ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"]
    if sdxl:
        keys.append("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.zeros((4, 8), np.float32) for k in keys}, str(path))


@pytest.fixture
def window(qtbot):
    """A window without its engine; closed at the end, once its panels' threads are done."""
    w = MainWindow()
    qtbot.addWidget(w)
    yield w
    w.prompt_panel._tasks.wait()
    w.lora_panel._tasks.wait()
    w.close()


@pytest.fixture
def a1111_root(tmp_path):
    root = tmp_path / "webui"
    (root / "models" / "Stable-diffusion").mkdir(parents=True)
    _fake_lora(root / "models" / "Lora" / "style.safetensors")
    _fake_lora(root / "models" / "Lora" / "xl" / "filmxl.safetensors", sdxl=True)
    from PIL import Image

    Image.new("RGB", (16, 16), "red").save(root / "models" / "Lora" / "style.png")
    return root


def test_request_carries_models_folder_loras_embeddings_and_clip_skip(qtbot, window, a1111_root):
    w = window
    w.params_panel.model.set_models_folder(a1111_root)
    w.params_panel.clip_skip.setValue(2)
    req = w.params_panel.request("a cat <lora:style:1>")
    assert req.lora_dir == str(a1111_root / "models" / "Lora")
    assert req.embeddings_dir == str(a1111_root / "embeddings")
    assert req.clip_skip == 2
    w._save_params()  # clip skip is kept like every other parameter
    assert Settings(w.settings.qsettings).params()["clip_skip"] == 2
    w.apply_request(GenerationRequest(prompt="x", clip_skip=3))  # reused from a PNG
    assert w.params_panel.clip_skip.value() == 3


def test_cli_tags_fall_back_to_the_models_folder(tmp_path):
    assert lora_folders(GenerationRequest(prompt="x", lora_dir=str(tmp_path))) == [tmp_path]
    assert lora_folders(GenerationRequest(prompt="x")) == []  # no LoRA folder yet
    own = default_models_dir() / "loras"
    own.mkdir(parents=True)
    assert lora_folders(GenerationRequest(prompt="x")) == [own]


def test_token_counter_counts_chunks_as_you_type(qtbot):
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.count_with("x.safetensors")  # a single file: the shipped CLIP tokenizer
    panel.prompt.clear()
    qtbot.waitUntil(lambda: panel.prompt_tokens.text() == "0/75", timeout=30_000)
    qtbot.keyClicks(panel.prompt, "a red cat")
    qtbot.waitUntil(lambda: panel.prompt_tokens.text() == "3/75", timeout=5_000)
    qtbot.keyClicks(panel.prompt, ", a blue dog" * 20)  # 3 + 80 tokens
    qtbot.waitUntil(lambda: panel.prompt_tokens.text() == "83/150 · 2 chunks", timeout=5_000)
    qtbot.keyClicks(panel.negative, "blurry")
    qtbot.waitUntil(lambda: panel.negative_tokens.text() == "1/75", timeout=5_000)


def test_token_counter_uses_the_models_own_tokenizer(qtbot):
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.count_with("demo")  # the demo model counts 30-token chunks (model_max_length 32)
    panel.set_texts("a red cat", "")
    qtbot.waitUntil(lambda: panel.prompt_tokens.text().endswith("/30"), timeout=30_000)


def test_lora_list_inserts_and_edits_tags(qtbot, window, a1111_root):
    w = window
    w.params_panel.model.set_models_folder(a1111_root)
    panel = w.lora_panel
    panel.rescan(force=True)
    assert [panel.list.item(i).toolTip() for i in range(panel.list.count())] == [
        str(a1111_root / "models/Lora/style.safetensors"),
        str(a1111_root / "models/Lora/xl/filmxl.safetensors"),
    ]
    qtbot.waitUntil(lambda: panel.list.item(0).text() == "style  ·  SD 1.x/2.x")
    assert panel.list.item(1).text() == "filmxl  ·  SDXL"
    assert panel.list.item(0).data(HAS_PREVIEW) and not panel.list.item(1).data(HAS_PREVIEW)
    w.prompt_panel.set_texts("a cat", "")
    panel.list.setCurrentRow(0)
    panel.slider.setValue(15)  # 0.75
    assert panel.weight.value() == 0.75
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert w.prompt_panel.prompt.toPlainText() == "a cat <lora:style:0.75>"
    panel.weight.setValue(-0.5)
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert w.prompt_panel.prompt.toPlainText() == "a cat <lora:style:-0.5>"


def test_set_lora_tag_keeps_other_tags_and_fields():
    assert set_lora_tag("x <lora:stylex:1> <lora:style:0.5:te=1>", "style", 1.25) == (
        "x <lora:stylex:1> <lora:style:1.25:te=1>")
    assert set_lora_tag("", "a", 1) == "<lora:a:1>"


def test_completer_offers_lora_names(qtbot):
    edit = PromptEdit()
    qtbot.addWidget(edit)
    edit.show()
    edit.set_lora_names(lambda: ["style", "filmxl", "other"])
    qtbot.keyClicks(edit, "a cat <lora:")
    assert edit.completer.completionCount() == 3
    qtbot.keyClicks(edit, "fil")
    assert edit.completer.popup().isVisible()
    assert edit.completer.currentCompletion() == "filmxl"
    qtbot.keyClick(edit.completer.popup(), Qt.Key.Key_Return)
    assert edit.toPlainText() == "a cat <lora:filmxl:1>"
    assert not edit.completer.popup().isVisible()
    qtbot.keyClicks(edit, " <lora:zzz")  # no such name: no popup
    assert not edit.completer.popup().isVisible()


def test_window_lora_tag_changes_the_image(qtbot, tiny_model_dir, tmp_path):
    """A request made in the window with <lora:NAME:1> finds the file in the models folder."""
    from diffusers import StableDiffusionPipeline
    from test_lora import _make_lora

    root = tmp_path / "models"
    parts = _make_lora(Path(tiny_model_dir), seed=3, scale=1.0)
    StableDiffusionPipeline.save_lora_weights(
        str(root / "loras"), unet_lora_layers=parts["unet"],
        text_encoder_lora_layers=parts["te"], weight_name="tinystyle.safetensors")
    w = MainWindow()
    qtbot.addWidget(w)
    w.params_panel.model.set_models_folder(root)
    w.params_panel.set_params({
        "model": str(tiny_model_dir), "steps": 2, "width": 32, "height": 32, "scheduler": "Euler",
        "seed_random": False, "seed": 1, "batch_size": 1, "device": "cpu", "dtype": "fp32"})
    images = []
    w.jobs.engineEvent.connect(
        lambda ev: images.append(np.asarray(ev.payload.event.image, np.int16))
        if ev.kind is EventKind.IMAGE else None)
    with qtbot.waitSignal(w.modelReady, timeout=WAIT_MS):
        w.start_engine()
    tiny = load_tokenizer(tokenizer_folder(str(tiny_model_dir)))  # counted with the loaded one
    assert tokenizer_folder(str(tiny_model_dir)) == Path(tiny_model_dir) / "tokenizer"
    w.prompt_panel.set_texts("a red cat <lora:tinystyle:1>", "")
    qtbot.waitUntil(lambda: w.prompt_panel.prompt_tokens.text() == counter_text(
        tiny, "a red cat <lora:tinystyle:1>"), timeout=10_000)
    for prompt in ("a red cat", "a red cat <lora:tinystyle:1>", "a red cat"):
        w.prompt_panel.set_texts(prompt, "")
        with qtbot.waitSignal(w.jobFinished, timeout=WAIT_MS) as blocker:
            w.generate()
        assert blocker.args[1] is EventKind.FINISHED, w.last_error
    w.close()
    base, with_lora, again = images
    assert np.abs(base - with_lora).mean() > 2  # the LoRA's effect is visible
    assert np.array_equal(base, again)  # and it is gone once the tag is


def test_counter_counts_as_a1111_does():
    """Tags are not counted; a prompt edited during the steps counts its longest text."""
    tokenizer = load_tokenizer(tokenizer_folder("x.safetensors"))
    assert counter_text(tokenizer, "a red cat <lora:style:0.5>") == "3/75"
    assert counter_text(tokenizer, "[a red cat:a very big blue dog:0.5]") == "5/75"
    # 120 tokens; the first chunk ends at its last comma and counts as a full 75 (A1111)
    assert counter_text(tokenizer, "a, b " * 40) == "121/150 · 2 chunks"
