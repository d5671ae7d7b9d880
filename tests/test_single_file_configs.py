"""The config folders shipped for single files: what diffusers derives from the original
configs, the published model sizes, and tokenizers that tokenize as CLIP/OpenCLIP do."""

from __future__ import annotations

import importlib.util
import json

import pytest

from sdstudio.core.models.single_file import KINDS, clip_tokenizer_folder, config_folder
from sdstudio.core.paths import RESOURCES, resources_dir

FOLDERS = sorted({k.config for k in KINDS.values()} | {"sd2-v"})


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_single_file_configs", RESOURCES.parent / "benchmarks" / "build_single_file_configs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_configs_are_what_the_original_configs_give():
    expected = _builder().folders()
    assert sorted(expected) == FOLDERS
    for name, files in expected.items():
        for rel, content in files.items():
            shipped = json.loads((resources_dir() / "configs" / name / rel).read_text("utf-8"))
            assert shipped == content, f"{name}/{rel}"


# Parameter counts of the released models (diffusers folders on the hub).
SIZES = {
    "sd15": (859_520_964, 123_060_480, None), "sd15-inpainting": (859_535_364, 123_060_480, None),
    "sd2": (865_910_724, 340_387_840, None), "sd2-v": (865_910_724, 340_387_840, None),
    "sdxl-base": (2_567_463_684, 123_060_480, 694_659_840),
    "sdxl-inpainting": (2_567_478_084, 123_060_480, 694_659_840),
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_configs_build_the_published_model_sizes(name):
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    root = resources_dir() / "configs" / name

    def count(model):
        return sum(p.numel() for p in model.parameters())

    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(json.loads((root / "unet/config.json").read_text()))
        vae = AutoencoderKL.from_config(json.loads((root / "vae/config.json").read_text()))
        te = CLIPTextModel(CLIPTextConfig.from_pretrained(str(root / "text_encoder")))
        te2 = None
        if (root / "text_encoder_2").is_dir():
            te2 = CLIPTextModelWithProjection(
                CLIPTextConfig.from_pretrained(str(root / "text_encoder_2")))
        sizes = (count(unet), count(te), count(te2) if te2 else None)
    assert count(vae) == 83_653_863
    assert sizes == SIZES[name]


def test_native_sizes():
    for kind in KINDS.values():
        unet = json.loads((config_folder(kind) / "unet" / "config.json").read_text())
        native = unet["sample_size"] * 8
        assert native == {"sd1": 512, "sd2": 512, "sdxl": 1024}[kind.family], kind
    sd2v = json.loads((resources_dir() / "configs/sd2-v/unet/config.json").read_text())
    assert sd2v["sample_size"] * 8 == 768 and sd2v["upcast_attention"] is True


def test_clip_tokenizer():
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(clip_tokenizer_folder()))
    assert len(tok) == 49408
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    open_clip = CLIPTokenizer.from_pretrained(str(clip_tokenizer_folder()), pad_token="!")
    assert open_clip.pad_token_id == 0  # OpenCLIP pads with "!" (id 0)
    padded = open_clip("a cat", padding="max_length", max_length=6).input_ids
    assert padded == [49406, 320, 2368, 49407, 0, 0]
