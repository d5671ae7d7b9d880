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


@pytest.fixture
def fake_window(qtbot):
    """The studio window with a scripted FakeWorker: no engine runs."""
    from sdstudio.testing.fake_worker import FakeWorker
    from sdstudio.ui.main_window import MainWindow

    w = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


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



def _tiny_model_fixture(builder: str, doc: str, **kwargs):
    """A session fixture building one tiny model with `sdstudio.testing.tiny_models.<builder>`."""

    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory):
        from sdstudio.testing import tiny_models

        return getattr(tiny_models, builder)(tmp_path_factory.mktemp("tiny") / "tiny", **kwargs)

    fixture.__doc__ = doc
    return fixture


tiny_sd2_model_dir = _tiny_model_fixture(
    "build_tiny_sd2_model", "A tiny random SD 2.x-shaped model (OpenCLIP-style encoder, epsilon)."
)
tiny_sd2v_model_dir = _tiny_model_fixture(
    "build_tiny_sd2_model", "The tiny SD 2.x model, v-prediction (768-v).", v_prediction=True
)
tiny_sd2_inpaint_model_dir = _tiny_model_fixture(
    "build_tiny_sd2_model", "The tiny SD 2.x model, 9-channel inpainting UNet.", inpainting=True
)
tiny_sdxl_model_dir = _tiny_model_fixture(
    "build_tiny_sdxl_model", "A tiny random SDXL-shaped model (two text encoders, size ids)."
)
tiny_sdxl_inpaint_model_dir = _tiny_model_fixture(
    "build_tiny_sdxl_model", "The tiny SDXL model, 9-channel inpainting UNet.", inpainting=True
)
tiny_sdxl_refiner_model_dir = _tiny_model_fixture(
    "build_tiny_sdxl_model", "A tiny SDXL refiner (text encoder 2 only, aesthetic score).",
    refiner=True,
)
