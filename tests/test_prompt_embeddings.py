"""Textual-inversion embeddings used by file name in the prompt, against diffusers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdstudio.core.adapters.apply import apply_adapters
from sdstudio.core.models import load_model
from sdstudio.core.pipeline import StableDiffusion, fresh_scheduler
from sdstudio.core.request import GenerationRequest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.fixture(scope="module")
def emb_dir(tmp_path_factory):
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("embeddings")
    g = torch.Generator().manual_seed(0)
    # A1111 .pt (string_to_param), two vectors; A1111 .safetensors (emb_params); diffusers file.
    torch.save({"string_to_token": {"*": 265}, "name": "shiny", "step": 500,
                "string_to_param": {"*": torch.randn(2, 32, generator=g) * 3}},
               folder / "shiny.pt")
    save_file({"emb_params": torch.randn(1, 32, generator=g) * 3}, str(folder / "grim.safetensors"))
    save_file({"<toy>": torch.randn(32, generator=g) * 3}, str(folder / "toy.safetensors"))
    torch.save({"x": _Evil()}, folder / "evil.pt")
    save_file({"emb_params": torch.randn(1, 48, generator=g)}, str(folder / "wide.safetensors"))
    return folder


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(str(tiny_model_dir), device="cpu")


def _req(m, emb_dir, prompt):
    return GenerationRequest(prompt=prompt, model=m.source, width=32, height=32, steps=3,
                             guidance=5.0, seed=2, scheduler="Euler", device="cpu",
                             embeddings_dir=str(emb_dir))


def test_embeddings_match_diffusers_load_textual_inversion(model, tiny_model_dir, emb_dir, capsys):
    from diffusers import StableDiffusionPipeline

    prompt = "a shiny grim cat, toy"
    req = _req(model, emb_dir, prompt)
    result = StableDiffusion(model).generate(req)
    ours = np.asarray(result.images[0].image, dtype=np.int16)
    assert "pickled code ran" not in capsys.readouterr().out
    assert any("evil.pt contains code" in n and "not loaded" in n for n in result.notices)
    assert any("wide.safetensors is for another model family" in n for n in result.notices)

    pipe = StableDiffusionPipeline.from_pretrained(
        str(tiny_model_dir), safety_checker=None, requires_safety_checker=False
    )
    pipe.scheduler = fresh_scheduler("Euler", dict(pipe.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    shiny = torch.load(emb_dir / "shiny.pt", weights_only=True)["string_to_param"]["*"]
    pipe.load_textual_inversion(shiny, token="shiny")
    from safetensors.torch import load_file

    pipe.load_textual_inversion(load_file(str(emb_dir / "grim.safetensors"))["emb_params"],
                                token="grim")
    pipe.load_textual_inversion(load_file(str(emb_dir / "toy.safetensors"))["<toy>"], token="toy")
    theirs = pipe(prompt, num_inference_steps=3, guidance_scale=5.0, width=32, height=32,
                  generator=torch.Generator("cpu").manual_seed(2)).images[0]
    assert np.abs(ours - np.asarray(theirs, dtype=np.int16)).max() <= 1

    # the two vectors of shiny.pt are rows of the token embedding, used in place of the word
    rows = model.text_encoder.get_input_embeddings().weight
    ids = model.tokenizer.convert_tokens_to_ids(["shiny", "shiny_1"])
    assert torch.equal(rows[ids], shiny)


def test_used_embeddings_give_a1111_ti_hashes(model, emb_dir):
    from sdstudio.core.models.hashing import sha256_file

    applied = apply_adapters(model, _req(model, emb_dir, "a shiny cat"), [])
    assert set(applied.embeddings) == {"shiny"}
    assert applied.infotext() == {"TI hashes": f"shiny: {sha256_file(emb_dir / 'shiny.pt')[:12]}"}


def test_an_embedding_is_not_split_between_chunks(model, emb_dir):
    from sdstudio.core.conditioning.chunks import tokenize_line

    apply_adapters(model, _req(model, emb_dir, "shiny"), [])
    tok = model.tokenizer
    first = tok.convert_tokens_to_ids("shiny")
    chunks, _ = tokenize_line(tok, "cat " * 74 + "shiny")  # 74 + 2 vectors > 75
    assert first not in chunks[0].tokens
    assert chunks[1].tokens[1:3] == tok.convert_tokens_to_ids(["shiny", "shiny_1"])
