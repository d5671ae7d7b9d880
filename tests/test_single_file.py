"""Single-file checkpoints: built from tiny diffusers models with diffusers' own key maps, loaded
back through our loader, compared with the folder they came from and with diffusers'
`from_single_file`."""

from __future__ import annotations

import pytest
import torch

from sdstudio.core.errors import ModelLoadError
from sdstudio.core.models import load_model
from sdstudio.core.models.single_file import (
    KINDS,
    detect_kind,
    guess_prediction,
    load_single_file,
    shapes_of,
)
from sdstudio.testing.single_files import write_single_file


def _same_weights(a, b, cast=None):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k, v in sa.items():
        ref = v.to(cast).to(v.dtype) if cast is not None else v
        assert torch.equal(ref, sb[k].to(v.dtype)), k


@pytest.fixture(scope="module")
def sd1_file(tiny_model_dir, tmp_path_factory):
    return write_single_file(tiny_model_dir, tmp_path_factory.mktemp("sf") / "tiny.safetensors")


@pytest.mark.parametrize("variant", ["plain", "legacy_text", "fp16", "bf16", "ckpt"])
def test_sd1_single_file_has_the_folders_weights(tiny_model_dir, tmp_path, variant):
    """Every layout and dtype gives back the folder's weights (fp16/bf16: rounded once)."""
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(variant)
    name = "tiny.ckpt" if variant == "ckpt" else "tiny.safetensors"
    f = write_single_file(tiny_model_dir, tmp_path / name, dtype=dtype,
                          legacy_text=variant == "legacy_text")
    folder = load_model(str(tiny_model_dir), device="cpu")
    single = load_model(str(f), device="cpu", config=str(tiny_model_dir))
    assert single.unet.dtype == single.vae.dtype == single.text_encoder.dtype == torch.float32
    for part in ("unet", "vae", "text_encoder"):
        _same_weights(getattr(folder, part), getattr(single, part), cast=dtype)
    from sdstudio.core.models import hashing

    assert hashing.sha256(f) == hashing.sha256_file(f)  # waits for the background hash
    import time

    for _ in range(100):  # the loaded model learns its hash when the background job ends
        if single.sha256:
            break
        time.sleep(0.01)
    assert single.sha256 == hashing.sha256_file(f)
    assert single.scheduler_config["prediction_type"] == "epsilon"


def test_sd1_single_file_same_pixels_as_its_folder(tiny_model_dir, sd1_file):
    from sdstudio.core.pipeline import StableDiffusion
    from sdstudio.core.request import GenerationRequest

    req = GenerationRequest(prompt="a red circle", steps=3, width=32, height=32, seed=5,
                            device="cpu", batch_size=2).validate()
    imgs = []
    for model in (load_model(str(tiny_model_dir), device="cpu"),
                  load_model(str(sd1_file), device="cpu", config=str(tiny_model_dir))):
        imgs.append(StableDiffusion(model).generate(req).images)
    import numpy as np

    for a, b in zip(*imgs, strict=True):
        diff = np.abs(np.asarray(a.image, dtype=np.int16) - np.asarray(b.image, dtype=np.int16)).max()
        assert diff <= 1


def test_sd1_matches_diffusers_from_single_file(tiny_model_dir, sd1_file):
    """Our components are the ones diffusers' StableDiffusionPipeline.from_single_file builds."""
    from diffusers import StableDiffusionPipeline

    ref = StableDiffusionPipeline.from_single_file(
        str(sd1_file), config=str(tiny_model_dir), local_files_only=True, safety_checker=None,
        requires_safety_checker=False,
    )
    ours = load_single_file(sd1_file, config=tiny_model_dir).components
    for part in ("unet", "vae", "text_encoder"):
        _same_weights(getattr(ref, part), ours[part])
    assert ours["tokenizer"]("a red circle").input_ids == ref.tokenizer("a red circle").input_ids


def test_sd1_inpainting_single_file(tiny_inpaint_model_dir, tmp_path):
    f = write_single_file(tiny_inpaint_model_dir, tmp_path / "inpaint.safetensors")
    m = load_model(str(f), device="cpu", config=str(tiny_inpaint_model_dir))
    assert m.is_inpainting
    assert load_single_file(f, config=tiny_inpaint_model_dir).kind == KINDS["inpainting"]


