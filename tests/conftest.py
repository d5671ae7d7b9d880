"""Shared fixtures. The suite never touches a real user's files or the network."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Settings, gallery and caches of the app go to a temporary folder in every test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SDSTUDIO_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    yield home


# Torch's thread pool spins badly when the 2 cores of a CI box are shared; one thread is faster.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random SD 1.x-shaped model in diffusers layout (32x32 native size), built once."""
    from sdstudio.testing.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model") / "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_inpaint_model_dir(tmp_path_factory):
    """Same as tiny_model_dir with a 9-input-channel inpainting UNet."""
    from sdstudio.testing.tiny_models import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("tiny_inpaint") / "tiny", seed=0, inpainting=True
    )


def _tiny(tmp_path_factory, builder: str, **kwargs):
    from sdstudio.testing import tiny_models

    name = builder.removeprefix("build_tiny_").removesuffix("_model")
    return getattr(tiny_models, builder)(tmp_path_factory.mktemp(name) / "tiny", seed=0, **kwargs)


@pytest.fixture(scope="session")
def tiny_sd2_model_dir(tmp_path_factory):
    """A tiny random SD 2.x-shaped model (OpenCLIP-style encoder, epsilon prediction)."""
    return _tiny(tmp_path_factory, "build_tiny_sd2_model")


@pytest.fixture(scope="session")
def tiny_sd2v_model_dir(tmp_path_factory):
    """The tiny SD 2.x model with a v-prediction schedule (the 768-v flavour)."""
    return _tiny(tmp_path_factory, "build_tiny_sd2_model", v_prediction=True)


@pytest.fixture(scope="session")
def tiny_sd2_inpaint_model_dir(tmp_path_factory):
    return _tiny(tmp_path_factory, "build_tiny_sd2_model", inpainting=True)


@pytest.fixture(scope="session")
def tiny_sdxl_model_dir(tmp_path_factory):
    """A tiny random SDXL-shaped model (two text encoders, size-conditioned UNet)."""
    return _tiny(tmp_path_factory, "build_tiny_sdxl_model")


@pytest.fixture(scope="session")
def tiny_sdxl_inpaint_model_dir(tmp_path_factory):
    return _tiny(tmp_path_factory, "build_tiny_sdxl_model", inpainting=True)


@pytest.fixture(scope="session")
def tiny_sdxl_refiner_model_dir(tmp_path_factory):
    return _tiny(tmp_path_factory, "build_tiny_sdxl_model", refiner=True)
