"""75-token chunks, emphasis and prompt editing on the tiny SD 1.x model, against diffusers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdstudio.core.conditioning.chunks import chunk_length, token_counts, tokenize_line
from sdstudio.core.conditioning.encode import clip_skip_layer, encode
from sdstudio.core.models import load_model
from sdstudio.core.pipeline import StableDiffusion, fresh_scheduler
from sdstudio.core.request import GenerationRequest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    m = load_model(str(tiny_model_dir), device="cpu")
    # A trained final layer norm has a bias; a fresh one makes every hidden state average 0,
    # which A1111's mean-keeping emphasis would divide by.
    torch.manual_seed(0)
    m.text_encoder.final_layer_norm.bias.normal_()
    return m


def _pipe(m, scheduler="Euler"):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=m.vae, text_encoder=m.text_encoder, tokenizer=m.tokenizer, unet=m.unet,
        scheduler=fresh_scheduler(scheduler, m.scheduler_config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _req(m, **kw) -> GenerationRequest:
    base = dict(model=m.source, width=32, height=32, steps=4, guidance=7.0, seed=3,
                scheduler="Euler", device="cpu")
    return GenerationRequest(**{**base, **kw})


def _ours(m, req) -> np.ndarray:
    return np.asarray(StableDiffusion(m).generate(req).images[0].image, dtype=np.int16)


def _diffusers(m, req, **kw) -> np.ndarray:
    image = _pipe(m, req.scheduler)(
        num_inference_steps=req.steps, guidance_scale=req.guidance, width=req.width,
        height=req.height, generator=torch.Generator("cpu").manual_seed(req.seed), **kw,
    ).images[0]
    return np.asarray(image, dtype=np.int16)


def test_plain_prompt_encodes_bit_for_bit_like_diffusers(model):
    prompt = "a photo of a red cat on a blue background"
    ours = encode(model.tokenizer, model.text_encoder, prompt).hidden
    theirs, _ = _pipe(model).encode_prompt(prompt, "cpu", 1, False)
    assert ours.shape == theirs.shape == (1, 77, 32)
    assert torch.equal(ours, theirs)


def test_clip_skip_2_is_the_penultimate_layer_with_the_final_norm(model):
    """A1111's clip skip n: hidden_states[-n] + final layer norm (diffusers' clip_skip=n-1, whose
    code path fails on transformers 5's CLIPTextModel, so the reference is written out here)."""
    tok, enc = model.tokenizer, model.text_encoder
    ours = encode(tok, enc, "a red cat", layer=clip_skip_layer(2)).hidden
    ids = tok("a red cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    expected = enc.final_layer_norm(enc(ids, output_hidden_states=True).hidden_states[-2])
    assert torch.equal(ours, expected)
    assert not torch.equal(ours, encode(tok, enc, "a red cat").hidden)


def test_plain_prompt_and_negative_give_diffusers_pixels(model):
    req = _req(model, prompt="a red cat on a blue background", negative_prompt="green tree")
    diff = np.abs(_ours(model, req) - _diffusers(model, req, prompt=req.prompt,
                                                negative_prompt=req.negative_prompt))
    assert diff.max() <= 1


def test_long_prompt_is_chunked_not_truncated(model):
    tok = model.tokenizer
    chunks, count = tokenize_line(tok, "cat " * 100)
    assert count == 100 and len(chunks) == 2
    assert token_counts(tok, "cat " * 100) == (100, 150)
    for chunk in chunks:
        assert len(chunk.tokens) == 77
        assert chunk.tokens[0] == tok.bos_token_id and chunk.tokens[-1] == tok.eos_token_id
    cat = tok("cat", add_special_tokens=False).input_ids[0]
    assert chunks[1].tokens[1:26] == [cat] * 25 and set(chunks[1].tokens[26:]) == {
        tok.eos_token_id
    }
    # Each chunk is encoded on its own: the second half is the encoding of chunk 2 alone.
    hidden = encode(tok, model.text_encoder, "cat " * 100).hidden
    alone = model.text_encoder(torch.tensor([chunks[1].tokens]))[0]
    assert hidden.shape == (1, 154, 32) and torch.equal(hidden[:, 77:], alone)


def test_comma_backtracking_moves_the_words_after_the_last_comma(model):
    tok = model.tokenizer
    cat, comma = (tok(w, add_special_tokens=False).input_ids[0] for w in ("cat", ","))
    # 70 cats, a comma, then 10 more: the chunk would end 4 tokens after the comma -> ends there.
    chunks, _ = tokenize_line(tok, "cat " * 70 + ", " + "cat " * 10)
    assert chunks[0].tokens[1:72] == [cat] * 70 + [comma]
    assert set(chunks[0].tokens[72:]) == {tok.eos_token_id}
    assert chunks[1].tokens[1:11] == [cat] * 10
    # A comma further back than 20 tokens is ignored: the chunk is cut at 75.
    chunks, _ = tokenize_line(tok, "cat " * 10 + ", " + "cat " * 70)
    assert chunks[0].tokens[1:76] == [cat] * 10 + [comma] + [cat] * 64


def test_break_starts_a_new_chunk(model):
    chunks, count = tokenize_line(model.tokenizer, "red cat BREAK blue sky")
    assert len(chunks) == 2 and count == 75 + 2


def test_weights_multiply_hidden_states_and_keep_the_mean(model):
    tok, enc = model.tokenizer, model.text_encoder
    chunks, _ = tokenize_line(tok, "a (red:1.5) [cat]")
    weights = chunks[0].multipliers
    assert weights[:5] == [1.0, 1.0, 1.5, 1 / 1.1, 1.0]
    z = enc(torch.tensor([chunks[0].tokens]))[0]
    weighted = z * torch.tensor(weights)[None, :, None]
    expected = weighted * (z.mean() / weighted.mean())
    assert torch.allclose(encode(tok, enc, "a (red:1.5) [cat]").hidden, expected)
    # the same tokens as the unweighted prompt (emphasis only weights them)
    assert chunks[0].tokens == tokenize_line(tok, "a red cat")[0][0].tokens


def test_chunk_length_follows_a_short_tokenizer(model):
    import copy

    tok = copy.copy(model.tokenizer)
    tok.model_max_length = 16
    assert chunk_length(tok) == 14
    chunks, _ = tokenize_line(tok, "cat " * 20)
    assert [len(c.tokens) for c in chunks] == [16, 16]


def test_different_chunk_counts_run_the_unet_twice(model, monkeypatch):
    shapes = []
    forward = model.unet.forward

    def spy(sample, t, encoder_hidden_states, **kw):
        shapes.append((sample.shape[0], encoder_hidden_states.shape[1]))
        return forward(sample, t, encoder_hidden_states, **kw)

    monkeypatch.setattr(model.unet, "forward", spy)
    StableDiffusion(model).generate(_req(model, prompt="cat " * 80, negative_prompt="dog", steps=1))
    assert shapes == [(1, 77), (1, 154)]  # negative, then prompt


def test_prompt_editing_switches_conditioning_at_the_right_step(model, monkeypatch):
    """[red cat:blue dog:1]: steps 0-1 "red cat", steps 2-3 "blue dog" (A1111 counts from 0);
    diffusers swaps prompt_embeds from a step-end callback at the same step."""
    req = _req(model, prompt="a [red cat:blue dog:1]", negative_prompt="tree")
    pipe = _pipe(model)
    first, neg = pipe.encode_prompt("a red cat", "cpu", 1, True, "tree")
    second, _ = pipe.encode_prompt("a blue dog", "cpu", 1, True, "tree")

    def swap(p, i, t, kwargs):
        return {"prompt_embeds": torch.cat([neg, second])} if i == 1 else {}

    theirs = _diffusers(model, req, prompt_embeds=first, negative_prompt_embeds=neg,
                        callback_on_step_end=swap, callback_on_step_end_tensor_inputs=["prompt_embeds"])
    seen = []
    forward = model.unet.forward

    def spy(sample, t, encoder_hidden_states, **kw):
        seen.append(encoder_hidden_states[1:])
        return forward(sample, t, encoder_hidden_states, **kw)

    monkeypatch.setattr(model.unet, "forward", spy)
    ours = _ours(model, req)
    assert np.abs(ours - theirs).max() <= 1
    assert [torch.equal(e, first) for e in seen] == [True, True, False, False]
    assert [torch.equal(e, second) for e in seen] == [False, False, True, True]


def test_emphasis_on_states_of_mean_zero_gives_no_nan():
    """A1111 divides by the weighted mean: states that average exactly 0 (a freshly initialised
    final layer norm) gave NaN and a black image; the weighted states are kept unscaled."""
    import torch

    from sdstudio.core.conditioning.encode import _original_emphasis

    z = torch.tensor([[[1.0, -1.0], [2.0, -2.0]]])
    out = _original_emphasis(z, torch.tensor([[1.3, 1.0]]))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.tensor([[[1.3, -1.3], [2.0, -2.0]]]))
