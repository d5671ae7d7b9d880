"""The engine seam: model cache, model defaults, the per-image record, device limits, one
sentence for every user-caused error, and a job as a sequence of EngineEvents."""

from __future__ import annotations

import shutil

import pytest
import torch

from sdstudio.core import engine as engine_module
from sdstudio.core.engine import Engine, estimate_working_memory
from sdstudio.core.errors import (
    GenerationCancelled,
    ModelLoadError,
    UserError,
    describe,
    is_out_of_memory,
)
from sdstudio.core.events import EngineEvent, EventKind
from sdstudio.core.request import GenerationRequest


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> Engine:
    e = Engine()
    e.load(str(tiny_model_dir), "cpu", "fp32")
    return e


def _req(model, **kw) -> GenerationRequest:
    kw = {"steps": 2, "width": 32, "height": 32, **kw}
    return GenerationRequest("a red circle", model=str(model), device="cpu", dtype="fp32", **kw)


def test_the_model_is_cached_by_id_device_and_dtype(engine, tiny_model_dir):
    first = engine.model
    info = engine.load(str(tiny_model_dir), "cpu", "fp32")
    assert engine.model is first and info is engine.info
    assert (info.name, info.native_size, info.device, info.dtype) == ("tiny", 32, "cpu", "float32")


def test_model_defaults_fill_only_what_the_user_left_open(tmp_path, tiny_model_dir):
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    (model / "sdstudio.json").write_text('{"guidance": 3.0}')
    e = Engine()
    e.load(str(model), "cpu", "fp32")
    asked = GenerationRequest("x", width=512, height=256, guidance=9.0, model=str(model))
    assert e.with_model_defaults(asked, chosen=()).to_dict() == {
        **asked.to_dict(), "width": 32, "height": 32, "guidance": 3.0}
    kept = e.with_model_defaults(asked, chosen={"width", "guidance"})
    assert (kept.width, kept.height, kept.guidance) == (512, 32, 9.0)
    assert e.with_model_defaults(asked) == asked  # by default the user chose everything


def test_every_image_carries_the_record_of_the_loaded_model(engine, tiny_model_dir):
    result = engine.generate(_req(tiny_model_dir, batch_size=2))
    record = engine.record()
    assert record["device"] == "cpu" and record["dtype"] == "float32"
    assert record["scheduler_config"] == engine.model.scheduler_config
    assert [ev.record for ev in result.images] == [record, record]
    result.images[0].record["device"] = "changed"  # each image owns a copy
    assert engine.record()["device"] == "cpu"


def test_a_single_file_s_record_has_its_hash_without_rehashing(tmp_path):
    class Loaded:  # what load_model returns for a single file, without building one
        name, source, device, dtype = "f", "f.safetensors", torch.device("cpu"), torch.float32
        scheduler_config = {"num_train_timesteps": 1000}
        sha256, guidance, native_size = "ab" * 32, 7.5, 64
        vae_source = vae_sha256 = None

    assert engine_module._record(Loaded())["model_sha256"] == "ab" * 32


def test_run_job_events_in_order(engine, tiny_model_dir):
    events: list[EngineEvent] = []
    engine.run_job(5, _req(tiny_model_dir, steps=3, batch_size=2), events.append)
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.STARTED, *[EventKind.PROGRESS] * 3, EventKind.IMAGE,
                     EventKind.IMAGE, EventKind.FINISHED]
    assert {e.job_id for e in events} == {5}
    assert [e.payload.seed for e in events if e.kind is EventKind.IMAGE] == [0, 1]


def test_run_job_loads_a_new_model_and_says_so(tiny_model_dir):
    events: list[EngineEvent] = []
    Engine().run_job(1, _req(tiny_model_dir, steps=1), events.append)
    kinds = [e.kind for e in events]
    assert kinds[:3] == [EventKind.STARTED, EventKind.NOTICE, EventKind.LOADED]
    assert kinds[-1] is EventKind.FINISHED


