"""X/Y/Z sweeps: values as A1111 writes them, cells in A1111's order, one sentence per bad value,
the labelled grid image and the sweep it records (torch-free, no model)."""

from __future__ import annotations

import pytest
from PIL import Image

from sdstudio.core.errors import UserError
from sdstudio.core.grid import AXES, Axis, GridError, Sweep, axis_kind, parse_values, rate
from sdstudio.core.grid_image import draw_grid, read_sweep, save_grid
from sdstudio.core.grid_run import GridAssembler
from sdstudio.core.request import GenerationRequest

BASE = GenerationRequest("a red circle on a blue background", steps=4, width=64, height=64)


@pytest.mark.parametrize(("axis", "text", "values"), [
    ("seed", "3,4", (3, 4)),
    ("seed", "1-8", (1, 2, 3, 4, 5, 6, 7, 8)),
    ("seed", "1-8 (+2)", (1, 3, 5, 7)),
    ("seed", "10-1 (-3)", (10, 7, 4)),  # A1111 stops before end + 1 in either direction
    ("steps", "1-10 [4]", (1, 4, 7, 10)),
    ("steps", "1-8 [3]", (1, 4, 8)),  # linspace truncated to integers, as A1111
    ("seed", " 1 - 3 , 7", (1, 2, 3, 7)),
    ("cfg", "0.5-1.0 [5]", (0.5, 0.625, 0.75, 0.875, 1.0)),
    ("cfg", "1-2 (+0.25)", (1.0, 1.25, 1.5, 1.75, 2.0)),
    ("cfg", "0.5-1.0", (0.5, 1.5)),  # A1111: without a step or count, the step is 1
    ("cfg", "2,7.5", (2.0, 7.5)),
    ("sampler", "Euler a,DPM++ 2M", ("Euler a", "DPM++ 2M")),
    ("prompt", 'red, "green, dark",blue', ("red", "green, dark", "blue")),
])
def test_values_as_a1111_writes_them(axis, text, values):
    got = parse_values(axis_kind(axis), text)
    assert got == (pytest.approx(values) if isinstance(values[0], float) else values)
    assert all(type(v) is axis_kind(axis).type for v in got)


@pytest.mark.parametrize(("text", "needle"), [
    ("seed=a", "'a' is not a whole number or a range"),
    ("cfg=1-", "'1-' is not a number"),
    ("seed=1-8 (+0)", "a step of 0"),
    ("seed=8-1", "gives no values"),
    ("seed=", "has no values"),
    ("colour=1", "Unknown grid axis 'colour'"),
    ("seed", "name=values"),
    ("cfg=nan", "not a finite number"),
    ("seed=1-99999999999", "more values than an axis takes"),
    ("steps=1-9 [99999999]", "more values than an axis takes"),
])
def test_bad_values_are_one_sentence(text, needle):
    with pytest.raises(UserError, match=None) as err:
        Axis.parse(text)
    assert needle in str(err.value)


def test_cells_run_in_a1111_order_and_index_the_grid():
    sweep = Sweep(BASE, Axis.parse("seed=3,4"), Axis.parse("cfg=2,7.5"),
                  Axis.parse("sampler=Euler a,DPM++ 2M")).validate()
    cells = sweep.cells()
    assert len(sweep) == 8 and sweep.shape == (2, 2, 2)
    assert [c.index for c in cells] == list(range(8))  # z outermost, then y, then x
    assert [(c.request.seed, c.request.guidance, c.request.scheduler) for c in cells[:3]] == [
        (3, 2.0, "Euler a"), (4, 2.0, "Euler a"), (3, 7.5, "Euler a")]
    assert cells[7].request.scheduler == "DPM++ 2M"
    assert sweep.cell_chosen() == {"seed", "guidance", "scheduler"}


def test_a_model_axis_is_looped_outermost():
    sweep = Sweep(BASE, Axis.parse("model=demo,other/model"), Axis.parse("seed=1,2"))
    order = [(c.ix, c.iy) for c in sweep.cells()]
    assert order == [(0, 0), (0, 1), (1, 0), (1, 1)]  # one model load per model
    assert [c.index for c in sweep.cells()] == [0, 2, 1, 3]


def test_prompt_sr_replaces_the_first_value_in_both_prompts():
    base = GenerationRequest("a red circle", negative_prompt="no red")
    sweep = Sweep(base, Axis.parse("prompt=red,green"))
    assert [(c.request.prompt, c.request.negative_prompt) for c in sweep.cells()] == [
        ("a red circle", "no red"), ("a green circle", "no green")]
    assert Axis.parse("prompt=red,green").labels() == ["red", "green"]
    assert Axis.parse("seed=1").labels() == ["Seed: 1"]
    assert Axis.parse("model=/a/b/tiny").labels() == ["tiny"]


