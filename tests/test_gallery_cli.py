"""`sdstudio gallery list|search|show|rebuild`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from sdstudio.cli import main
from sdstudio.core.gallery import Gallery
from sdstudio.core.request import GenerationRequest


@pytest.fixture
def filled():
    with Gallery() as g:
        g.save(Image.new("RGB", (8, 8)), GenerationRequest("a red cat, sleeping"), 11)
        g.save(Image.new("RGB", (8, 8)), GenerationRequest("a blue dog", "ugly"), 12)
        return g.folder


def test_list_and_search(filled, capsys):
    assert main(["gallery", "list"]) == 0
    out = capsys.readouterr().out
    assert "a red cat, sleeping" in out and "a blue dog" in out and "2 shown, 2 in" in out
    assert main(["gallery", "search", "cat"]) == 0
    out = capsys.readouterr().out
    assert "seed 11" in out and "seed 12" not in out
    assert main(["gallery", "search", "seed:12", "--dir", str(filled)]) == 0
    assert "a blue dog" in capsys.readouterr().out


def test_show_text_and_json(filled, capsys):
    path = next(filled.glob("*-12-*.png"))
    assert main(["gallery", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("a blue dog\nNegative prompt: ugly\nSteps: 20, Sampler: Euler a")
    assert main(["gallery", "show", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["request"]["seed"] == 12 and "versions" in data["record"]


def test_rebuild(filled, capsys):
    assert main(["gallery", "rebuild", str(filled)]) == 0
    assert "indexed 2 images" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["gallery", "show", "missing.png"], "missing.png does not exist."),
    (["gallery", "rebuild", "no/such/dir"], "does not exist or is not a folder."),
    (["gallery", "search", "seed:x"], "seed: needs a whole number"),
])
def test_errors_are_one_sentence(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_show_png_without_parameters(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert main(["gallery", "show", str(tmp_path / "plain.png")]) == 2
    assert "plain.png has no generation parameters." in capsys.readouterr().err


def test_gallery_commands_do_not_import_torch(filled):
    code = ("import sys, argparse; from sdstudio.commands import gallery as g; "
            "p = argparse.ArgumentParser(); g.register(p.add_subparsers()); "
            "a = p.parse_args(['gallery', 'list']); a.func(a); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("False")