# --- SD 2.x and SDXL: tiny models with the widths and depths diffusers' detection keys need ---

def _unet(**kw):
    from diffusers import UNet2DConditionModel

    base = dict(sample_size=4, block_out_channels=(32, 64), layers_per_block=2, out_channels=4,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=32,
                attention_head_dim=(2, 4), use_linear_projection=True, in_channels=4)
    return UNet2DConditionModel(**{**base, **kw})


def _text(hidden, layers, proj=False, act="gelu"):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(vocab_size=1000, hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, hidden_act=act,
                         max_position_embeddings=77, projection_dim=hidden,
                         bos_token_id=998, eos_token_id=999, pad_token_id=999)
    return (CLIPTextModelWithProjection if proj else CLIPTextModel)(cfg)


def _vae():
    from sdstudio.testing.tiny_models import TINY, _vae

    return _vae(TINY)


def _tokenizer(path):
    from transformers import CLIPTokenizer

    from sdstudio.testing.tiny_models import write_tokenizer

    return CLIPTokenizer.from_pretrained(str(write_tokenizer(path)))


@pytest.fixture(scope="module")
def tiny_sd2_dir(tmp_path_factory):
    """SD 2.x-shaped: OpenCLIP-H width (1024) so diffusers' v2 key has its real shape."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    from sdstudio.testing.tiny_models import SD_SCHEDULER_CONFIG

    root = tmp_path_factory.mktemp("sd2") / "tiny-sd2"
    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        unet=_unet(cross_attention_dim=1024), vae=_vae(), text_encoder=_text(1024, 1),
        tokenizer=_tokenizer(root / "tok"),
        scheduler=PNDMScheduler.from_config({**SD_SCHEDULER_CONFIG,
                                             "prediction_type": "v_prediction"}),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(root))
    return root


def _xl_pipe(root, refiner=False, in_channels=4):
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    torch.manual_seed(0)
    # widths differ (as 768 vs 1280 do) and enc2 has the 10 layers diffusers' xl key needs:
    # diffusers tells the two encoders apart by the width of their position embeddings
    enc1, enc2 = _text(32, 2, act="quick_gelu"), _text(48, 10, proj=True)
    unet = _unet(cross_attention_dim=48 if refiner else 80, addition_embed_type="text_time",
                 addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                 projection_class_embeddings_input_dim=48 + (5 if refiner else 6) * 8,
                 in_channels=in_channels)
    tok = _tokenizer(root.parent / "tok")
    pipe = StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=None if refiner else enc1, text_encoder_2=enc2,
        tokenizer=None if refiner else tok, tokenizer_2=tok, unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                         beta_end=0.012, steps_offset=1),
    )
    pipe.save_pretrained(str(root))
    return root


@pytest.fixture(scope="module")
def tiny_sdxl_dir(tmp_path_factory):
    return _xl_pipe(tmp_path_factory.mktemp("sdxl") / "tiny-sdxl")


def test_sd2_single_file_detected_and_loaded(tiny_sd2_dir, tmp_path):
    f = write_single_file(tiny_sd2_dir, tmp_path / "sd2.safetensors", family="sd2")
    one = load_single_file(f, config=tiny_sd2_dir)
    assert one.kind.family == "sd2" and one.prediction == "v_prediction"
    folder = load_model(str(tiny_sd2_dir), device="cpu")
    for part in ("unet", "vae", "text_encoder"):
        _same_weights(getattr(folder, part), one.components[part])
    # diffusers' own heuristic: global_step 875000 is the 512 epsilon release
    f2 = write_single_file(tiny_sd2_dir, tmp_path / "sd2.ckpt", family="sd2",
                           extra={"global_step": torch.tensor(875000)})
    assert load_single_file(f2, config=tiny_sd2_dir).prediction == "epsilon"


def test_sd2_prediction_override_is_remembered_per_file(tiny_sd2_dir, tmp_path):
    f = write_single_file(tiny_sd2_dir, tmp_path / "sd2.safetensors", family="sd2")
    m = load_model(str(f), device="cpu", config=str(tiny_sd2_dir), prediction="epsilon")
    assert m.scheduler_config["prediction_type"] == "epsilon"
    again = load_model(str(f), device="cpu", config=str(tiny_sd2_dir))
    assert again.scheduler_config["prediction_type"] == "epsilon"  # remembered
    v = load_model(str(f), device="cpu", config=str(tiny_sd2_dir), prediction="v")
    assert v.scheduler_config["prediction_type"] == "v_prediction"
    with pytest.raises(ModelLoadError, match="Prediction must be epsilon or v"):
        load_model(str(f), device="cpu", config=str(tiny_sd2_dir), prediction="x0")


def test_sd2_shipped_configs_by_prediction():
    sd2 = KINDS["v2"]
    assert guess_prediction(sd2, {}) == "v_prediction"  # diffusers' default for SD 2.x
    assert guess_prediction(KINDS["v1"], {}) == "epsilon"
    assert guess_prediction(KINDS["xl_base"], {"v_pred": torch.tensor(0)}) == "v_prediction"
    from sdstudio.core.models.single_file import config_for

    assert config_for(sd2, "v_prediction").config == "sd2-v"
    assert config_for(sd2, "epsilon").config == "sd2"


def test_sdxl_single_file_components_match_folder_and_diffusers(tiny_sdxl_dir, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    f = write_single_file(tiny_sdxl_dir, tmp_path / "xl.safetensors", family="sdxl",
                          dtype=torch.float16)
    one = load_single_file(f, torch.float32, config=tiny_sdxl_dir)
    assert one.kind == KINDS["xl_base"]
    ref = StableDiffusionXLPipeline.from_single_file(str(f), config=str(tiny_sdxl_dir),
                                                     local_files_only=True,
                                                     torch_dtype=torch.float32)
    folder = StableDiffusionXLPipeline.from_pretrained(str(tiny_sdxl_dir))
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        _same_weights(getattr(ref, part), one.components[part])
        _same_weights(getattr(folder, part), one.components[part], cast=torch.float16)
    # same pixels: diffusers' SDXL pipeline on our components vs on diffusers' own
    ours = StableDiffusionXLPipeline(**one.components, scheduler=ref.scheduler)
    kw = dict(prompt="a red circle", num_inference_steps=2, height=32, width=32,
              output_type="np")
    a = ours(generator=torch.Generator().manual_seed(1), **kw).images
    b = ref(generator=torch.Generator().manual_seed(1), **kw).images
    assert abs(a - b).max() <= 1 / 255


@pytest.mark.parametrize("variant", ["refiner", "inpainting"])
def test_sdxl_variants_detected(tmp_path, variant):
    root = _xl_pipe(tmp_path / variant, refiner=variant == "refiner",
                    in_channels=9 if variant == "inpainting" else 4)
    f = write_single_file(root, tmp_path / "x.safetensors",
                          family="sdxl-refiner" if variant == "refiner" else "sdxl")
    kind = detect_kind(f.name, shapes_of(load_single_file.__globals__["load_state_dict"](f)))
    assert kind == KINDS["xl_refiner" if variant == "refiner" else "xl_inpaint"]
    one = load_single_file(f, config=root)
    assert ("text_encoder" in one.components) == (variant != "refiner")
    assert one.components["unet"].config.in_channels == (9 if variant == "inpainting" else 4)


def _pixels(model, **kw):
    import numpy as np

    from sdstudio.core.pipeline import StableDiffusion
    from sdstudio.core.request import GenerationRequest

    req = GenerationRequest(prompt="a red circle", steps=3, width=32, height=32, seed=3,
                            device="cpu", batch_size=2, **kw).validate()
    return [np.asarray(e.image, dtype=np.int16) for e in StableDiffusion(model).generate(req).images]


@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_sd2_and_sdxl_single_files_generate_the_folders_pixels(
    family, tiny_sd2_dir, tiny_sdxl_dir, tmp_path
):
    folder = tiny_sd2_dir if family == "sd2" else tiny_sdxl_dir
    f = write_single_file(folder, tmp_path / f"{family}.safetensors", family=family)
    from_file = load_model(str(f), device="cpu", config=str(folder))
    from_folder = load_model(str(folder), device="cpu")
    assert from_file.family.name == from_folder.family.name == family
    assert from_file.pipeline_config == from_folder.pipeline_config
    assert from_file.scheduler_config["prediction_type"] == (
        from_folder.scheduler_config.get("prediction_type", "epsilon"))
    for a, b in zip(_pixels(from_file), _pixels(from_folder), strict=True):
        assert abs(a - b).max() <= 1


# --- files that are not a model we run: one sentence naming what they are ---

def _save(path, tensors):
    from safetensors.torch import save_file

    save_file({k: torch.zeros(s) for k, s in tensors.items()}, str(path))
    return path


@pytest.mark.parametrize("tensors, says", [
    ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 8),
      "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": ()}, "is a LoRA"),
    ({"encoder.conv_in.weight": (8, 3, 3, 3), "decoder.conv_in.weight": (8, 4, 3, 3)},
     "is a VAE"),
    ({"emb_params": (2, 768)}, "textual-inversion embedding"),
    ({"conv_first.weight": (64, 3, 3, 3), "body.0.rdb1.conv1.weight": (32, 64, 3, 3)},
     "is an upscaler"),
    ({"double_blocks.0.img_attn.norm.key_norm.scale": (128,), "img_in.weight": (3072, 64)},
     "is a FLUX.1 model"),
    ({"model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias": (9216,),
      "model.diffusion_model.pos_embed": (1, 36864, 1536)}, "is a Stable Diffusion 3 model"),
    ({"clip_txt_mapper.weight": (2048, 1280)}, "is a Stable Cascade model"),
    ({"model.diffusion_model.single_stream_modulation.lin.weight": (8,)}, "is a FLUX.2 model"),
    ({"model.diffusion_model.joint_blocks.37.x_block.mlp.fc1.weight": (8,)},
     "is a Stable Diffusion 3.5 Large model"),
    ({"something.else": (3,)}, "is not a Stable Diffusion checkpoint"),
])
def test_other_files_get_one_sentence(tmp_path, tensors, says):
    f = _save(tmp_path / "thing.safetensors", tensors)
    with pytest.raises(ModelLoadError, match=says) as info:
        load_model(str(f), device="cpu")
    assert "thing.safetensors" in str(info.value) and "\n" not in str(info.value)


# --- legacy layouts A1111 and ComfyUI rename before loading ---

def test_sd2_sgm_layout_and_sdxl_text_without_text_model(tiny_sd2_dir, tiny_sdxl_dir, tmp_path):
    """SD 2.1 Turbo's SGM layout (OpenCLIP under conditioner.embedders.0.model.) and an SDXL
    CLIP-L saved without `text_model.` load the same weights as the canonical layouts."""
    from safetensors.torch import load_file, save_file

    f = write_single_file(tiny_sd2_dir, tmp_path / "sd2.safetensors", family="sd2")
    state = load_file(str(f))
    sgm = {k.replace("cond_stage_model.model.", "conditioner.embedders.0.model."): v
           for k, v in state.items()}
    save_file(sgm, str(tmp_path / "turbo.safetensors"))
    a = load_single_file(f, config=tiny_sd2_dir).components["text_encoder"]
    b = load_single_file(tmp_path / "turbo.safetensors", config=tiny_sd2_dir)
    assert b.kind.family == "sd2"
    _same_weights(a, b.components["text_encoder"])

    g = write_single_file(tiny_sdxl_dir, tmp_path / "xl.safetensors", family="sdxl",
                          legacy_text=True)
    assert not any(k.startswith("conditioner.embedders.0.transformer.text_model.")
                   for k in load_file(str(g)))
    folder = load_model(str(tiny_sdxl_dir), device="cpu")
    one = load_single_file(g, config=tiny_sdxl_dir)
    _same_weights(folder.text_encoder, one.components["text_encoder"])
