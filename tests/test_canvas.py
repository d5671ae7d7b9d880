"""The canvas's core operations without a model: masks, A1111's crop geometry, the paste back,
outpainting's canvas, the request's new fields, the infotext, and the CLI end to end."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sdstudio.cli import main
from sdstudio.core.canvas import masks
from sdstudio.core.canvas.crop import (
    crop_region,
    expand_crop_region,
    only_masked_box,
    overlay_mask,
    paste_back,
)
from sdstudio.core.canvas.outpaint import Extension, extend_canvas
from sdstudio.core.canvas.upscalers import UPSCALERS, canonical_upscaler
from sdstudio.core.errors import UserError
from sdstudio.core.png.a1111 import format_parameters, parse_parameters
from sdstudio.core.request import GenerationRequest


def _box_mask(size=(64, 48), box=(20, 10, 30, 20)) -> Image.Image:
    m = Image.new("L", size)
    m.paste(255, box)
    return m


def test_invert_fill_clear():
    m = _box_mask()
    inv = np.asarray(masks.invert(m))
    assert inv[15, 25] == 0 and inv[0, 0] == 255
    assert np.asarray(masks.filled((8, 4))).min() == 255
    assert np.asarray(masks.empty((8, 4))).max() == 0


def test_feather_blurs_only_near_the_edge():
    soft = np.asarray(masks.feather(_box_mask(box=(20, 4, 50, 40)), 2))
    assert soft[20, 35] == 255 and soft[0, 0] == 0
    assert 0 < soft[20, 20] < 255  # the edge is soft
    assert np.array_equal(np.asarray(masks.feather(_box_mask(), 0)), np.asarray(_box_mask()))


def test_dilate_grows_and_shrinks_by_whole_pixels():
    grown = masks.bounding_box(masks.dilate(_box_mask(), 3))
    assert grown == (17, 7, 33, 23)
    assert masks.bounding_box(masks.dilate(_box_mask(), -2)) == (22, 12, 28, 18)


def test_crop_region_pads_and_clips():
    assert crop_region(_box_mask(), 4) == (16, 6, 34, 24)
    assert crop_region(_box_mask(), 100) == (0, 0, 64, 48)
    with pytest.raises(UserError, match="empty"):
        crop_region(masks.empty((8, 8)), 4)


@pytest.mark.parametrize(("box", "proc", "expected"), [
    ((16, 6, 34, 24), (32, 32), (16, 6, 34, 24)),  # already square
    ((10, 10, 30, 20), (32, 32), (10, 5, 30, 25)),  # taller, about the centre
    ((40, 0, 60, 10), (32, 32), (40, 0, 60, 20)),  # runs over the top: shifted down
    ((0, 0, 10, 40), (32, 16), (0, 0, 80, 40)),  # wider: capped at the image, 80 px
])
def test_expand_crop_region_matches_a1111(box, proc, expected):
    assert expand_crop_region(box, *proc, 80, 48) == expected


def test_paste_back_changes_only_pixels_under_the_mask():
    rng = np.random.default_rng(0)
    original = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    soft = masks.feather(_box_mask(box=(20, 4, 50, 40)), 3)
    box = only_masked_box(soft, 4, 32, 32)
    generated = Image.new("RGB", (32, 32), (255, 0, 255))
    out = np.asarray(paste_back(original, generated, box, overlay_mask(soft, False)))
    outside = np.asarray(soft) == 0
    assert np.array_equal(out[outside], np.asarray(original)[outside])
    assert (out[20, 35] == (255, 0, 255)).all()


def test_whole_picture_overlay_doubles_the_soft_mask():
    soft = Image.fromarray(np.array([[0, 60, 128, 255]], np.uint8))
    assert np.asarray(overlay_mask(soft, True)).tolist() == [[0, 120, 255, 255]]


def test_outpaint_canvas_masks_the_border_and_the_overlap():
    image = Image.new("RGB", (32, 24), (10, 200, 30))
    out, mask = extend_canvas(image, Extension(left=8, right=16), overlap=4)
    assert out.size == mask.size == (56, 24)
    m = np.asarray(mask)
    assert m[:, :12].min() == 255 and m[:, 36:].min() == 255  # border + 4 px overlap
    assert m[:, 12:36].max() == 0
    assert np.asarray(out)[:, 8:40].tolist() == np.asarray(image).tolist()  # picture unchanged
    assert np.abs(np.asarray(out, np.int16)[:, 50] - (10, 200, 30)).max() <= 2  # edge-extended
    blur, _ = extend_canvas(image, Extension(top=8), fill="blur")
    assert blur.size == (32, 32)
    with pytest.raises(UserError, match="at least one side"):
        extend_canvas(image, Extension())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"inpaint_area": "some"}, "Inpaint area"),
    ({"inpaint_padding": -1}, "Padding"),
    ({"masked_content": "noise"}, "Masked content"),
    ({"mask_blur": 1000}, "Mask blur"),
    ({"hires_scale": 0.5}, "Hires scale"),
    ({"hires_scale": float("nan")}, "Hires scale"),
    ({"hires_scale": 2, "hires_strength": 0}, "Hires denoising"),
    ({"hires_scale": 2, "hires_steps": -1}, "Hires steps"),
    ({"hires_scale": 2, "hires_upscaler": "R-ESRGAN 4x+"}, "Unknown upscaler"),
    ({"hires_scale": 2, "hires_upscaler": "4x.pth"}, "spandrel"),
    ({"hires_scale": 2, "init_image": "a.png"}, "txt2img"),
    ({"hires_scale": 8, "width": 2048}, "hires size"),
])
def test_canvas_fields_are_validated_in_one_sentence(kwargs, message):
    with pytest.raises(UserError, match=message) as info:
        GenerationRequest("x", **kwargs).validate()
    assert str(info.value).count(". ") == 0 or "; " in str(info.value)


def test_upscaler_names_are_canonical():
    assert canonical_upscaler("latent-nearest") == "Latent (nearest)"
    assert canonical_upscaler("LANCZOS") == "Lanczos"
    assert GenerationRequest("x", hires_scale=2, hires_upscaler="latent").validate() \
        .hires_upscaler == "Latent"
    assert {u.space for u in UPSCALERS.values()} == {"latent", "image"}


def test_hires_size_rounds_down_to_multiples_of_8():
    assert GenerationRequest("x", width=96, height=64, hires_scale=1.7).hires_size == (160, 104)


def test_hires_infotext_as_a1111_writes_it_and_reads_back():
    req = GenerationRequest("a cat", seed=5, width=64, height=48, hires_scale=2, hires_steps=8,
                            hires_strength=0.5, hires_upscaler="Lanczos").validate()
    text = format_parameters(req, 5)
    assert "Size: 64x48" in text
    assert ("Denoising strength: 0.5, Hires upscale: 2, Hires steps: 8, "
            "Hires upscaler: Lanczos") in text
    back = parse_parameters(text).to_request()
    assert (back.hires_scale, back.hires_steps, back.hires_strength, back.hires_upscaler) == (
        2.0, 8, 0.5, "Lanczos")
    assert (back.width, back.height) == (64, 48)


def test_inpaint_options_in_the_infotext():
    req = GenerationRequest("a", init_image="i.png", mask="m.png", mask_blur=4,
                            inpaint_area="only-masked", masked_content="latent-noise")
    text = format_parameters(req, 0)
    assert ("Mask blur: 4, Inpaint area: Only masked, Masked area padding: 32, "
            "Masked content: latent noise") in text


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_only_masked_and_outpaint(capsys, tiny_model_dir, tmp_path):
    rng = np.random.default_rng(2)
    init = tmp_path / "init.png"
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(init)
    _box_mask((56, 40), (30, 10, 44, 24)).save(tmp_path / "mask.png")
    code, out, err = _run(
        capsys, "generate", "a cat", "--model", str(tiny_model_dir), "--steps", "2",
        "--width", "32", "--height", "32", "--init-image", str(init), "--mask",
        str(tmp_path / "mask.png"), "--inpaint-area", "only-masked", "--padding", "4",
        "--masked-content", "fill", "--mask-blur", "2", "--out", str(tmp_path / "a"))
    assert code == 0, err
    result = Image.open(out.strip())
    assert result.size == (56, 40)
    assert "Inpaint area: Only masked" in result.text["parameters"]
    code, out, err = _run(
        capsys, "outpaint", str(init), "a cat", "--right", "24", "--model", str(tiny_model_dir),
        "--steps", "2", "--width", "32", "--height", "32", "--out", str(tmp_path / "b"))
    assert code == 0, err
    result = Image.open(out.strip())
    assert result.size == (80, 40)
    (mask_file,) = (tmp_path / "b").glob("init-outpaint-*-mask.png")
    mask = masks.feather(Image.open(mask_file), 8)
    kept = np.asarray(mask) == 0  # outside the overlap and its blur: the picture, byte for byte
    assert kept[:, :16].all() and not kept[:, 40:].any()
    extended = np.asarray(Image.open(str(mask_file).replace("-mask.png", ".png")))
    assert np.array_equal(np.asarray(result)[kept], extended[kept])
    assert np.array_equal(extended[:, :56], np.asarray(Image.open(init)))


def test_cli_hires(capsys, tiny_model_dir, tmp_path):
    code, out, err = _run(
        capsys, "generate", "a cat", "--model", str(tiny_model_dir), "--steps", "2",
        "--width", "32", "--height", "32", "--hires-scale", "2", "--hires-steps", "2",
        "--hires-denoise", "0.5", "--hires-upscaler", "lanczos", "--out", str(tmp_path))
    assert code == 0, err
    result = Image.open(out.strip())
    assert result.size == (64, 64)
    assert "Size: 32x32" in result.text["parameters"]
    assert "Hires upscaler: Lanczos" in result.text["parameters"]
    code, out, err = _run(capsys, "generate", "a cat", "--hires-scale", "2", "--hires-upscaler",
                          "x.pth", "--out", str(tmp_path))
    assert code != 0 and "spandrel" in err and "Traceback" not in err


def test_cli_upscale_keeps_the_metadata_and_records_the_step(capsys, tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\nSteps: 2, Sampler: Euler, Seed: 1, Size: 16x8")
    Image.new("RGB", (16, 8), (9, 99, 199)).save(tmp_path / "src.png", pnginfo=info)
    code, out, err = _run(capsys, "upscale", str(tmp_path / "src.png"), "--scale", "2",
                          "--upscaler", "lanczos", "--out", str(tmp_path / "up"))
    assert code == 0, err
    im = Image.open(out.strip())
    assert im.size == (32, 16)
    assert im.text["parameters"].startswith("a cat")
    assert im.text["postprocessing"] == ("Postprocess upscale by: 2, Postprocess upscaler: "
                                         "Lanczos, Source: src.png")
    code, out, err = _run(capsys, "upscale", str(tmp_path / "src.png"), "--upscaler", "latent",
                          "--out", str(tmp_path / "up"))
    assert code != 0 and "hires fix" in err
    code, out, err = _run(capsys, "upscale", str(tmp_path / "src.png"), "--upscaler",
                          "RealESRGAN_x4.pth", "--out", str(tmp_path / "up"))
    assert code != 0 and "spandrel" in err
