"""The GPU benchmark runs on the CPU too: its --small mode, one case, two modes, in-process."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_gpu", None)


def test_small_cpu_run_prints_and_writes_every_figure(bench, tmp_path, capsys):
    out = tmp_path / "bench.json"
    report = bench.main(["--small", "--device", "cpu", "--cases", "sd15-512-20",
                         "--modes", "fast", "sliced", "offload", "--repeats", "1",
                         "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report, default=str))
    rows = {r["mode"]: r for r in report["results"]}
    assert set(rows) == {"fast", "sliced", "offload"}
    assert "accelerator" in rows["offload"]["skipped"]  # no offload on the CPU, and it says so
    for mode in ("fast", "sliced"):
        r = rows[mode]
        assert r["case"] == "sd15-512-20" and r["batch"] == 1 and not r["skipped"]
        for key in ("ratio", "ours_s_per_image", "diffusers_s_per_image", "ours_it_s",
                    "diffusers_it_s", "ours_first_preview_s", "diffusers_first_step_s",
                    "preview_pct_of_step"):
            assert math.isfinite(r[key]) and r[key] > 0, (mode, key, r[key])
        assert math.isclose(r["ratio"], r["ours_s_per_image"] / r["diffusers_s_per_image"])
        assert r["ours_peak_mb"] >= 0 and "NOT comparable" in r["memory"]
        assert r["ours_syncs"] is None  # counted on CUDA only
    printed = capsys.readouterr().out
    assert printed.count("ratio ours/diffusers") == 2
    assert "RSS delta (not VRAM)" in printed and "first preview" in printed
    assert "sd15-512-20 offload" in printed and "skipped" in printed


def test_modes_set_diffusers_up_and_put_the_shared_modules_back(bench, tmp_path):
    import torch

    model = bench.small_model("sd15", torch.device("cpu"), torch.float32, tmp_path)
    from sdstudio.core.pipeline import fresh_scheduler

    pipe = bench.diffusers_pipeline(model, fresh_scheduler("Euler", model.scheduler_config))
    before = {k: type(v) for k, v in model.unet.attn_processors.items()}
    with bench.diffusers_mode(pipe, "tiled"):
        assert model.vae.use_slicing and model.vae.use_tiling
        assert {type(p).__name__ for p in model.unet.attn_processors.values()} == {
            "SlicedAttnProcessor"}
    assert not model.vae.use_slicing and not model.vae.use_tiling
    assert {k: type(v) for k, v in model.unet.attn_processors.items()} == before