def test_run_job_cancel_and_failures_are_events_not_exceptions(engine, tiny_model_dir, tmp_path):
    events: list[EngineEvent] = []
    engine.run_job(2, _req(tiny_model_dir, steps=50), events.append, should_cancel=lambda: True)
    assert [e.kind for e in events] == [EventKind.CANCELLED]

    events.clear()
    steps: list[int] = []

    def cancel_after_two() -> bool:
        steps.append(1)
        return len(steps) > 3

    engine.run_job(3, _req(tiny_model_dir, steps=50), events.append, cancel_after_two)
    assert events[-1].kind is EventKind.CANCELLED
    assert sum(e.kind is EventKind.PROGRESS for e in events) < 50

    events.clear()
    Engine().run_job(4, _req(tmp_path / "missing"), events.append)
    assert events[-1].kind is EventKind.FAILED and "does not exist" in events[-1].payload
    assert sum(e.kind.ends_job for e in events) == 1


def test_steps_beyond_the_model_s_schedule_are_refused(tmp_path, tiny_model_dir):
    model = tmp_path / "short"
    shutil.copytree(tiny_model_dir, model)
    config = model / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text().replace('"num_train_timesteps": 1000',
                                                 '"num_train_timesteps": 100'))
    e = Engine()
    e.load(str(model), "cpu", "fp32")
    assert e.model.scheduler_config["num_train_timesteps"] == 100
    with pytest.raises(UserError, match="Steps must be at most 100 for this model"):
        e.generate(_req(model, steps=200))


def test_a_job_the_device_cannot_hold_is_refused_before_work(engine, tiny_model_dir, monkeypatch):
    request = _req(tiny_model_dir, width=4096, height=4096, batch_size=4)
    need = estimate_working_memory(engine.model, request, "tiled")  # the CPU's lowest rung
    monkeypatch.setattr(engine_module, "free_device_memory", lambda device: need // 2)
    called = []
    monkeypatch.setattr(engine._pipeline, "generate", lambda *a, **kw: called.append(1))
    with pytest.raises(UserError) as err:
        engine.generate(request)
    message = str(err.value)
    assert message.startswith("4096×4096 with a batch of 4 needs about ")
    assert "lower the size or the batch" in message and not called


def test_memory_estimate_grows_with_size_batch_and_guidance(engine, tiny_model_dir):
    small = estimate_working_memory(engine.model, _req(tiny_model_dir, width=64, height=64))
    big = estimate_working_memory(engine.model, _req(tiny_model_dir, width=128, height=128))
    batch = estimate_working_memory(engine.model, _req(tiny_model_dir, width=64, height=64,
                                                       batch_size=4))
    no_cfg = estimate_working_memory(engine.model, _req(tiny_model_dir, width=64, height=64,
                                                        guidance=1.0))
    assert 4 * small <= big <= 5 * small  # pixels, plus the VAE attention (latent pixels²)
    assert small < batch < 4 * small and no_cfg < small


@pytest.mark.parametrize("exc", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    MemoryError(),
    RuntimeError("MPS backend out of memory (MPS allocated: 8 GB)"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory"),
])
def test_out_of_memory_on_any_device_is_one_sentence_and_unloads(exc, engine, tiny_model_dir,
                                                                  monkeypatch):
    assert is_out_of_memory(exc)
    loaded = engine.model
    e = Engine(loader=lambda *_: loaded)  # the shared model, not loaded again
    e.load(str(tiny_model_dir), "cpu", "fp32")

    def oom(*a, **kw):
        raise exc

    monkeypatch.setattr(e._pipeline, "generate", oom)
    events: list[EngineEvent] = []
    e.run_job(1, _req(tiny_model_dir), events.append)
    message = events[-1].payload
    assert events[-1].kind is EventKind.FAILED
    assert message.startswith("Out of memory at 32×32:") and "\n" not in message
    assert e.model is None  # unloaded: the next job starts clean


def test_describe():
    assert describe(ModelLoadError("No model at /x")) == "No model at /x."
    assert describe(UserError("Fine.")) == "Fine."
    assert describe(GenerationCancelled()) == "Cancelled."
    other = describe(ValueError("bad\nthing"))
    assert other == "Something went wrong: ValueError: bad thing."
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
