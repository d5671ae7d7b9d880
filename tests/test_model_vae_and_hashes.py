"""A separate VAE per model (file or folder, remembered), per-model choices, cached hashes."""

from __future__ import annotations

import json
import os

import pytest
import torch

from sdstudio.core.errors import ModelLoadError
from sdstudio.core.models import choices, hashing, load_model
from sdstudio.testing.single_files import vae_to_original


@pytest.fixture(scope="module")
def other_vae(tmp_path_factory):
    """A VAE of the same shape as the tiny model's, with other weights: folder and file."""
    from sdstudio.testing.tiny_models import TINY, _vae

    torch.manual_seed(123)
    vae = _vae(TINY)
    root = tmp_path_factory.mktemp("vae")
    vae.save_pretrained(str(root / "folder"))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in vae_to_original(vae).items()},
              str(root / "vae.safetensors"))
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()},
              str(root / "diffusers-layout.safetensors"))
    return vae, root


@pytest.mark.parametrize("which", ["folder", "vae.safetensors", "diffusers-layout.safetensors"])
def test_separate_vae_replaces_the_models_own(tiny_model_dir, other_vae, which):
    vae, root = other_vae
    m = load_model(str(tiny_model_dir), device="cpu", vae=str(root / which))
    ref = vae.state_dict()
    got = m.vae.state_dict()
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_vae_choice_is_remembered_per_model_and_can_be_cleared(tiny_model_dir, other_vae):
    vae, root = other_vae
    own = load_model(str(tiny_model_dir), device="cpu").vae.state_dict()
    load_model(str(tiny_model_dir), device="cpu", vae=str(root / "folder"))
    again = load_model(str(tiny_model_dir), device="cpu")  # no --vae: the remembered one
    k = "decoder.conv_in.weight"
    assert torch.equal(again.vae.state_dict()[k], vae.state_dict()[k])
    cleared = load_model(str(tiny_model_dir), device="cpu", vae="none")
    assert torch.equal(cleared.vae.state_dict()[k], own[k])
    assert "vae" not in choices.recall(str(tiny_model_dir))


def test_bad_vae_is_one_sentence(tiny_model_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tiny_model_dir), device="cpu", vae=str(tmp_path / "nope.safetensors"))
    from safetensors.torch import save_file

    save_file({"model.diffusion_model.x": torch.zeros(1)}, str(tmp_path / "notvae.safetensors"))
    with pytest.raises(ModelLoadError, match="is not a VAE"):
        load_model(str(tiny_model_dir), device="cpu", vae=str(tmp_path / "notvae.safetensors"))


def test_choices_file_is_written_atomically_and_survives_damage(tmp_path):
    choices.remember(tmp_path / "m.safetensors", prediction="v_prediction")
    f = choices._file()
    assert json.loads(f.read_text())  # valid JSON, no temp files left behind
    assert not [p for p in f.parent.iterdir() if p.name.endswith(".tmp")]
    f.write_text("{broken")
    assert choices.recall(tmp_path / "m.safetensors") == {}
    choices.remember(tmp_path / "m.safetensors", prediction="epsilon")
    assert choices.recall(tmp_path / "m.safetensors") == {"prediction": "epsilon"}


def test_hash_is_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    import hashlib

    f = tmp_path / "model.safetensors"
    f.write_bytes(b"abc" * 1000)
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    assert hashing.short_hash(f) == digest[:10]
    calls = []
    monkeypatch.setattr(hashing, "sha256_file", lambda p: calls.append(p) or "x" * 64)
    assert hashing.sha256(f) == digest and not calls  # from the cache
    f.write_bytes(b"abcd" * 1000)
    os.utime(f, ns=(1, 1))
    assert hashing.sha256(f) == "x" * 64 and calls  # size/mtime changed: hashed again
    assert hashing.cached_sha256(tmp_path / "other") is None


def test_hash_in_background(tmp_path):
    f = tmp_path / "m.ckpt"
    f.write_bytes(b"x")
    seen = []
    fut = hashing.hash_in_background(f, lambda p, h: seen.append((p, h)))
    assert fut.result(timeout=10) == hashing.sha256(f)
    fut.result()
    import time

    for _ in range(50):
        if seen:
            break
        time.sleep(0.01)
    assert seen == [(str(f), fut.result())]


def test_a_separate_vae_is_in_the_record_and_in_a1111s_text(tiny_model_dir, other_vae, tmp_path):
    from PIL import Image

    from sdstudio.core.engine import Engine
    from sdstudio.core.png.io import write_png
    from sdstudio.core.request import GenerationRequest

    _vae, root = other_vae
    vae_file = root / "vae.safetensors"
    digest = hashing.sha256(vae_file)  # hashed now: the record is complete from the first image
    engine = Engine()
    request = GenerationRequest("cat", model=str(tiny_model_dir), vae=str(vae_file),
                                device="cpu", steps=1, width=32, height=32)
    engine.load(request.model, "cpu", vae=request.vae)
    record = engine.record()
    assert record["vae"] == str(vae_file.resolve()) and record["vae_sha256"] == digest
    path = tmp_path / "out.png"
    write_png(path, Image.new("RGB", (32, 32)), request, 0, record)
    text = Image.open(path).info["parameters"]
    assert f"VAE hash: {digest[:10]}, VAE: vae.safetensors" in text
    engine.load(request.model, "cpu", vae="none")  # back to the model's own: nothing written
    assert "vae" not in engine.record()
