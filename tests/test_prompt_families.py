"""A1111 prompts on SD 2.x and SDXL: pad tokens, both SDXL encoders weighted, prompt editing and
LoRA against diffusers' StableDiffusionXLPipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdstudio.core.conditioning.chunks import tokenize_line
from sdstudio.core.conditioning.encode import EncoderLayer, encode
from sdstudio.core.errors import UserError
from sdstudio.core.models import load_model
from sdstudio.core.pipeline import StableDiffusion, fresh_scheduler
from sdstudio.core.request import GenerationRequest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl_model_dir):
    return load_model(str(tiny_sdxl_model_dir), device="cpu")


def _req(m, **kw):
    base = dict(model=m.source, prompt="a red cat", width=32, height=32, steps=4, guidance=5.0,
                seed=4, scheduler="Euler", device="cpu")
    return GenerationRequest(**{**base, **kw})


def _xl_pipe(m):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(
        vae=m.vae, text_encoder=m.text_encoder, text_encoder_2=m.text_encoder_2,
        tokenizer=m.tokenizer, tokenizer_2=m.tokenizer_2, unet=m.unet,
        scheduler=fresh_scheduler("Euler", m.scheduler_config), add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(pipe, req, **kw):
    out = pipe(num_inference_steps=req.steps, guidance_scale=req.guidance, width=32, height=32,
               generator=torch.Generator("cpu").manual_seed(req.seed), output_type="np", **kw)
    return np.round(out.images[0] * 255).astype(np.int16)


def _ours(m, req):
    return np.asarray(StableDiffusion(m).generate(req).images[0].image, dtype=np.int16)


def test_sd2_pads_after_the_first_eos_with_its_own_pad_token(tiny_sd2_model_dir, monkeypatch):
    m = load_model(str(tiny_sd2_model_dir), device="cpu")
    tok, enc = m.tokenizer, m.text_encoder
    assert tok.pad_token_id != tok.eos_token_id  # "!" as OpenCLIP pads
    seen = []
    forward = enc.forward
    monkeypatch.setattr(enc, "forward", lambda ids, **kw: seen.append(ids) or forward(ids, **kw))
    encode(tok, enc, "cat " * 80)
    assert len(seen) == 2
    second = seen[1][0].tolist()
    end = second.index(tok.eos_token_id)
    assert end == 6 and set(second[end + 1 :]) == {tok.pad_token_id}  # 80 - 75 = 5 cats
    # a short plain prompt: the same ids as diffusers' tokenizer call
    seen.clear()
    encode(tok, enc, "a red cat")
    ids = tok("a red cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    assert torch.equal(seen[0], ids)


def test_sdxl_weights_reach_both_encoders(sdxl):
    m = sdxl
    layer = EncoderLayer(-2, final_norm=False)
    weighted, pooled = m.family._encode(m, "a (red:1.5) cat")
    plain, plain_pooled = m.family._encode(m, "a red cat")
    halves = [encode(t, e, "a (red:1.5) cat", layer=layer).hidden
              for t, e in ((m.tokenizer, m.text_encoder), (m.tokenizer_2, m.text_encoder_2))]
    assert torch.equal(weighted, torch.cat(halves, dim=-1))
    width = m.text_encoder.config.hidden_size
    assert not torch.equal(weighted[..., :width], plain[..., :width])
    assert not torch.equal(weighted[..., width:], plain[..., width:])
    # the pooled embedding is the encoder's own: emphasis changes hidden states only
    assert torch.equal(pooled, plain_pooled)
    chunks, _ = tokenize_line(m.tokenizer_2, "a (red:1.5) cat")
    assert chunks[0].multipliers[2] == 1.5


def test_sdxl_prompt_editing_matches_diffusers_swapping_embeds(sdxl, monkeypatch):
    m = sdxl
    req = _req(m, prompt="a [red cat:blue dog:1]", negative_prompt="tree")
    pipe = _xl_pipe(m)
    first, neg, pooled_first, neg_pooled = pipe.encode_prompt("a red cat", None, "cpu", 1, True,
                                                              "tree")
    second, _, pooled_second, _ = pipe.encode_prompt("a blue dog", None, "cpu", 1, True, "tree")

    def swap(p, i, t, kwargs):
        if i != 1:
            return {}
        return {"prompt_embeds": torch.cat([neg, second]),
                "add_text_embeds": torch.cat([neg_pooled, pooled_second])}

    theirs = _image(pipe, req, prompt_embeds=first, negative_prompt_embeds=neg,
                    pooled_prompt_embeds=pooled_first, negative_pooled_prompt_embeds=neg_pooled,
                    callback_on_step_end=swap,
                    callback_on_step_end_tensor_inputs=["prompt_embeds", "add_text_embeds"])
    seen = []
    forward = m.unet.forward

    def spy(sample, t, encoder_hidden_states, **kw):
        seen.append((encoder_hidden_states[1:], kw["added_cond_kwargs"]["text_embeds"][1:]))
        return forward(sample, t, encoder_hidden_states, **kw)

    monkeypatch.setattr(m.unet, "forward", spy)
    ours = _ours(m, req)
    assert ours.std() > 2 and np.abs(ours - theirs).max() <= 1
    expected = [(first, pooled_first)] * 2 + [(second, pooled_second)] * 2
    assert all(torch.equal(e, x) and torch.equal(p, y)
               for (e, p), (x, y) in zip(seen, expected, strict=True))


@pytest.fixture(scope="module")
def sdxl_lora(tiny_sdxl_model_dir, tmp_path_factory):
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(5)
    unet = UNet2DConditionModel.from_pretrained(tiny_sdxl_model_dir / "unet")
    te = CLIPTextModel.from_pretrained(tiny_sdxl_model_dir / "text_encoder")
    te2 = CLIPTextModelWithProjection.from_pretrained(tiny_sdxl_model_dir / "text_encoder_2")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    clip = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                      target_modules=["q_proj", "k_proj", "v_proj", "out_proj"])
    inject_adapter_in_model(clip, te)
    inject_adapter_in_model(clip, te2)
    scaled = lambda mod: {k: v * 2 for k, v in get_peft_model_state_dict(mod).items()}  # noqa: E731
    folder = tmp_path_factory.mktemp("xl_loras")
    StableDiffusionXLPipeline.save_lora_weights(
        str(folder), unet_lora_layers=scaled(unet), text_encoder_lora_layers=scaled(te),
        text_encoder_2_lora_layers=scaled(te2), weight_name="xlstyle.safetensors",
    )
    return folder


def test_sdxl_lora_matches_diffusers(sdxl, tiny_sdxl_model_dir, sdxl_lora):
    from diffusers import StableDiffusionXLPipeline

    req = _req(sdxl, prompt="a red cat <lora:xlstyle:0.6>", lora_dir=str(sdxl_lora))
    ours = _ours(sdxl, req)
    pipe = StableDiffusionXLPipeline.from_pretrained(str(tiny_sdxl_model_dir))
    pipe.scheduler = fresh_scheduler("Euler", dict(pipe.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(sdxl_lora), weight_name="xlstyle.safetensors", adapter_name="x")
    pipe.set_adapters(["x"], [0.6])
    theirs = _image(pipe, req, prompt="a red cat")
    assert ours.std() > 2 and np.abs(ours - theirs).max() <= 1
    base = _ours(sdxl, _req(sdxl, lora_dir=str(sdxl_lora)))
    assert np.abs(base - ours).max() > 1


def test_sd1_lora_is_refused_on_sdxl(sdxl, tmp_path):
    from safetensors.torch import save_file

    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(32, 4)},
              str(tmp_path / "sd15.safetensors"))
    with pytest.raises(UserError, match="LoRA sd15 is made for SD 1.x/2.x models; this model is SDXL"):
        StableDiffusion(sdxl).generate(_req(sdxl, prompt="<lora:sd15>", lora_dir=str(tmp_path)))


def test_sdxl_embedding_pair(sdxl, tmp_path):
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(1)
    save_file({"clip_l": torch.randn(2, 32, generator=g), "clip_g": torch.randn(2, 32, generator=g)},
              str(tmp_path / "glow.safetensors"))
    notices: list[str] = []
    from sdstudio.core.adapters.apply import apply_adapters

    applied = apply_adapters(sdxl, _req(sdxl, prompt="glow cat", embeddings_dir=str(tmp_path)),
                             notices)
    assert not notices and set(applied.embeddings) == {"glow"}
    g = torch.Generator().manual_seed(1)
    clip_l, clip_g = torch.randn(2, 32, generator=g), torch.randn(2, 32, generator=g)
    ids = sdxl.tokenizer.convert_tokens_to_ids(["glow", "glow_1"])
    assert torch.equal(sdxl.text_encoder.get_input_embeddings().weight[ids], clip_l)
    ids = sdxl.tokenizer_2.convert_tokens_to_ids(["glow", "glow_1"])
    assert torch.equal(sdxl.text_encoder_2.get_input_embeddings().weight[ids], clip_g)


def test_clip_skip_is_for_sd1_only_as_in_a1111(tiny_sd2_model_dir, tiny_model_dir):
    for folder, changes in ((tiny_model_dir, True), (tiny_sd2_model_dir, False)):
        m = load_model(str(folder), device="cpu")
        one = m.family.conditioning(m, _req(m, guidance=1.0), False, []).embeds
        two = m.family.conditioning(m, _req(m, guidance=1.0, clip_skip=2), False, []).embeds
        assert torch.equal(one, two) is not changes
