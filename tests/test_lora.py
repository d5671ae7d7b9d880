"""LoRA (kohya and diffusers files) against diffusers' load_lora_weights + set_adapters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdstudio.core.adapters.lora import is_sdxl_lora, lora_set_for, parse_lora_arg
from sdstudio.core.errors import UserError
from sdstudio.core.models import load_model
from sdstudio.core.pipeline import StableDiffusion, fresh_scheduler
from sdstudio.core.request import GenerationRequest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


def _make_lora(model_dir: Path, seed: int, scale: float) -> dict:
    """A random rank-4 LoRA on the UNet's attention and the text encoder, in diffusers' format."""
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    te = CLIPTextModel.from_pretrained(model_dir / "text_encoder")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=2, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=2, init_lora_weights=False,
                                       target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]), te)
    unet_sd = {k: v * scale for k, v in get_peft_model_state_dict(unet).items()}
    te_sd = {k: v * scale for k, v in get_peft_model_state_dict(te).items()}
    return {"unet": unet_sd, "te": te_sd}


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir, tmp_path_factory):
    """style.safetensors (diffusers format) and film.safetensors (kohya/A1111 keys)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("loras")
    for name, seed in (("style", 1), ("film", 2)):
        parts = _make_lora(Path(tiny_model_dir), seed, 0.5)
        StableDiffusionPipeline.save_lora_weights(
            str(folder), unet_lora_layers=parts["unet"], text_encoder_lora_layers=parts["te"],
            weight_name=f"{name}.safetensors",
        )
    # film in the kohya-ss layout A1111 and ComfyUI files use (CLIP keys under text_model_).
    kohya = convert_state_dict_to_kohya(load_file(str(folder / "film.safetensors")))
    kohya = {k.replace("lora_te1_", "lora_te_text_model_"): v for k, v in kohya.items()}
    assert any(k.startswith("lora_unet_") for k in kohya) and "lora_te_" in next(iter(kohya))
    save_file(kohya, str(folder / "film.safetensors"))
    return folder


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(str(tiny_model_dir), device="cpu")


def _req(m, lora_dir, **kw):
    base = dict(model=m.source, prompt="a red cat", width=32, height=32, steps=3, guidance=5.0,
                seed=1, scheduler="Euler", device="cpu", lora_dir=str(lora_dir))
    return GenerationRequest(**{**base, **kw})


def _ours(m, req):
    result = StableDiffusion(m).generate(req)
    return np.asarray(result.images[0].image, dtype=np.int16), result.notices


