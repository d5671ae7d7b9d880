"""PNG metadata: A1111 `parameters` text, our `sdstudio` chunk, ComfyUI and InvokeAI chunks."""

from __future__ import annotations

import errno
import json
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from sdstudio.core import atomic
from sdstudio.core.errors import UserError
from sdstudio.core.png import (
    MetadataError,
    a1111,
    format_parameters,
    io,
    parse_parameters,
    read_png,
)
from sdstudio.core.request import GenerationRequest
from sdstudio.core.schedulers import sampler_names

A1111_SAMPLE = (
    "masterpiece, best quality, (1girl:1.2)\n"
    "standing in the rain\n"
    "Negative prompt: lowres, bad anatomy\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, "
    "Size: 512x768, Model hash: 7f96a1a9ca, Model: anything-v5, Denoising strength: 0.5, "
    'Clip skip: 2, Lora hashes: "add_detail: 7c6bad76eb54, more: 0123", Version: v1.9.4'
)


def _png(tmp_path, name="x.png", **chunks: str):
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    path = tmp_path / name
    Image.new("RGB", (16, 8), "blue").save(path, pnginfo=info)
    return path


# ---------------------------------------------------------------- writing the A1111 text


def test_format_matches_a1111_layout():
    req = GenerationRequest(prompt="a cat\non a mat", negative_prompt="blurry", seed=5,
                            steps=20, guidance=7.0, scheduler="Euler a", width=512, height=768,
                            model="/models/sd-v1-5.safetensors")
    text = format_parameters(req, 123, model_hash="0123456789abcdef")
    assert text == (
        "a cat\non a mat\nNegative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x768, "
        f"Model hash: 0123456789, Model: sd-v1-5, Version: {a1111.VERSION}"
    )


def test_negative_prompt_omitted_when_empty_and_karras_schedule_type():
    req = GenerationRequest(prompt="p", scheduler="DPM++ 2M Karras", guidance=7.5)
    text = format_parameters(req, 1)
    assert "Negative prompt" not in text
    assert text.splitlines()[1].startswith(
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 1, ")


def test_img2img_writes_denoising_strength_after_model():
    req = GenerationRequest(prompt="p", init_image="in.png", strength=0.6)
    last = format_parameters(req, 1).splitlines()[-1]
    assert "Model: demo, Denoising strength: 0.6, Version:" in last


def test_values_with_comma_colon_newline_are_json_strings():
    req = GenerationRequest(prompt="p", model="/m/weird, name: v2\n.safetensors")
    last = format_parameters(req, 1).splitlines()[-1]
    assert 'Model: "weird, name: v2\\n"' in last
    assert parse_parameters(format_parameters(req, 1)).model == "weird, name: v2\n"


# ---------------------------------------------------------------- reading A1111 text


def test_parse_a1111_sample():
    p = parse_parameters(A1111_SAMPLE)
    assert p.prompt == "masterpiece, best quality, (1girl:1.2)\nstanding in the rain"
    assert p.negative_prompt == "lowres, bad anatomy"
    assert (p.steps, p.seed, p.cfg, p.size, p.model) == (28, 1234567890, 7.0, (512, 768),
                                                        "anything-v5")
    assert p.sampler == "DPM++ 2M Karras"
    assert p.settings["Lora hashes"] == "add_detail: 7c6bad76eb54, more: 0123"
    assert p.settings["Version"] == "v1.9.4"
    req = p.to_request()
    assert req.scheduler == "DPM++ 2M Karras" and req.strength == 0.5 and req.guidance == 7.0
    assert (req.width, req.height, req.seed, req.steps) == (512, 768, 1234567890, 28)


def test_parse_old_a1111_without_negative_and_with_windows_newlines():
    p = parse_parameters("a house\r\nSteps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 9, "
                         "Size: 512x512, Model hash: abc\r\n")
    assert p.prompt.strip() == "a house" and p.negative_prompt == ""
    assert p.seed == 9 and p.cfg == 7.0


def test_parse_prompt_only_text():
    p = parse_parameters("just a prompt, with: colons")
    assert p.prompt == "just a prompt, with: colons" and p.settings == {}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parser_raises_nothing_but_parse_errors(text):
    try:
        parse_parameters(text)
    except MetadataError:
        pass


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=12,
).map(json.dumps)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["sdstudio", "prompt", "invokeai_metadata", "parameters"]),
       value=st.one_of(JSONISH, st.text(max_size=40)))
