"""CPU threads: physical cores shared between live engine processes, the user's setting first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from sdstudio.core import threads

# A second engine process: registers, says so, and holds its lock until stdin closes.
_OTHER = ("import sys; from sdstudio.core import threads; threads.register(); "
          "print('ready', flush=True); sys.stdin.read()")


@pytest.fixture
def cores(monkeypatch):
    for var in (threads.ENV, "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(threads, "physical_cores", lambda: 8)


def _other_engine() -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", _OTHER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_one_process_gets_every_physical_core(cores):
    threads.register()
    assert threads.live_engines() == 1
    assert threads.thread_count() == 8


def test_a_second_live_process_halves_the_count(cores):
    threads.register()
    other = _other_engine()
    try:
        assert threads.live_engines() == 2
        assert threads.thread_count() == 4
    finally:
        other.communicate("")
    assert threads.thread_count() == 8  # it ended: its share comes back at the next job


def test_a_killed_process_file_counts_for_nothing(cores):
    threads.register()
    other = _other_engine()
    os.kill(other.pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
    other.wait()
    stale = [p for p in threads.registry().iterdir() if p.name.startswith(f"{other.pid}-")]
    assert stale, "the killed process left its file behind (as a crash does)"
    assert threads.live_engines() == 1
    assert threads.thread_count() == 8
    assert not any(p.exists() for p in stale)  # and the count tidied it away


def test_the_user_setting_wins(cores, monkeypatch):
    threads.register()
    other = _other_engine()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert threads.thread_count() == 3
        monkeypatch.setenv(threads.ENV, "5")  # sdstudio's own variable before OpenMP's
        assert threads.thread_count() == 5
    finally:
        other.communicate("")


def test_a_ray_share_is_used_and_never_below_one(cores):
    assert threads.thread_count(share=2.0) == 2
    assert threads.thread_count(share=0.5) == 1
    assert threads.thread_count() >= 1


def test_configure_sets_torch(cores, monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv(threads.ENV, "1")
    try:
        assert threads.configure() == 1
        assert torch.get_num_threads() == 1
        assert threads.registry().is_dir()
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_background_hash_runs_at_the_lowest_priority(tmp_path):
    import threading

    from sdstudio.core.models import hashing

    model = tmp_path / "model.safetensors"
    model.write_bytes(b"x" * 1000)
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []  # the callback runs on the hash thread itself
    future = hashing.hash_in_background(
        model, lambda _p, _d: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    future.result()
    for _ in range(100):
        if seen:
            break
        threading.Event().wait(0.01)
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # only that thread
