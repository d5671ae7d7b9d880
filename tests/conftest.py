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