def test_other_chunks_raise_nothing_but_parse_errors(key, value):
    try:
        io.parameters_from_info({key: value})
    except MetadataError:
        pass


# Prompts as users type them: unicode, commas, colons, quotes, brackets, newlines, tabs.
PROMPT_CHARS = st.characters(blacklist_categories=("Cs",))
PIECES = st.one_of(PROMPT_CHARS, st.sampled_from(
    list(',:"\'\n()[]{}\\ ') + ["Steps: 1, ", "Seed: 2, Size: 8x8", "é", "猫", "\r\n"]))
PROMPT = st.lists(PIECES, max_size=40).map("".join)


def _representable(text: str) -> bool:
    """A prompt line that starts like the negative-prompt marker cannot be told apart (in A1111
    either); our `sdstudio` chunk keeps those exact."""
    return not any(line.startswith(a1111.NEGATIVE_MARKER) for line in text.split("\n"))


@settings(max_examples=300, deadline=None)
@given(prompt=PROMPT, negative=PROMPT, seed=st.integers(0, 2**63 - 1),
       steps=st.integers(1, 150), cfg=st.floats(0, 30, allow_nan=False),
       sampler=st.sampled_from(sampler_names()), model=PROMPT)
def test_text_round_trip(prompt, negative, seed, steps, cfg, sampler, model):
    assume(_representable(prompt) and _representable(negative))
    model = model.strip() or "demo"  # A1111 strips values; ours never have outer spaces
    assume(a1111.model_name(model) == a1111.model_name(model).strip())
    req = GenerationRequest(prompt=prompt, negative_prompt=negative, steps=steps, guidance=cfg,
                            scheduler=sampler, model=model)
    p = parse_parameters(format_parameters(req, seed))
    assert (p.prompt, p.negative_prompt) == (prompt, negative)
    assert (p.seed, p.steps, p.cfg, p.sampler) == (seed, steps, cfg, sampler)
    assert p.model == a1111.model_name(req.model)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=PROMPT, negative=PROMPT, seed=st.integers(0, 2**63 - 1),
       sampler=st.sampled_from(sampler_names()),
       size=st.tuples(st.integers(1, 128), st.integers(1, 128)).map(lambda t: (t[0] * 8, t[1] * 8)))
def test_png_round_trip_is_exact(tmp_path, prompt, negative, seed, sampler, size):
    req = GenerationRequest(prompt=prompt, negative_prompt=negative, seed=seed, scheduler=sampler,
                            width=size[0], height=size[1], guidance=6.25)
    path = io.write_png(tmp_path / "r.png", Image.new("RGB", (8, 8)), req, seed)
    p = read_png(path)
    assert p is not None and p.source == "sdstudio"
    assert p.to_request() == req
    assert p.prompt == prompt and p.negative_prompt == negative


# ---------------------------------------------------------------- PNG files


def test_write_png_chunks_and_record(tmp_path):
    req = GenerationRequest(prompt="ünïcødé, 猫: \"q\"", negative_prompt="x", seed=3)
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    req = GenerationRequest(prompt=req.prompt, negative_prompt="x", seed=3, model=str(model))
    out = io.write_png(tmp_path / "a.png", Image.new("RGB", (8, 8)), req, 3,
                             {"device": "cpu", "dtype": "fp32", "scheduler_config": {"a": 1}})
    with Image.open(out) as im:
        assert im.text["parameters"].startswith(req.prompt + "\nNegative prompt: x\nSteps: 20")
        ours = json.loads(im.text["sdstudio"])
    rec = ours["record"]
    assert rec["device"] == "cpu" and rec["scheduler_config"] == {"a": 1}
    assert len(rec["model_sha256"]) == 64 and "diffusers" in rec["versions"]
    assert f"Model hash: {rec['model_sha256'][:10]}" in im.text["parameters"]
    assert not list(tmp_path.glob(".sdstudio-*"))


def test_batch_image_keeps_its_own_seed(tmp_path):
    req = GenerationRequest(prompt="p", seed=10, batch_size=4)
    out = io.write_png(tmp_path / "b.png", Image.new("RGB", (8, 8)), req, 12)
    again = read_png(out).to_request()
    assert again.seed == 12 and again.batch_size == 1


def test_read_foreign_a1111_png(tmp_path):
    p = read_png(_png(tmp_path, parameters=A1111_SAMPLE))
    assert p.source == "a1111" and p.seed == 1234567890


