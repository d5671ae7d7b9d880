"""Model families: detection, the one-sentence refusals, preview factors, fp16 VAE handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sdstudio.core.errors import ModelLoadError, UserError
from sdstudio.core.families import detect_family
from sdstudio.core.families.text import encode_text
from sdstudio.core.latents import SD1_LATENT_RGB, SDXL_LATENT_RGB, preview_rgb
from sdstudio.core.models import load_model
from sdstudio.core.models.loading import _from_folder
from sdstudio.core.pipeline import StableDiffusion, fresh_scheduler
from sdstudio.core.request import GenerationRequest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
CPU = torch.device("cpu")


def _req(**kw) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "a red cat", "steps": 2, "width": 32, "height": 32, **kw})


# -- detection -----------------------------------------------------------------------------------


def test_detect_family_from_the_configs_of_the_real_models():
    sd15_text = {"hidden_act": "quick_gelu", "hidden_size": 768}
    sd2_text = {"hidden_act": "gelu", "hidden_size": 1024}
    unet = {"cross_attention_dim": 768, "addition_embed_type": None}
    assert detect_family(unet, sd15_text, {"prediction_type": "epsilon"}).name == "sd1"
    assert detect_family({"cross_attention_dim": 1024}, sd2_text).name == "sd2"
    assert detect_family(unet, sd15_text, {"prediction_type": "v_prediction"}).name == "sd2"
    xl_unet = {"cross_attention_dim": 2048, "addition_embed_type": "text_time"}
    assert detect_family(xl_unet, sd15_text).name == "sdxl"
    assert detect_family(xl_unet, None).name == "sdxl"  # the refiner has no first encoder


def test_demo_model_is_sd1(tiny_model_dir):
    assert load_model("demo", device="cpu").family.name == "sd1"


@pytest.mark.parametrize(
    "class_name, what",
    [("FluxPipeline", "a Flux model"), ("StableDiffusion3Pipeline", "a Stable Diffusion 3 model"),
     ("StableCascadeCombinedPipeline", "a Stable Cascade model"),
     ("SomeNewPipeline", "a SomeNewPipeline model")],
)
def test_folder_of_a_family_we_do_not_run_is_named(tmp_path, class_name, what):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    with pytest.raises(ModelLoadError) as err:
        load_model(str(tmp_path), device="cpu")
    message = str(err.value)
    assert what in message and "which sdstudio does not run" in message
    assert message.endswith("SDXL.") and "\n" not in message


def test_sdxl_folder_without_its_second_text_encoder_names_what_is_missing(
    tiny_sdxl_model_dir, tmp_path
):
    import shutil

    broken = tmp_path / "xl"
    shutil.copytree(tiny_sdxl_model_dir, broken)
    shutil.rmtree(broken / "text_encoder_2")
    with pytest.raises(ModelLoadError, match="it has no text_encoder_2 folder"):
        load_model(str(broken), device="cpu")


# -- text encoding -------------------------------------------------------------------------------


def test_encode_text_last_state_or_a_hidden_layer(tiny_sdxl_model_dir):
    m = load_model(str(tiny_sdxl_model_dir), device="cpu")
    ids = m.tokenizer("a red cat", padding="max_length", max_length=77, return_tensors="pt")
    out = m.text_encoder(ids.input_ids, output_hidden_states=True)
    last = encode_text(m.tokenizer, m.text_encoder, "a red cat")
    torch.testing.assert_close(last.hidden, out.last_hidden_state)
    assert last.pooled is None  # a CLIPTextModel has no projection
    penultimate = encode_text(m.tokenizer, m.text_encoder, "a red cat", hidden_layer=-2)
    torch.testing.assert_close(penultimate.hidden, out.hidden_states[-2])
    normed = encode_text(m.tokenizer, m.text_encoder, "a red cat", hidden_layer=-1, final_norm=True)
    torch.testing.assert_close(normed.hidden, out.last_hidden_state)
    pooled = encode_text(m.tokenizer_2, m.text_encoder_2, "a red cat", hidden_layer=-2).pooled
    assert pooled is not None and pooled.shape == (1, m.text_encoder_2.config.projection_dim)


def test_sdxl_long_prompt_is_chunked_alike_by_both_encoders(tiny_sdxl_model_dir):
    m = load_model(str(tiny_sdxl_model_dir), device="cpu")
    cond = m.family.conditioning(m, _req(prompt="cat " * 100, guidance=1.0), False, [])
    assert cond.embeds.shape[1] == 154  # two 77-token chunks from each encoder, side by side
    result = StableDiffusion(m).generate(_req(prompt="cat " * 100, steps=1))
    assert not any("longer than" in n for n in result.notices)


def test_sdxl_empty_negative_is_encoded_where_zeros_are_not_asked_for(tiny_sdxl_model_dir):
    m = load_model(str(tiny_sdxl_model_dir), device="cpu")
    req = _req(guidance=5.0)
    zeros = m.family.conditioning(m, req, True, [])
    assert not zeros.embeds[0].any() and not zeros.added["text_embeds"][0].any()
    m.pipeline_config["force_zeros_for_empty_prompt"] = False
    encoded = m.family.conditioning(m, req, True, [])
    empty, _ = m.family._encode(m, "")
    torch.testing.assert_close(encoded.embeds[:1], empty)
    assert encoded.added["time_ids"].tolist() == [[32, 32, 0, 0, 32, 32]] * 2


def test_refiner_needs_an_init_image(tiny_sdxl_refiner_model_dir):
    m = load_model(str(tiny_sdxl_refiner_model_dir), device="cpu")
    assert m.text_encoder is None and m.family.name == "sdxl"
    with pytest.raises(UserError, match="only refines an image"):
        StableDiffusion(m).generate(_req())


# -- previews ------------------------------------------------------------------------------------


def test_preview_factors_follow_the_family(tiny_model_dir, tiny_sdxl_model_dir):
    sd1 = load_model(str(tiny_model_dir), device="cpu")
    xl = load_model(str(tiny_sdxl_model_dir), device="cpu")
    torch.testing.assert_close(sd1.latent_rgb[:4], SD1_LATENT_RGB)
    torch.testing.assert_close(xl.latent_rgb[:4], SDXL_LATENT_RGB)
    assert xl.latent_rgb[4].abs().sum() > 0 and not sd1.latent_rgb[4].any()
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(np.asarray(preview_rgb(z, sd1.latent_rgb)), np.asarray(preview_rgb(z)))
    assert not np.array_equal(np.asarray(preview_rgb(z, xl.latent_rgb)), np.asarray(preview_rgb(z)))


def test_a_model_own_preview_projection_wins_over_its_family(tiny_sdxl_model_dir, tmp_path):
    import shutil

    from sdstudio.core.latents import save_latent_rgb

    folder = tmp_path / "xl"
    shutil.copytree(tiny_sdxl_model_dir, folder)
    own = torch.arange(15, dtype=torch.float32).view(5, 3) / 15
    save_latent_rgb(folder / "vae", own)
    torch.testing.assert_close(load_model(str(folder), device="cpu").latent_rgb, own)


def test_folder_with_only_fp16_variant_weights_loads(tiny_sdxl_model_dir, tmp_path):
    """Many SDXL downloads hold only `*.fp16.safetensors`; diffusers needs `variant="fp16"`."""
    import diffusers

    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(str(tiny_sdxl_model_dir))
    pipe.to(torch.float16).save_pretrained(str(tmp_path / "xl"), variant="fp16")
    assert not list((tmp_path / "xl" / "unet").glob("diffusion_pytorch_model.safetensors"))
    m = load_model(str(tmp_path / "xl"), device="cpu")
    assert m.unet.dtype == m.text_encoder_2.dtype == torch.float32
    image = StableDiffusion(m).generate(_req()).images[0].image
    assert np.asarray(image).std() > 2


# -- fp16: SDXL's force_upcast, NaN retry for every family ----------------------------------------


@pytest.mark.parametrize(
    "fixture, force_upcast, vae_dtype",
    [("tiny_model_dir", True, torch.float16),  # StableDiffusionPipeline never upcasts
     ("tiny_sdxl_model_dir", True, torch.float32),
     ("tiny_sdxl_model_dir", False, torch.float16)],  # an fp16-fix VAE says force_upcast: false
)
def test_vae_dtype_in_half_precision(request, tmp_path, fixture, force_upcast, vae_dtype):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(request.getfixturevalue(fixture), folder)
    cfg = folder / "vae" / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "force_upcast": force_upcast}))
    m = _from_folder(folder, "m", CPU, torch.float16)
    assert m.unet.dtype == m.text_encoder.dtype == torch.float16
    assert m.vae.dtype == vae_dtype


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_sdxl_model_dir"])
def test_half_precision_matches_diffusers(request, fixture):
    """fp16 on the CPU: SDXL's VAE upcast for decoding exactly as diffusers does it."""
    import diffusers

    folder = request.getfixturevalue(fixture)
    m = _from_folder(folder, "m", CPU, torch.float16)
    req = _req(negative_prompt="blue", seed=1, steps=3, guidance=5.0, width=48, batch_size=2)
    ours = [np.asarray(e.image, dtype=np.int16) for e in StableDiffusion(m).generate(req).images]
    xl = m.family.name == "sdxl"
    cls = diffusers.StableDiffusionXLPipeline if xl else diffusers.StableDiffusionPipeline
    extra = {"add_watermarker": False} if xl else {"safety_checker": None}
    pipe = cls.from_pretrained(str(folder), torch_dtype=torch.float16, **extra)
    pipe.scheduler = fresh_scheduler(req.scheduler, dict(pipe.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    gens = [torch.Generator("cpu").manual_seed(s) for s in req.seeds()]
    out = pipe(
        req.prompt, negative_prompt="blue", num_inference_steps=3, guidance_scale=5.0,
        generator=gens, num_images_per_prompt=2, width=48, height=32, output_type="np",
    ).images
    theirs = np.round(out * 255).astype(np.int16)
    for a, b in zip(ours, theirs, strict=True):
        assert a.std() > 2 and np.abs(a - b).max() <= 1


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_sd2_model_dir", "tiny_sdxl_model_dir"])
def test_vae_nan_in_half_precision_is_retried_in_fp32(request, monkeypatch, fixture):
    m = load_model(str(request.getfixturevalue(fixture)), device="cpu")
    m.vae.to(torch.bfloat16)  # a half-precision VAE that overflows
    decode = m.vae.decode

    def overflowing(z, *args, **kwargs):
        out = decode(z, *args, **kwargs)
        if m.vae.dtype != torch.float32:
            out[0].fill_(float("nan"))
        return out

    monkeypatch.setattr(m.vae, "decode", overflowing)
    result = StableDiffusion(m).generate(_req(seed=3))
    assert m.vae.dtype == torch.float32
    assert any("NaN" in n and "fp32" in n for n in result.notices)
    # the retried image is the one the (now fp32) VAE gives for the same latents
    again = StableDiffusion(m).generate(_req(seed=3))
    assert not any("NaN" in n for n in again.notices)
    got, want = (np.asarray(r.images[0].image, dtype=np.int16) for r in (result, again))
    assert got.std() > 2 and np.array_equal(got, want)
