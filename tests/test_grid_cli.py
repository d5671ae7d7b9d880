"""`sdstudio grid` on a tiny model: every cell is the image `sdstudio generate` makes with the
same settings, pixel for pixel; the grid records the sweep and `--rerun` makes the same cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdstudio.cli import main
from sdstudio.core.png.io import read_png


def _run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.split(), err


def _pixels(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_grid_cells_equal_generate_and_rerun(capsys, tiny_model_dir, tmp_path):
    model = str(tiny_model_dir)
    code, paths, err = _run(capsys, "grid", "a photo of a cat", "--model", model, "--steps", "2",
                            "--x", "seed=1,2", "--y", "cfg=1,5", "--z", "sampler=Euler,DDIM",
                            "--out", str(tmp_path / "grid"))
    assert code == 0, err
    assert "8 cells (2 grids of 2×2)" in err
    cells, grids = paths[:4] + paths[5:9], [paths[4], paths[9]]
    assert [Path(p).name for p in grids] == ["grid-00000.png", "grid-00001.png"]
    for path in cells:  # each one alone through `generate`, the same settings
        params = read_png(path)
        assert params is not None
        r = params.to_request()
        assert (r.width, r.height) == (32, 32)  # the model's own size: not chosen, not an axis
        code, (single,), err = _run(
            capsys, "generate", r.prompt, "--model", model, "--steps", "2", "--seed", str(r.seed),
            "--guidance", str(r.guidance), "--scheduler", r.scheduler,
            "--out", str(tmp_path / f"one-{Path(path).stem}"))
        assert code == 0, err
        assert np.array_equal(_pixels(single), _pixels(path)), path
    grid = Image.open(grids[1])
    assert grid.width > 64 and grid.height > 64  # 2x2 cells of 32 px plus the labels

    code, again, err = _run(capsys, "grid", "--rerun", grids[0], "--out", str(tmp_path / "re"))
    assert code == 0, err
    assert len(again) == 10
    for a, b in zip(cells, again[:4] + again[5:9], strict=True):
        assert np.array_equal(_pixels(a), _pixels(b))


@pytest.mark.parametrize(("args", "needle"), [
    (["--x", "seed=a"], "The seed axis value 'a' is not a whole number"),
    (["--x", "steps=0,2"], "X axis (steps) value 0: Steps must be between 1"),
    (["--x", "colour=red"], "Unknown grid axis 'colour'"),
    ([], "Give at least one axis"),
    (["--x", "seed=1", "--batch", "2"], "the batch size must be 1"),
])
def test_bad_sweeps_are_one_sentence_before_any_work(capsys, tmp_path, args, needle):
    code, _, err = _run(capsys, "grid", "a cat", *args, "--out", str(tmp_path / "o"))
    assert code == 2 and "Traceback" not in err
    assert needle in err
    assert not (tmp_path / "o").exists()


def test_rerun_of_a_plain_image_is_one_sentence(capsys, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "p.png")
    code, _, err = _run(capsys, "grid", "--rerun", str(tmp_path / "p.png"), "--out", str(tmp_path))
    assert code == 2 and "p.png is not an sdstudio grid" in err


def test_dry_run_lists_cells_in_order(capsys, tmp_path):
    code, out, err = _run(capsys, "grid", "a cat", "--x", "seed=1-3", "--dry-run",
                          "--out", str(tmp_path / "o"))
    assert code == 0 and "3 cells (a 3×1 grid)" in err
    assert out[:2] == ["0", "1"]
