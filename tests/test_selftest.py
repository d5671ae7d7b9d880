"""`sdstudio --self-test` with the tiny model, and the packaging files being well-formed.

The packaged build itself is slow and runs from `packaging/smoke_test.sh`, not here.
"""

from __future__ import annotations

import ast
import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sdstudio import cli, selftest

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"


def test_self_test_passes_with_tiny_model(tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setenv(selftest.MODEL_ENV, str(tiny_model_dir))
    assert selftest.run_self_test() == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == selftest.PASSED
    assert "metadata round trip ok" in out


def test_self_test_names_the_failure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(selftest.MODEL_ENV, str(tmp_path / "no-such-model"))
    assert selftest.run_self_test() == 1
    captured = capsys.readouterr()
    assert selftest.PASSED not in captured.out
    err = captured.err.strip()
    assert err.startswith("self-test FAILED: load model") and "no-such-model" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_cli_flag_runs_the_self_test(monkeypatch):
    monkeypatch.setattr(selftest, "run_self_test", lambda: 7)
    assert cli.main(["--self-test"]) == 7


def test_round_trip_check_catches_changed_metadata(tiny_model_dir, tmp_path):
    from PIL import Image

    from sdstudio.core.png import write_png
    from sdstudio.core.request import GenerationRequest

    image = Image.new("RGB", (32, 32), (200, 30, 30))
    written = GenerationRequest(prompt="a cat", seed=5, steps=3, width=32, height=32).validate()
    path = write_png(tmp_path / "x.png", image, written, written.seed)
    selftest.check_round_trip(path, image, written)
    other = GenerationRequest(prompt="a dog", seed=5, steps=3, width=32, height=32).validate()
    with pytest.raises(selftest.SelfTestFailure, match="prompt"):
        selftest.check_round_trip(path, image, other)


def test_flat_image_is_reported():
    from PIL import Image

    from sdstudio.core.request import GenerationRequest

    request = GenerationRequest(prompt="x", width=32, height=32)
    with pytest.raises(selftest.SelfTestFailure, match="flat colour"):
        selftest.check_pixels(Image.new("RGB", (32, 32)), request)


# ---------------------------------------------------------------- packaging files


def test_desktop_entry_is_well_formed():
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(PACKAGING / "linux" / "sdstudio.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Exec"] == "/opt/sdstudio/sdstudio"
    assert entry["Icon"] == "sdstudio" and entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(PACKAGING / "linux" / "sdstudio.desktop")],
                       check=True)


def test_icons_exist_and_decode():
    from PIL import Image

    with Image.open(ROOT / "resources" / "icons" / "sdstudio.png") as png:
        assert png.size == (256, 256) and png.mode == "RGBA"
    with Image.open(ROOT / "resources" / "icons" / "sdstudio.ico") as ico:
        assert (256, 256) in ico.info["sizes"]
    svg = ET.parse(ROOT / "resources" / "icons" / "sdstudio.svg").getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 256 256"


def test_spec_is_portable_python():
    text = (PACKAGING / "sdstudio.spec").read_text(encoding="utf-8")
    tree = ast.parse(text)  # a spec is Python
    assigned = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert {"a", "pyz", "exe", "coll"} <= assigned
    for absolute in ("/work/", "/home/", "/usr/", "C:\\", "/opt/"):
        assert absolute not in text, f"machine path {absolute} in the spec"


def test_spec_keeps_what_the_app_imports():
    """The pipelines and model families the spec keeps exist (renamed upstream = stale spec)."""
    import diffusers.pipelines
    import transformers.models

    namespace: dict = {}
    tree = ast.parse((PACKAGING / "sdstudio.spec").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                node.targets[0].id.startswith("KEEP_"):
            namespace[node.targets[0].id] = ast.literal_eval(node.value)
    pipelines = Path(diffusers.pipelines.__file__).parent
    models = Path(transformers.models.__file__).parent
    assert "stable_diffusion" in namespace["KEEP_DIFFUSERS_PIPELINES"]
    assert {"clip", "auto"} <= set(namespace["KEEP_TRANSFORMERS_MODELS"])
    for name in ("stable_diffusion", "pipeline_utils"):
        assert (pipelines / name).exists() or (pipelines / f"{name}.py").exists()
    for name in ("clip", "auto"):
        assert (models / name / "__init__.py").exists()


@pytest.mark.parametrize("script", ["build.sh", "smoke_test.sh", "deb_depends.sh"])
def test_packaging_scripts_parse(script):
    subprocess.run(["bash", "-n", str(PACKAGING / script)], check=True)
