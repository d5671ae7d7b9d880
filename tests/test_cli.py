"""The command line contract: generate/vae outputs, and bad input -> one sentence, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdstudio.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    line = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(line) == 1, err
    for needle in needles:
        assert needle in line[0]


@pytest.fixture(scope="module")
def png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "in.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def test_a_command_whose_module_fails_to_import_is_listed_and_says_why(capsys, monkeypatch):
    import importlib

    from sdstudio import cli

    real = importlib.import_module

    def broken(name, *a, **kw):
        if name == "sdstudio.commands.gallery":
            raise ImportError("No module named 'sqlite3'")
        return real(name, *a, **kw)

    monkeypatch.setattr(importlib, "import_module", broken)
    assert cli.import_errors() == {"gallery": "ImportError: No module named 'sqlite3'"}
    code, _, err = _run(capsys, "gallery")
    _assert_user_error(code, err, "The gallery command cannot run", "sqlite3")


def test_generate_writes_pngs_and_prints_paths(capsys, tiny_model_dir, tmp_path):
    code, out, err = _run(
        capsys, "generate", "a photo of a cat", "--model", str(tiny_model_dir), "--steps", "2",
        "--batch", "2", "--seed", "9", "--scheduler", "dpmpp_2m_karras", "--out", str(tmp_path),
    )
    assert code == 0, err
    paths = [Path(p) for p in out.splitlines()]
    assert len(paths) == 2 and all(p.is_file() and p.parent == tmp_path for p in paths)
    with Image.open(paths[1]) as im:
        assert im.size == (32, 32)  # the model's native size
        assert "Seed: 10" in im.info.get("parameters", "")
    assert [p.name for p in paths] == ["00000-9.png", "00001-10.png"]
    code, out, err = _run(  # a second run numbers on from the highest file
        capsys, "generate", "a cat", "--model", str(tiny_model_dir), "--steps", "1",
        "--seed", "9", "--out", str(tmp_path),
    )
    assert code == 0 and Path(out.strip()).name == "00002-9.png"


def test_generate_uses_the_model_s_recommended_guidance(capsys, tiny_model_dir, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "sdstudio.json").write_text('{"guidance": 3.0}')
    for extra, want in (((), "CFG scale: 3,"), (("--guidance", "6"), "CFG scale: 6,")):
        code, out, err = _run(capsys, "generate", "a cat", "--model", str(model), "--steps", "1",
                              *extra, "--out", str(tmp_path / "out"))
        assert code == 0, err
        with Image.open(out.strip()) as im:
            assert want in im.info["parameters"]
    (model / "sdstudio.json").write_text("{broken")
    code, out, err = _run(capsys, "generate", "a cat", "--model", str(model), "--steps", "1",
                          "--out", str(tmp_path / "out"))
    assert code == 0, err
    with Image.open(out.strip()) as im:
        assert "CFG scale: 7.5," in im.info["parameters"]


def test_generate_img2img_inpaint_resizes_with_notice(capsys, tiny_model_dir, tmp_path, png):
    code, out, err = _run(
        capsys, "generate", "a cat", "--model", str(tiny_model_dir), "--steps", "2",
        "--init-image", str(png), "--mask", str(png), "--strength", "0.5", "--width", "48",
        "--height", "32", "--out", str(tmp_path),
    )
    assert code == 0, err
    assert "Init image was resized from 48x40 to 48x32" in err
    with Image.open(out.strip()) as im:
        assert im.size == (48, 32)


def test_vae_command(capsys, tiny_model_dir, tmp_path, png):
    code, out, err = _run(capsys, "vae", str(png), "--model", str(tiny_model_dir), "--out", str(tmp_path))
    assert code == 0, err
    assert "latent shape: (1, 4, 5, 6)" in out
    assert " dB" in out.splitlines()[-1]
    names = {p.name for p in tmp_path.iterdir()}
    assert {f"channel_{i}.png" for i in range(4)} | {"reconstruction.png"} <= names


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--width", "30"], ["Width must be a positive multiple of 8"]),
        (["--height", "0"], ["Height must be a positive multiple of 8"]),
        (["--steps", "0"], ["Steps must be between 1 and 1000"]),
        (["--width", "100000"], ["Width must be at most 8192"]),
        (["--batch", "1000000"], ["Batch size must be between 1 and 64"]),
        (["--steps", "1000000000"], ["Steps must be between 1 and 1000"]),
        (["--steps", "2000", "--scheduler", "DDIM"], ["Steps must be between 1 and 1000"]),
        (["--guidance", "inf"], ["Guidance (CFG scale) must be a number between 0 and 100"]),
        (["--guidance", "nan"], ["Guidance (CFG scale) must be a number between 0 and 100"]),
        (["--guidance", "1e308"], ["got 1e+308"]),
        (["--init-image", "x.png", "--strength", "1.5"], ["Strength must be in (0, 1]"]),
        (["--init-image", "x.png", "--strength", "0"], ["Strength must be in (0, 1]"]),
        (["--scheduler", "Eulerish"], ["Unknown scheduler", "Euler a", "DPM++ 2M Karras"]),
        (["--init-image", "does-not-exist.png"], ["does not exist"]),
    ],
)
def test_bad_request(capsys, tmp_path, args, needles):
    code, _, err = _run(capsys, "generate", "cat", *args, "--out", str(tmp_path))
    _assert_user_error(code, err, *needles)


def test_missing_model_path(capsys, tmp_path):
    code, _, err = _run(capsys, "generate", "cat", "--model", str(tmp_path / "nope.safetensors"),
                        "--out", str(tmp_path))
    _assert_user_error(code, err, "does not exist")


def test_folder_that_is_not_a_model(capsys, tmp_path):
    (tmp_path / "stuff").mkdir()
    code, _, err = _run(capsys, "generate", "cat", "--model", str(tmp_path / "stuff"),
                        "--out", str(tmp_path))
    _assert_user_error(code, err, "not a diffusers model folder")


def test_missing_demo_model(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SDSTUDIO_RESOURCES", str(tmp_path))
    code, _, err = _run(capsys, "generate", "cat", "--out", str(tmp_path))
    _assert_user_error(code, err, "demo model is not installed")


def test_truncated_safetensors(capsys, tiny_model_dir, tmp_path):
    data = (tiny_model_dir / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(data[: len(data) // 2])
    code, _, err = _run(capsys, "generate", "cat", "--model", str(bad), "--out", str(tmp_path))
    _assert_user_error(code, err, "not a valid .safetensors file")


def test_corrupt_safetensors(capsys, tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(os.urandom(4096))
    code, _, err = _run(capsys, "generate", "cat", "--model", str(bad), "--out", str(tmp_path))
    _assert_user_error(code, err, "not a valid .safetensors file")


def test_safetensors_that_is_not_sd(capsys, tiny_model_dir, tmp_path):
    f = tiny_model_dir / "unet" / "diffusion_pytorch_model.safetensors"
    code, _, err = _run(capsys, "generate", "cat", "--model", str(f), "--out", str(tmp_path))
    _assert_user_error(code, err, "not a Stable Diffusion checkpoint")


class _Payload:
    """Unpickling this calls open(marker, "w"): the marker file appears if code ever runs."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("suffix", [".ckpt", ".pt"])
