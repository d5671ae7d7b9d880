"""Readers of other tools' metadata: real files from sd-parsers' test suite and hand-written
samples per format (tests/readers_samples.py). Expected values are the tools' own, read off
their chunks, never our reader's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import readers_samples as samples
from PIL import Image, PngImagePlugin

from sdstudio.core import png as metadata
from sdstudio.core.png.readers import (
    image_chunks,
    read_metadata,
    to_a1111_text,
    to_parameters,
    to_request,
)
from sdstudio.core.png.readers.dispatch import _read
from sdstudio.core.png.readers.samplers import menu_sampler, sampler_display_name
from sdstudio.core.request import GenerationRequest
from sdstudio.core.schedulers import sampler_names

REAL = Path(__file__).parent / "fixtures" / "readers" / "sd-parsers"


def _open(name: str):
    with Image.open(REAL / name) as im:
        return read_metadata(image_chunks(im, stealth=True), im.size)


# ---------------------------------------------------------------- real files


def test_a1111_png_and_jpeg_exif_user_comment():
    for name in ("automatic1111_cropped.png", "automatic1111_cropped.jpg"):
        p = _open(name)
        assert (p.source, p.prompt, p.negative_prompt) == ("a1111", "photo of a duck", "monochrome")
        assert (p.steps, p.sampler, p.cfg, p.seed) == (15, "UniPC", 5.0, 235284042)
        assert (p.size, p.model, p.model_hash) == ((512, 400), "realistic_realisticVisionV20_v20",
                                                   "c0d1994c73")


def test_a1111_stealth_pnginfo_in_alpha():
    p = _open("automatic1111_stealth.png")
    assert (p.prompt, p.negative_prompt, p.sampler, p.scheduler) == (
        "a circle", "a square", "Euler", "Automatic")
    assert (p.cfg, p.seed, p.steps, p.clip_skip, p.size) == (7.0, 2015833630, 20, 2, (64, 64))
    assert (p.model, p.model_hash, p.version) == ("realisticVisionV51_v51VAE", "15012c538f",
                                                  "v1.9.4-169-ga30b19dd")


def test_stealth_is_only_read_on_request():
    with Image.open(REAL / "automatic1111_stealth.png") as im:
        assert image_chunks(im) == {}


def test_comfyui_img2img():
    p = _open("img2img_cropped.png")
    assert p.source == "comfyui"
    assert p.prompt.strip() == "photograph of victorian woman with wings, sky clouds, meadow grass"
    assert p.negative_prompt.strip() == "watermark, text"
    assert (p.seed, p.steps, p.cfg) == (280823642470253, 20, 8.0)
    assert (p.sampler_raw, p.scheduler, p.sampler) == ("sample_dpmpp_2m", "normal", "DPM++ 2M")
    assert p.strength == pytest.approx(0.87)
    assert p.model == "v1-5-pruned-emaonly" and p.extra["model_file"] == "v1-5-pruned-emaonly.ckpt"


def test_comfyui_area_prompts_and_hires_pass():
    p = _open("night_evening_day_morning_cropped.png")
    assert (p.seed, p.steps, p.cfg, p.sampler) == (335608130539327, 13, 8.5, "DPM++ SDE")
    assert p.model == "Anything-V3.0" and p.size == (704, 1280)
    assert "(best quality) (daytime:1.2) sky (blue)" in p.prompt.split("\n")  # one of the areas
    assert "(best quality) (night:1.3) (darkness) sky (black) (stars:1.2) (galaxy:1.2) (space) " \
        "(universe)" in p.prompt.split("\n")
    assert p.negative_prompt.startswith("(hands), text, error, cropped")
    assert p.hires is not None and p.hires.upscaler == "nearest-exact"


def test_comfyui_picks_the_sampler_of_the_final_save():
    """Six samplers, two SaveImage nodes: the image of node 32 went through all stages."""
    p = _open("noisy_latents_3_subjects_cropped.png")
    # first pass: KSamplerAdvanced 58 (uni_pc, cfg 6.5) over the composite of 1280x704 ...
    assert (p.sampler_raw, p.cfg, p.steps, p.size) == ("uni_pc", 6.5, 16, (1280, 704))
    # ... whose noise came from the stage that added it (58 has add_noise disabled)
    assert p.seed == 512136241112371
    # then LatentUpscale 22 to 1920x1088 and KSampler 24: 9 steps at denoise 0.54
    assert (p.hires.width, p.hires.height, p.hires.steps, p.hires.denoise) == (1920, 1088, 9, 0.54)
    assert p.prompt.startswith("girl (flat chest:0.9)") and "holding hands" in p.prompt


def test_comfyui_unclip_two_pass():
    p = _open("unclip_2pass_cropped.png")
    assert (p.seed, p.steps, p.cfg, p.sampler_raw) == (1106257833005336, 26, 8.0, "uni_pc_bh2")
    assert p.sampler == "UniPC" and p.size == (1280, 704)
    assert "waifu, anime" in p.prompt and p.negative_prompt.startswith("lowres, (bad anatomy)")


def test_fooocus_json_scheme():
    p = _open("fooocus1_cropped.png")
    assert (p.source, p.prompt, p.negative_prompt) == ("fooocus", "a smiling goldfish", "")
    assert (p.seed, p.steps, p.cfg, p.size) == (6952411511246973023, 30, 4.0, (768, 1280))
    assert (p.sampler_raw, p.scheduler, p.sampler) == ("dpmpp_2m_sde_gpu", "karras",
                                                       "DPM++ 2M SDE Karras")
    assert (p.model, p.model_hash, p.clip_skip, p.version) == (
        "juggernautXL_v8Rundiffusion", "aeb7e9e689", 2, "Fooocus v2.4.3")
    assert json.loads(p.extra["full_prompt"])[0].startswith("cinematic still a smiling goldfish")


def test_invokeai_v1_dream_and_v2_sd_metadata():
    prompt = "professional full body photo of young woman, hyper long brunette hair"
    for name in ("invokeai_dream1.png", "invokeai_sdmeta1.png"):
        p = _open(name)
        assert p.source == "invokeai" and p.prompt.startswith(prompt)
        assert p.negative_prompt == "rendering, glowing eyes, skinny"  # the [bracketed] part
        assert (p.seed, p.steps, p.cfg, p.size) == (2980747362, 50, 5.0, (512, 768))
        assert (p.sampler_raw, p.sampler) == ("k_lms", "LMS")
    p = _open("invokeai_sdmeta1.png")
    assert (p.model, p.version) == ("deliberateForInvoke_v08", "2.3.0")
    assert p.model_hash.startswith("56d1442a0feefd64")


def test_invokeai_v3_metadata():
    p = _open("invokeai_imeta1.png")
    assert p.prompt == "digital artwork, oil painting. painterly brushstrokes, holidays,"
    assert p.negative_prompt.startswith("grainy+, photo, oversaturated")
    assert (p.seed, p.steps, p.cfg, p.size, p.sampler) == (3293022630, 35, 8.0, (1024, 1024),
                                                           "Euler")
    assert p.model == "juggernautXL" and "ipAdapters" in p.extra


def test_novelai_v3():
    p = _open("novelai1_cropped.png")
    assert (p.source, p.prompt) == ("novelai", "masterpiece, best quality,  cat, space, icon")
    assert p.negative_prompt.startswith("lowres, bad anatomy, bad hands")
    assert (p.seed, p.steps, p.cfg, p.sampler) == (2253955223, 50, 10.0, "Euler a")
    assert p.model == "Stable Diffusion 1D44365E"
    assert p.size == (1, 1)  # the JSON has no size: the image's own (cropped by sd-parsers)


# ---------------------------------------------------------------- hand-written samples


def test_comfyui_sdxl_lora_chain_primitive_seed_and_clip_skip():
    p = _read(samples.comfy_sdxl_loras(), None)
    assert (p.prompt, p.negative_prompt) == ("a lighthouse at dusk, volumetric light",
                                             "blurry, lowres")
    assert (p.seed, p.steps, p.cfg, p.sampler, p.size) == (918273645, 30, 6.5, "DPM++ 2M Karras",
                                                           (832, 1216))
    assert p.model == "juggernautXL_v9" and p.clip_skip == 2
    assert (p.extra["prompt_l"], p.extra["vae"]) == ("film photo, 35mm", "sdxl_vae.safetensors")
    assert [(lo.name, lo.weight) for lo in p.loras] == [("add-detail-xl", 0.8), ("film_grain", 0.35)]


def test_comfyui_pixel_space_second_pass_is_a_hires_pass():
    p = _read(samples.comfy_pixel_upscale_two_pass(), None)
    assert (p.seed, p.steps, p.sampler, p.size, p.prompt) == (1234, 20, "DPM++ 2M Karras",
                                                              (512, 512), "a mountain lake")
    assert (p.hires.steps, p.hires.denoise, p.hires.scale, p.hires.upscaler) == (
        12, 0.4, 2.0, "4x-UltraSharp.pth")  # 4x by the model, then halved
    assert p.strength is None  # the VAEEncode belongs to the hires pass, not an img2img input


def test_comfyui_sampler_custom_advanced():
    p = _read(samples.comfy_sampler_custom_advanced(), None)
    assert (p.prompt, p.seed, p.steps, p.cfg) == ("a red fox in snow, photo", 424242, 24, 1.0)
    assert (p.sampler_raw, p.scheduler, p.sampler) == ("euler", "simple", "Euler")
    assert (p.size, p.model, p.extra["guidance"]) == ((1024, 768), "flux1-dev", "3.5")


def test_comfyui_ui_workflow_only_with_reroute_and_primitive():
    p = _read(samples.comfy_workflow_only(), None)
    assert (p.prompt, p.negative_prompt) == ("a cozy cabin in the woods, watercolor",
                                             "ugly, deformed")
    assert (p.seed, p.steps, p.cfg, p.sampler, p.size, p.model) == (
        5551234, 25, 7.5, "Euler a", (512, 768), "dreamshaper_8")


def test_comfyui_efficiency_nodes():
    p = _read(samples.comfy_efficiency(), None)
    assert (p.prompt, p.negative_prompt) == ("portrait of an old sailor, detailed skin",
                                             "cartoon, painting")
    assert (p.seed, p.steps, p.cfg, p.sampler, p.size) == (77, 28, 5.0, "DPM++ SDE Karras",
                                                           (512, 640))
    assert (p.model, p.clip_skip) == ("realisticVision_v51", 2)
    assert [(lo.name, lo.weight) for lo in p.loras] == [("epiNoiseoffset_v2", 0.6)]


def test_comfyui_rgthree_nodes():
    p = _read(samples.comfy_rgthree_power_lora(), None)
    assert (p.seed, p.size, p.model) == (31337, (896, 1152), "ponyV6")
    assert [(lo.name, lo.weight) for lo in p.loras] == [("detail_slider", 1.5)]  # lora_2 is off


def test_comfy_image_saver_text_wins_and_graph_fills_in():
    p = _read(samples.comfy_image_saver(), None)
    assert (p.source, p.model_hash, p.sampler) == ("comfyui", "1a2b3c4d5e", "DPM++ 2M Karras")
    assert [lo.name for lo in p.loras] == ["add-detail-xl", "film_grain"]  # from the graph


def test_comfyui_link_cycles_end():
    p = _read(samples.comfy_cycle(), None)
    assert p.steps == 10 and p.seed is None and p.prompt == ""


def test_invokeai_v4_and_graph():
    p = _read(samples.invokeai_v4(), None)
    assert (p.prompt, p.negative_prompt, p.seed, p.steps, p.cfg, p.size) == (
        "a glass teapot, studio light", "fingerprints", 123456789, 40, 6.0, (768, 512))
    assert (p.sampler_raw, p.sampler) == ("dpmpp_2m_k", "DPM++ 2M Karras")
    assert (p.model, p.model_hash, p.version) == ("Deliberate v6", "blake3:9b5f2d", "4.2.9")
    assert [(lo.name, lo.weight) for lo in p.loras] == [("more_details", 0.65)]
    g = _read(samples.invokeai_graph_only(), None)
    assert (g.prompt, g.negative_prompt, g.seed, g.steps, g.cfg, g.sampler, g.model) == (
        "a paper boat", "text", 99, 30, 7.5, "Euler a", "sd-1.5")


def test_swarmui():
    p = _read(samples.swarmui(), None)
    assert (p.source, p.prompt, p.seed, p.steps, p.cfg, p.size) == (
        "swarmui", "A Close-Up photograph of a 25 year old Asian woman", 305223794, 25, 1.0,
        (1024, 1024))
    assert (p.sampler, p.model, p.version) == ("Euler", "flux1-dev-fp8", "0.9.1.1")
    assert p.model_hash.startswith("0x8e91b680") and p.loras[0].weight == 0.8
    assert p.extra["vae"] == "ae.sft"


def test_fooocus_a1111_scheme_and_novelai_v4():
    f = _read(samples.fooocus_a1111_scheme(), None)
    assert (f.source, f.sampler, f.size, f.seed, f.version) == (
        "fooocus", "DPM++ 2M SDE Karras", (1152, 896), 1830000000, "Fooocus v2.5.0")
    n = _read(samples.novelai_v4(), None)
    assert (n.prompt, n.negative_prompt, n.seed, n.steps, n.cfg) == (
        "1girl, reading a book, library, best quality", "lowres, bad anatomy", 3344556677, 28, 5.0)
    assert (n.sampler, n.size, n.model) == ("DPM++ 2M Karras", (832, 1216),
                                            "NovelAI Diffusion V4 4F49EC75")


def test_stability_matrix_drawthings_easydiffusion():
    s = _read(samples.stability_matrix(), None)
    assert (s.source, s.prompt, s.seed, s.sampler, s.model, s.model_hash) == (
        "stability_matrix", "a neon city street in rain", 20240607, "DPM++ 2M Karras",
        "sd_xl_base_1.0", "31e35c80fc")
    d = _read(samples.drawthings(), None)
    assert (d.source, d.prompt, d.negative_prompt, d.seed, d.steps, d.cfg, d.size) == (
        "drawthings", "a bowl of ramen, top view", "blurry", 1029384756, 20, 4.5, (640, 896))
    assert (d.sampler, d.model, d.loras[0].name) == ("DPM++ 2M Karras", "sd_xl_base_1.0_f16",
                                                     "foodphoto_lora_f16")
    for e in (_read(samples.easydiffusion_keys(), None),
              _read(samples.easydiffusion_labels(), None)):
        assert e.source == "easydiffusion" and e.seed is not None and e.steps and e.cfg
    e = _read(samples.easydiffusion_keys(), None)
    assert (e.prompt, e.seed, e.steps, e.cfg, e.sampler, e.size, e.model) == (
        "a snowy owl, macro", 8675309, 35, 7.5, "DPM++ 2M", (512, 704), "sd-v1-5-inpainting")


def test_our_own_png_reads_as_sdstudio(tmp_path):
    req = GenerationRequest(prompt="a fox", negative_prompt="rain", seed=5, steps=12,
                            scheduler="DPM++ 2M Karras", width=64, height=48)
    path = metadata.write_png(tmp_path / "x.png", Image.new("RGB", (64, 48)), req, 5)
    with Image.open(path) as im:
        p = read_metadata(image_chunks(im), im.size)
    assert (p.source, p.prompt, p.negative_prompt, p.seed, p.steps, p.sampler, p.size) == (
        "sdstudio", "a fox", "rain", 5, 12, "DPM++ 2M Karras", (64, 48))


# ---------------------------------------------------------------- JPEG / WebP / XMP files


def _exif_with_comment(text: str, *, little_endian: bool = False) -> Image.Exif:
    exif = Image.Exif()
    body = text.encode("utf-16-le" if little_endian else "utf-16-be")
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + body
    return exif


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_swarmui_and_fooocus_json_in_exif(tmp_path, fmt):
    fooocus = json.dumps({"prompt": "p", "seed": "1", "steps": 2, "resolution": "(64, 32)",
                          "version": "Fooocus v2.5.0", "sampler": "euler", "scheduler": "karras"})
    for text, source in ((samples.swarmui()["parameters"], "swarmui"), (fooocus, "fooocus")):
        path = tmp_path / f"x.{fmt.lower()}"
        Image.new("RGB", (32, 32)).save(path, fmt, exif=_exif_with_comment(text))
        with Image.open(path) as im:
            p = read_metadata(image_chunks(im), im.size)
        assert p is not None and p.source == source


def test_little_endian_user_comment(tmp_path):
    text = "a cat\nSteps: 4, Sampler: Euler, CFG scale: 3, Seed: 9, Size: 32x32"
    path = tmp_path / "x.jpg"
    Image.new("RGB", (32, 32)).save(path, exif=_exif_with_comment(text, little_endian=True))
    with Image.open(path) as im:
        p = read_metadata(image_chunks(im), im.size)
    assert (p.prompt, p.seed, p.steps) == ("a cat", 9, 4)


def test_drawthings_xmp_in_png_itxt(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", samples.drawthings()["XML:com.adobe.xmp"])
    path = tmp_path / "dt.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    with Image.open(path) as im:
        p = read_metadata(image_chunks(im), im.size)
    assert p.source == "drawthings" and p.seed == 1029384756


def test_novelai_stealth_alpha(tmp_path):
    """NovelAI's stealth format: gzip of its chunks as JSON, in the alpha LSBs, column-major."""
    import gzip

    import numpy as np

    payload = gzip.compress(json.dumps(samples.novelai_v4()).encode())
    bits = np.unpackbits(np.frombuffer(
        b"stealth_pngcomp" + (len(payload) * 8).to_bytes(4, "big") + payload, dtype=np.uint8))
    w, h = 64, (bits.size // 64) + 1
    alpha = np.full(w * h, 254, dtype=np.uint8)
    alpha[: bits.size] |= bits
    rgba = np.zeros((h, w, 4), dtype=np.uint8)
    rgba[..., 3] = alpha.reshape(w, h).T  # column by column
    path = tmp_path / "nai.png"
    Image.fromarray(rgba, "RGBA").save(path)
    with Image.open(path) as im:
        p = read_metadata(image_chunks(im, stealth=True), im.size)
    assert (p.source, p.seed, p.sampler) == ("novelai", 3344556677, "DPM++ 2M Karras")


# ---------------------------------------------------------------- samplers and reuse


@pytest.mark.parametrize(("sampler", "scheduler", "expected"), [
    ("euler_ancestral", "normal", "Euler a"), ("dpmpp_2m", "karras", "DPM++ 2M Karras"),
    ("euler", "simple", "Euler"), ("lms", "karras", "LMS Karras"), ("uni_pc_bh2", "", "UniPC"),
    ("ddim", "ddim_uniform", "DDIM"), ("dpmpp_2m_sde_gpu", "normal", "DPM++ 2M SDE"),
    ("dpm_2_ancestral", "normal", "DPM2 a"), ("k_euler_ancestral", "native", "Euler a"),
    ("lms_k", "", "LMS Karras"), ("kdpm_2_a", "", "DPM2 a"), ("dpmpp_2s", "", "DPM++ 2S"),
    ("plms", "", "PNDM"), ("deis", "", "DEIS"), ("ddpm", "", "DDPM"), ("heun", "", "Heun"),
])
def test_known_samplers_land_in_our_menu(sampler, scheduler, expected):
    name, known = sampler_display_name(sampler, scheduler)
    assert known and name == expected and name in sampler_names()
    assert menu_sampler(name) == (expected, None)


def test_unknown_samplers_kept_as_text_with_a_notice():
    assert sampler_display_name("res_multistep", "beta") == ("res_multistep beta", False)
    name, known = sampler_display_name("dpmpp_2m_sde", "karras")
    assert (name, known) == ("DPM++ 2M SDE Karras", True)
    menu, notice = menu_sampler(name)
    assert menu == "DPM++ 2M SDE" and "closest" in notice
    assert menu_sampler("res_multistep")[0] is None


def test_use_these_settings_from_comfyui():
    p = _read(samples.comfy_sdxl_loras(), None)
    request, notices = to_request(p)
    assert (request.prompt, request.negative_prompt, request.seed, request.steps) == (
        "a lighthouse at dusk, volumetric light", "blurry, lowres", 918273645, 30)
    assert (request.guidance, request.scheduler, request.width, request.height) == (
        6.5, "DPM++ 2M Karras", 832, 1216)
    assert request.model == "demo"  # another tool's checkpoint name is not a path here
    assert any("juggernautXL_v9" in n for n in notices) and any("LoRA" in n for n in notices)
    request.validate()


def test_use_these_settings_keeps_base_model_and_rounds_size():
    p = _read(samples.comfy_rgthree_power_lora(), None)
    p.width = 900
    base = GenerationRequest(prompt="old", model="/models/x.safetensors", device="cpu")
    request, notices = to_request(p, base)
    assert (request.model, request.device, request.width) == ("/models/x.safetensors", "cpu", 896)
    assert any("rounded" in n for n in notices)


def test_copy_as_a1111_text_round_trips_through_the_a1111_parser():
    p = _read(samples.comfy_efficiency(), None)
    back = metadata.parse_parameters(to_a1111_text(p))
    assert (back.prompt, back.negative_prompt, back.seed, back.steps, back.cfg) == (
        p.prompt, p.negative_prompt, p.seed, p.steps, p.cfg)
    assert (back.sampler, back.size, back.model) == (p.sampler, p.size, p.model)
    params = to_parameters(p)
    assert params.source == "comfyui" and params.seed == 77 and params.size == (512, 640)


def test_mapped_fields_per_reader_report(capsys):
    """Prints which fields each reader filled on its fixtures (for the report)."""
    rows = []
    for name in sorted(p.name for p in REAL.glob("*.*") if p.suffix in (".png", ".jpg")):
        rows.append((name, _open(name)))
    rows += [(name, _read(fn(), None)) for name, fn in samples.ALL.items()]
    for name, p in rows:
        assert p is not None, name
        print(f"{name}: {p.source}: {' '.join(p.mapped_fields())}")
