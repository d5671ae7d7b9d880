"""Model loading: diffusers folders, cached HF ids, device/dtype choice, clear errors."""

from __future__ import annotations

import shutil

import pytest
import torch

from sdstudio.core.errors import ModelLoadError, UserError
from sdstudio.core.models import LoadedModel, load_model, resolve_device


def test_load_folder(tiny_model_dir):
    m = load_model(str(tiny_model_dir), device="cpu")
    assert isinstance(m, LoadedModel)
    assert m.name == tiny_model_dir.name and m.source == str(tiny_model_dir)
    assert m.device == torch.device("cpu") and m.dtype == torch.float32
    assert m.unet.dtype == m.vae.dtype == m.text_encoder.dtype == torch.float32
    assert m.native_size == 32 and m.vae_scale_factor == 8 and not m.is_inpainting
    assert m.scheduler_config["beta_schedule"] == "scaled_linear"
    assert m.sha256 is None
    assert m.tokenizer.model_max_length == 77


def test_load_inpainting_folder(tiny_inpaint_model_dir):
    assert load_model(str(tiny_inpaint_model_dir), device="cpu").is_inpainting


def test_load_demo_when_present(tiny_model_dir, tmp_path, monkeypatch):
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "demo")
    monkeypatch.setenv("SDSTUDIO_RESOURCES", str(tmp_path))
    assert load_model("demo", device="cpu").name == "demo"


def test_load_cached_hub_id(tiny_model_dir, tmp_path, monkeypatch):
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--someone--tiny-sd"
    commit = "0" * 40
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    m = load_model("someone/tiny-sd", device="cpu")
    assert m.source == "someone/tiny-sd" and m.native_size == 32


def test_hub_id_not_in_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError, match="not a file, a folder, or a Hugging Face model"):
        load_model("someone/not-there", device="cpu")


def test_folder_missing_components(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(ModelLoadError, match="has no vae folder"):
        load_model(str(broken), device="cpu")


def test_folder_with_bad_weights(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 100)
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        load_model(str(broken), device="cpu")


def test_unknown_file_type(tmp_path):
    f = tmp_path / "model.txt"
    f.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a model file"):
        load_model(str(f), device="cpu")


def test_resolve_device():
    assert resolve_device("cpu", "auto") == (torch.device("cpu"), torch.float32)
    if not torch.cuda.is_available():
        assert resolve_device("auto", "auto")[0].type in ("cpu", "mps")
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda", "auto")
    with pytest.raises(UserError, match="fp16 needs a GPU"):
        resolve_device("cpu", "fp16")
    assert resolve_device("cpu", "bf16") == (torch.device("cpu"), torch.bfloat16)
    with pytest.raises(UserError, match="Dtype must be"):
        resolve_device("cpu", "fp64")


def _ldm_file(path, unet_in: int = 4):
    """A safetensors file with SD 1.x original-layout key names (wrong, tiny shapes)."""
    from safetensors.torch import save_file

    tensors = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(8, unet_in, 3, 3)}
    tensors["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] = (
        torch.zeros(4, 8)
    )
    save_file(tensors, str(path))
    return path


def test_single_file_with_bad_weights_is_one_sentence(tmp_path):
    """Configs and tokenizer come from resources/ (no network); bad weights -> one sentence."""
    with pytest.raises(ModelLoadError, match="looks like an SD 1.x checkpoint but cannot be loaded"):
        load_model(str(_ldm_file(tmp_path / "sd.safetensors")), device="cpu")


def test_single_file_kind_from_keys(tmp_path):
    from sdstudio.core.models.checkpoints import check_safetensors
    from sdstudio.core.models.single_file import detect_kind

    f = _ldm_file(tmp_path / "a.safetensors")
    assert detect_kind(f.name, check_safetensors(f)).config == "sd15"
    f = _ldm_file(tmp_path / "b.safetensors", unet_in=9)
    assert detect_kind(f.name, check_safetensors(f)).config == "sd15-inpainting"