def test_pickle_with_code_is_refused_without_running_it(capsys, tmp_path, suffix):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / f"evil{suffix}"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Payload(marker)}, ckpt)
    assert not marker.exists()
    code, _, err = _run(capsys, "generate", "cat", "--model", str(ckpt), "--out", str(tmp_path))
    _assert_user_error(code, err, "contains code", "refused")
    assert not marker.exists()


def test_weights_only_ckpt_that_is_not_sd(capsys, tmp_path):
    ckpt = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, ckpt)
    code, _, err = _run(capsys, "generate", "cat", "--model", str(ckpt), "--out", str(tmp_path))
    _assert_user_error(code, err, "not a Stable Diffusion checkpoint")


def test_real_entry_point_exit_code_and_no_traceback(tmp_path):
    """One run through the installed console entry (a fresh interpreter)."""
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"x": _Payload(marker)}, ckpt)
    proc = subprocess.run(
        [sys.executable, "-m", "sdstudio", "generate", "cat", "--model", str(ckpt), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not marker.exists()


def test_a_model_whose_native_size_is_absurd_is_refused_before_work(capsys, tiny_model_dir,
                                                                    tmp_path):
    """issue 13: `sample_size: 100000` in a UNet config asked for 160 GB and died in a traceback."""
    import json
    import shutil

    model = tmp_path / "huge"
    shutil.copytree(tiny_model_dir, model)
    config = model / "unet" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "sample_size": 100000}))
    code, _, err = _run(capsys, "generate", "cat", "--model", str(model), "--out", str(tmp_path))
    _assert_user_error(code, err, "Width must be at most 8192, got 800000")


@pytest.mark.parametrize(("flags", "memory", "compiled"), [
    ([], "auto", False),
    (["--memory", "tiled"], "tiled", False),
    (["--low-vram"], "offload", False),
    (["--compile", "--memory", "sequential"], "sequential", True),
])
def test_memory_and_compile_flags_reach_the_request(flags, memory, compiled):
    from sdstudio.cli import build_parser
    from sdstudio.commands.generate import request_from_args

    args = build_parser().parse_args(["generate", "cat", "--out", "x", *flags])
    request, _chosen = request_from_args(args)
    assert (request.memory, request.compile) == (memory, compiled)


def test_a_notice_said_during_the_job_is_printed_before_the_images(capsys, tiny_model_dir,
                                                                   tmp_path, monkeypatch):
    """Compiled mode's warm-up notice comes while the job runs, not after it."""
    from sdstudio.core import engine as engine_module

    real = engine_module.Engine.generate
    heard: list[str] = []

    def generate(self, request, on_step=None, should_cancel=None, on_image=None, on_notice=None):
        assert on_notice is not None
        on_notice("Compiling the UNet for 4×4 latents.")
        heard.append("told")
        return real(self, request, on_step=on_step, on_image=on_image, on_notice=on_notice)

    monkeypatch.setattr(engine_module.Engine, "generate", generate)
    code, out, err = _run(capsys, "generate", "a cat", "--model", str(tiny_model_dir),
                          "--steps", "1", "--out", str(tmp_path))
    assert code == 0 and heard == ["told"]
    assert "note: Compiling the UNet for 4×4 latents." in err
    assert Path(out.strip()).is_file()
