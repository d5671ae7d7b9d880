"""The gallery indexes and searches other tools' PNGs through the readers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import readers_samples as samples
from PIL import Image, PngImagePlugin

from sdstudio.core.gallery import Gallery
from sdstudio.core.png import io

REAL = Path(__file__).parent / "fixtures" / "readers" / "sd-parsers"


def _png(path: Path, chunks: dict[str, str], size=(16, 16)) -> Path:
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    Image.new("RGB", size, "gray").save(path, pnginfo=info)
    return path


def test_foreign_pngs_are_indexed_and_searchable(tmp_path):
    folder = tmp_path / "gallery"
    folder.mkdir()
    for name in ("fooocus1_cropped.png", "noisy_latents_3_subjects_cropped.png",
                 "invokeai_imeta1.png", "novelai1_cropped.png"):
        shutil.copy(REAL / name, folder / name)
    _png(folder / "swarm.png", samples.swarmui())
    _png(folder / "nai4.png", samples.novelai_v4(), size=(832, 1216))
    _png(folder / "flow.png", samples.comfy_workflow_only())
    _png(folder / "matrix.png", samples.stability_matrix())
    shutil.copy(REAL / "automatic1111_cropped.png", folder / "a1111.png")
    g = Gallery(folder)
    try:
        g.sync()
        assert g.count() == 9
        for row in g.search():  # the "done when": every image shows these
            name = Path(row.file).name
            assert row.prompt and row.seed is not None and row.steps and row.sampler, name
            assert row.cfg is not None and row.width and row.height and row.model, name
        [fooocus] = g.search("goldfish")
        assert (fooocus.seed, fooocus.sampler, fooocus.width, fooocus.height) == (
            6952411511246973023, "DPM++ 2M SDE Karras", 768, 1280)
        [swarm] = g.search("seed:305223794")
        assert (swarm.prompt, swarm.model, swarm.cfg) == (
            "A Close-Up photograph of a 25 year old Asian woman", "flux1-dev-fp8", 1.0)
        assert {Path(i.file).name for i in g.search("tool:novelai")} == {
            "novelai1_cropped.png", "nai4.png"}
        assert [Path(i.file).name for i in g.search("tool:comfyui model:Anything")] == [
            "noisy_latents_3_subjects_cropped.png"]
        [flow] = g.search("cabin")
        assert (flow.sampler, flow.steps, flow.model) == ("Euler a", 25, "dreamshaper_8")
        assert [Path(i.file).name for i in g.search("sampler:euler tool:invokeai")] == [
            "invokeai_imeta1.png"]
        params = g.parameters(folder / "swarm.png")
        request = params.to_request()  # the gallery's "reuse" path
        assert (request.seed, request.steps, request.scheduler) == (305223794, 25, "Euler")
    finally:
        g.close()


def test_json_in_parameters_is_not_taken_for_a_prompt(tmp_path):
    """The issue's complaint: Fooocus and SwarmUI JSON came back as the 'prompt'."""
    path = _png(tmp_path / "x.png", samples.swarmui())
    p = io.read_png(path)
    assert p.source == "swarmui" and not p.prompt.startswith("{")
    assert json.loads(json.dumps(p.settings))["Seed"] == "305223794"


def test_dropping_a_comfyui_png_on_the_window_reuses_its_settings(qtbot, tmp_path):
    """As a user: drag another tool's PNG onto the gallery panel, choose "reuse"."""
    from sdstudio.ui.gallery_panel import GalleryPanel

    panel = GalleryPanel()
    qtbot.addWidget(panel)
    try:
        dropped = _png(tmp_path / "comfy.png", samples.comfy_sdxl_loras())
        panel.ask_drop = lambda path, params: "reuse"
        with qtbot.waitSignal(panel.reuseRequested) as blocker:
            assert panel.handle_drop(str(dropped))
        req = blocker.args[0]
        assert (req.prompt, req.negative_prompt, req.seed, req.steps, req.guidance) == (
            "a lighthouse at dusk, volumetric light", "blurry, lowres", 918273645, 30, 6.5)
        assert (req.scheduler, req.width, req.height) == ("DPM++ 2M Karras", 832, 1216)
    finally:
        panel.shutdown()


def test_jpeg_and_webp_parameters_are_read(tmp_path):
    """A1111 and SwarmUI JPEG/WebP keep their parameters in the EXIF UserComment."""
    a1111 = REAL / "automatic1111_cropped.jpg"
    p = io.read_png(a1111)
    assert (p.prompt, p.seed, p.sampler, p.size) == ("photo of a duck", 235284042, "UniPC",
                                                     (512, 400))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + samples.swarmui()["parameters"].encode(
        "utf-16-be")
    Image.new("RGB", (16, 16)).save(tmp_path / "s.webp", exif=exif)
    assert io.read_png(tmp_path / "s.webp").source == "swarmui"


def test_copy_parameters_of_a_comfyui_image_as_a1111_text(qtbot, tmp_path):
    from PySide6.QtGui import QGuiApplication

    from sdstudio.core.png import parse_parameters
    from sdstudio.ui.gallery_panel import GalleryPanel

    panel = GalleryPanel()
    qtbot.addWidget(panel)
    try:
        path = _png(tmp_path / "c.png", samples.comfy_efficiency())
        panel.do_action("copy_parameters", str(path))
        back = parse_parameters(QGuiApplication.clipboard().text())
        assert (back.prompt, back.negative_prompt, back.seed, back.steps, back.cfg) == (
            "portrait of an old sailor, detailed skin", "cartoon, painting", 77, 28, 5.0)
        assert (back.sampler, back.size, back.model) == ("DPM++ SDE Karras", (512, 640),
                                                         "realisticVision_v51")
        assert back.settings["Source"] == "comfyui"
        plain = tmp_path / "plain.png"
        Image.new("RGB", (8, 8)).save(plain)
        with qtbot.waitSignal(panel.errorOccurred) as blocker:
            panel.do_action("copy_parameters", str(plain))
        assert "no generation parameters" in blocker.args[0]
    finally:
        panel.shutdown()


def test_novelai_reuse_takes_the_image_size(tmp_path):
    """NovelAI 3 leaves the size out of its Comment: the image's own is the size to reuse."""
    path = tmp_path / "nai.png"
    shutil.copy(REAL / "novelai1_cropped.png", path)
    with Image.open(path) as im:
        info = PngImagePlugin.PngInfo()
        for k, v in im.info.items():
            info.add_text(k, v)
    Image.new("RGB", (640, 832)).save(path, pnginfo=info)
    request = io.request_from_png(path)
    assert (request.width, request.height, request.seed, request.scheduler) == (
        640, 832, 2253955223, "Euler a")


def test_jpeg_and_webp_images_are_indexed(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    shutil.copy(REAL / "automatic1111_cropped.jpg", folder / "duck.jpg")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + samples.swarmui()["parameters"].encode(
        "utf-16-be")
    Image.new("RGB", (16, 16)).save(folder / "swarm.webp", exif=exif)
    Image.new("RGB", (16, 16)).save(folder / "plain.jpeg")
    (folder / "notes.txt").write_text("not an image")
    with Gallery(folder) as g:
        assert g.count() == 3 and not g.last_sync.errors
        assert [Path(i.file).name for i in g.search("duck")] == ["duck.jpg"]
        assert [Path(i.file).name for i in g.search("tool:swarmui")] == ["swarm.webp"]