def _diffusers(model_dir, req, loras: dict[str, float], folder: Path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        str(model_dir), safety_checker=None, requires_safety_checker=False
    )
    pipe.scheduler = fresh_scheduler(req.scheduler, dict(pipe.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    for name in loras:
        pipe.load_lora_weights(str(folder), weight_name=f"{name}.safetensors", adapter_name=name)
    pipe.set_adapters(list(loras), list(loras.values()))
    image = pipe(
        "a red cat", num_inference_steps=req.steps, guidance_scale=req.guidance, width=32,
        height=32, generator=torch.Generator("cpu").manual_seed(req.seed),
    ).images[0]
    return np.asarray(image, dtype=np.int16)


def test_prompt_loras_match_diffusers_and_unload_to_the_base_weights(
    model, tiny_model_dir, lora_dir
):
    base_unet = {k: v.clone() for k, v in model.unet.state_dict().items()}
    base_te = {k: v.clone() for k, v in model.text_encoder.state_dict().items()}
    base_image, _ = _ours(model, _req(model, lora_dir))

    req = _req(model, lora_dir, prompt="a red cat <lora:style:0.8> <lora:film:-0.5>")
    ours, notices = _ours(model, req)
    theirs = _diffusers(tiny_model_dir, req, {"style": 0.8, "film": -0.5}, lora_dir)
    assert np.abs(ours - theirs).max() <= 1
    assert np.abs(ours - base_image).max() > 8  # the LoRAs do change the image
    assert not notices

    # Back to no LoRA: the UNet and text encoder are the base model again, exactly.
    again, _ = _ours(model, _req(model, lora_dir))
    assert np.array_equal(again, base_image)
    for module, base in ((model.unet, base_unet), (model.text_encoder, base_te)):
        state = module.state_dict()
        assert state.keys() == base.keys()
        assert all(torch.equal(state[k], base[k]) for k in base)


def test_kohya_file_gives_the_same_image_as_diffusers_loading_it(model, tiny_model_dir, lora_dir):
    req = _req(model, lora_dir, prompt="<lora:film:0.7>a red cat")
    ours, _ = _ours(model, req)
    assert np.abs(ours - _diffusers(tiny_model_dir, req, {"film": 0.7}, lora_dir)).max() <= 1


def test_changing_a_weight_reloads_nothing(model, lora_dir, monkeypatch):
    lora_set = lora_set_for(model)
    lora_set.clear()
    loads = []
    original = lora_set.pipe.load_lora_weights
    monkeypatch.setattr(lora_set.pipe, "load_lora_weights",
                        lambda *a, **kw: loads.append(kw["adapter_name"]) or original(*a, **kw))
    first, _ = _ours(model, _req(model, lora_dir, prompt="a red cat <lora:style:1>"))
    second, _ = _ours(model, _req(model, lora_dir, prompt="a red cat <lora:style:0.3>"))
    via_cli, _ = _ours(model, _req(model, lora_dir, loras=(str(lora_dir / "style.safetensors:0.3"),)))
    assert len(loads) == 1
    assert np.abs(first - second).max() > 0 and np.array_equal(second, via_cli)
    lora_set.clear()


def test_missing_lora_is_a_notice_and_bad_files_one_sentence(model, lora_dir, tmp_path):
    _, notices = _ours(model, _req(model, lora_dir, prompt="a cat <lora:nowhere:1>"))
    assert any("LoRA 'nowhere' was not found" in n for n in notices)
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="broken.safetensors is not a valid .safetensors"):
        _ours(model, _req(model, tmp_path, prompt="a cat <lora:broken:1>"))
    with pytest.raises(UserError, match="no number as its weight"):
        _ours(model, _req(model, lora_dir, prompt="a cat <lora:style:strong>"))


def test_lora_for_another_family_is_refused_by_name(model, lora_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(lora_dir / "film.safetensors"))
    state["lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = torch.zeros(4, 32)
    assert is_sdxl_lora(state)
    save_file(state, str(tmp_path / "xl.safetensors"))
    with pytest.raises(UserError, match="LoRA xl is made for SDXL models; this model is SD 1.x/2.x"):
        _ours(model, _req(model, tmp_path, prompt="a cat <lora:xl>"))
    # a file whose shapes fit no layer: one sentence, and the model is left clean
    bad = {k: torch.zeros(3, 5) if k.endswith("lora_down.weight") else v for k, v in
           load_file(str(lora_dir / "film.safetensors")).items()}
    save_file(bad, str(tmp_path / "odd.safetensors"))
    with pytest.raises(UserError, match="LoRA odd does not fit this model"):
        _ours(model, _req(model, tmp_path, prompt="a cat <lora:odd>"))
    assert not lora_set_for(model).loaded


def test_lycoris_files_are_named_not_misread(model, tmp_path):
    from safetensors.torch import save_file

    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    save_file({f"{key}.hada_w1_a": torch.zeros(32, 4), f"{key}.hada_w1_b": torch.zeros(4, 32),
               f"{key}.alpha": torch.tensor(4.0)}, str(tmp_path / "soft.safetensors"))
    with pytest.raises(UserError, match="LoRA soft is a LyCORIS LoHa file"):
        _ours(model, _req(model, tmp_path, prompt="a cat <lora:soft:1>"))


def test_lora_arg_parsing():
    assert parse_lora_arg("a/b.safetensors:0.5").weight == 0.5
    assert parse_lora_arg("a/b.safetensors").weight == 1.0
    assert parse_lora_arg("C:\\loras\\b.safetensors:-1").weight == -1.0
    assert parse_lora_arg("C:\\loras\\b.safetensors").path.name.endswith("b.safetensors")


def test_cli_lora_options_and_tags(capsys, tiny_model_dir, lora_dir, tmp_path):
    from sdstudio.cli import main

    common = ["generate", "--model", str(tiny_model_dir), "--steps", "2", "--device", "cpu",
              "--width", "32", "--height", "32", "--seed", "1", "--scheduler", "Euler"]
    code = main([*common, "a red cat <lora:style:0.5> <lora:gone>", "--lora-dir", str(lora_dir),
                 "--out", str(tmp_path / "a")])
    out, err = capsys.readouterr()
    assert code == 0 and "LoRA 'gone' was not found" in err
    code = main([*common, "a red cat", "--lora", f"{lora_dir / 'style.safetensors'}:0.5",
                 "--out", str(tmp_path / "b")])
    assert code == 0
    a, b = (np.asarray(Image.open(next((tmp_path / d).glob("*.png")))) for d in ("a", "b"))
    assert np.array_equal(a, b)  # the tag and --lora are the same LoRA at the same weight
    code = main([*common, "a cat", "--clip-skip", "0", "--out", str(tmp_path / "c")])
    assert code == 2 and "Clip skip must be a whole number from 1 to 12" in capsys.readouterr().err


def test_lora_hashes_for_the_infotext(model, lora_dir):
    from sdstudio.core.adapters.apply import infotext_for
    from sdstudio.core.models.hashing import sha256_file

    req = _req(model, lora_dir, prompt="a cat <lora:style:0.5> <lora:gone:1>")
    assert infotext_for(req) == {
        "Lora hashes": f"style: {sha256_file(lora_dir / 'style.safetensors')[:12]}"
    }