def test_validation_lists_every_bad_axis_value_in_one_sentence_each():
    sweep = Sweep(BASE, Axis.parse("steps=0,4"), Axis.parse("width=64,100"),
                  Axis.parse("prompt=purple,green"))
    with pytest.raises(GridError) as err:
        sweep.validate()
    assert err.value.problems == [
        "X axis (steps) value 0: Steps must be between 1 and 1000, got 0.",
        "Y axis (width) value 100: Width must be a positive multiple of 8, got 100.",
        "Z axis: Prompt S/R did not find 'purple' (its first value) in the prompt or the "
        "negative prompt.",
    ]
    with pytest.raises(GridError, match="strength axis needs an init image"):
        Sweep(BASE, Axis.parse("strength=0.5,0.7")).validate()
    with pytest.raises(GridError, match="used twice"):
        Sweep(BASE, Axis.parse("seed=1"), Axis.parse("seed=2")).validate()
    with pytest.raises(GridError, match="batch size must be 1"):
        Sweep(GenerationRequest("x", batch_size=2), Axis.parse("seed=1")).validate()
    with pytest.raises(GridError, match="more than the 4096"):
        Sweep(BASE, Axis.parse("seed=1-100"), Axis.parse("steps=1-50")).validate()


def test_time_estimate_follows_steps_and_size():
    sweep = Sweep(BASE, Axis.parse("steps=4,8"))
    per = rate(2.0, BASE)  # a 4-step 64x64 image took 2 s
    assert sweep.estimate_seconds(per) == pytest.approx(6.0)  # 2 s + 4 s
    assert sweep.summary(per) == "2 cells (a 2×1 grid), about 6 s"


def test_every_axis_has_a_unique_name_and_label():
    names = [k.name for k in AXES] + [a for k in AXES for a in k.aliases]
    assert len(names) == len(set(names))
    assert len({k.label for k in AXES}) == len(AXES)


def test_grid_image_is_labelled_and_records_the_sweep(tmp_path):
    sweep = Sweep(BASE, Axis.parse("seed=3,4"), Axis.parse("cfg=2,7.5"),
                  Axis.parse("sampler=Euler a,DPM++ 2M"), chosen=frozenset({"width"}))
    assembler = GridAssembler(sweep)
    colours = ["red", "green", "blue", "yellow"] * 2
    done = []
    for cell in reversed(sweep.cells()):  # any order: Ray returns them as they finish
        done += assembler.add(cell.index, Image.new("RGB", (64, 64), colours[cell.index]),
                              f"{cell.index:05d}.png")
    assert done == [1, 0] and assembler.done()
    grid = assembler.grid(0)
    # the labels take a margin on the left and above; the cells keep their order
    assert grid.width > 128 and grid.height > 128
    left, top = grid.width - 128, grid.height - 128
    assert grid.getpixel((left + 10, top + 10)) == (255, 0, 0)
    assert grid.getpixel((left + 74, top + 74)) == (255, 255, 0)
    assert grid.getpixel((left // 2, top + 2)) == (255, 255, 255)
    margin = grid.crop((0, 0, grid.width, top)).convert("L")
    assert margin.getextrema()[0] < 100  # text was drawn above the columns
    path = save_grid(tmp_path, grid, sweep, 0, assembler.cell_files(0))
    assert path.name == "grid-00000.png"
    assert save_grid(tmp_path, grid, sweep, 1).name == "grid-00001.png"
    again = read_sweep(path)
    assert again == sweep
    info = Image.open(path).info
    assert "X Type: Seed" in info["parameters"] and 'X Values: "3,4"' in info["parameters"]
    assert '"cells": ["00000.png"' in info["sdstudio_grid"]


def test_reading_a_png_that_is_no_grid_is_one_sentence(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(UserError, match="plain.png is not an sdstudio grid"):
        read_sweep(path)


def test_draw_grid_leaves_out_the_margins_of_missing_axes():
    cells = [Image.new("RGB", (32, 32), "red")] * 2
    assert draw_grid(cells, 2, 1).size == (64, 32)
    assert draw_grid(cells, 2, 1, ["a", "b"]).size[0] == 64


def test_clip_skip_and_hires_axes_set_their_fields():
    from sdstudio.core.request import GenerationRequest

    base = GenerationRequest(prompt="a cat", hires_scale=2.0)
    sweep = Sweep(base, x=Axis.parse("clip_skip=1,2"), y=Axis.parse("hires_strength=0.3,0.6"),
                  z=Axis.parse("hires_steps=4,8")).validate()
    cells = sweep.cells()
    got = {(c.request.clip_skip, c.request.hires_strength, c.request.hires_steps) for c in cells}
    assert got == {(cs, hs, st) for cs in (1, 2) for hs in (0.3, 0.6) for st in (4, 8)}