def test_read_comfyui_png(tmp_path):
    graph = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 156680208700286, "steps": 20, "cfg": 8.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
            "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    }
    p = read_png(_png(tmp_path, prompt=json.dumps(graph), workflow="{}"))
    assert p.source == "comfyui"
    assert (p.prompt, p.negative_prompt) == ("beautiful scenery", "text, watermark")
    assert (p.seed, p.steps, p.cfg, p.size, p.model) == (156680208700286, 20, 8.0, (512, 640),
                                                        "v1-5-pruned-emaonly")
    assert p.settings["Sampler"] == "Euler"  # ComfyUI's "euler" + "normal", as our menu names it


def test_read_invokeai_png(tmp_path):
    meta = {"generation_mode": "txt2img", "positive_prompt": "a cat", "negative_prompt": "dog",
            "width": 512, "height": 512, "seed": 42, "cfg_scale": 7.5, "steps": 30,
            "scheduler": "euler", "model": {"key": "k", "name": "sd-1.5", "base": "sd-1"}}
    p = read_png(_png(tmp_path, invokeai_metadata=json.dumps(meta)))
    assert p.source == "invokeai"
    assert (p.prompt, p.negative_prompt, p.seed, p.steps, p.cfg, p.size, p.model) == (
        "a cat", "dog", 42, 30, 7.5, (512, 512), "sd-1.5")


# ---------------------------------------------------------------- bad input


def test_png_without_metadata_gives_none(tmp_path):
    assert read_png(_png(tmp_path)) is None


@pytest.mark.parametrize("content, words", [
    (b"hello, I am text", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10, "damaged"),
    (b"", "not an image"),
])
def test_bad_files_give_one_sentence(tmp_path, content, words):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(MetadataError) as err:
        read_png(path)
    assert words in str(err.value) and "bad.png" in str(err.value)
    assert "\n" not in str(err.value)


def test_jpeg_gif_and_missing_file(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    assert read_png(tmp_path / "a.jpg") is None  # a JPEG without EXIF parameters
    Image.new("RGB", (8, 8)).save(tmp_path / "a.gif")
    with pytest.raises(MetadataError, match="GIF image, not a PNG"):
        read_png(tmp_path / "a.gif")
    with pytest.raises(MetadataError, match="does not exist"):
        read_png(tmp_path / "nope.png")


def test_damaged_sdstudio_chunk_falls_back_to_text(tmp_path):
    p = read_png(_png(tmp_path, parameters=A1111_SAMPLE, sdstudio="{not json"))
    assert p.source == "a1111" and p.seed == 1234567890


def test_disk_full_is_one_sentence_and_leaves_nothing(tmp_path, monkeypatch):
    req = GenerationRequest(prompt="p")
    keep = io.write_png(tmp_path / "keep.png", Image.new("RGB", (8, 8)), req, 1)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(UserError, match="is full") as err:
        io.write_png(tmp_path / "new.png", Image.new("RGB", (8, 8)), req, 2)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]
    assert read_png(keep).seed == 1


def test_read_only_folder_is_one_sentence(tmp_path, monkeypatch):
    def denied(*a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    with pytest.raises(UserError, match="is read-only"):
        io.write_png(tmp_path / "x.png", Image.new("RGB", (8, 8)), GenerationRequest("p"), 1)
    assert not list(tmp_path.iterdir())


def test_model_name_rules():
    assert a1111.model_name("demo") == "demo"
    assert a1111.model_name("runwayml/stable-diffusion-v1-5") == "runwayml/stable-diffusion-v1-5"
    assert a1111.model_name("/x/y/dream.safetensors") == "dream"
    assert set(a1111.quote("a, b")) >= set(string.ascii_letters[:2])


def test_clip_skip_and_lora_hashes_are_written_and_clip_skip_read_back(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"lora_unet_x.lora_down.weight": torch.zeros(1, 1)},
              str(tmp_path / "style.safetensors"))
    req = GenerationRequest(prompt="a cat <lora:style:0.8>", clip_skip=2, lora_dir=str(tmp_path))
    text = format_parameters(req, 3)
    assert "Clip skip: 2" in text
    assert 'Lora hashes: "style: ' in text  # A1111 quotes the list (it holds a colon)
    plain = format_parameters(GenerationRequest(prompt="a cat"), 3)
    assert "Clip skip" not in plain and "Lora hashes" not in plain
    back = parse_parameters(text).to_request()
    assert back.clip_skip == 2 and back.prompt == req.prompt
