"""A sweep's cells on a pool of Ray actors, each holding one Engine (one loaded model).

The actor is a thin shell around `sdstudio.core.grid_run.run_cell`, the call the window and the
CLI make, so a cell from Ray is the image `sdstudio generate` makes, pixel for pixel. PNG bytes
(lossless) and the record come back to the driver, which saves them and draws the grids: the
gallery stays on one machine. One actor per GPU where the cluster has GPUs, else one per CPU
core. A cell whose actor died (its process or its node) runs again on another actor; cancel
kills the actors. Ray is imported only here.
"""

from __future__ import annotations

import io
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from sdstudio.core.errors import GenerationCancelled, UserError
from sdstudio.core.grid import Cell, Sweep
from sdstudio.core.grid_run import CellResult
from sdstudio.core.request import GenerationRequest

LOCAL_CPUS = 2  # `--ray local`: a Ray instance on this machine with this many CPUs
RETRIES = 2  # a cell whose actor died is run again on another actor this many times


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("Ray is not installed: install the cluster extra "
                        "(pip install 'sdstudio[cluster]').") from None
    return ray


class CellWorker:
    """The actor: one Engine, kept between cells (a model loads once per actor)."""

    def __init__(self) -> None:
        from sdstudio.core.engine import Engine

        self.engine = Engine()
        self.node = socket.gethostname()
        import ray

        share = None
        if ray.is_initialized():  # in an actor; two nodes may share a host name (or a machine)
            context = ray.get_runtime_context()
            self.node += f" (node {context.get_node_id()[:8]})"
            share = context.get_assigned_resources().get("CPU")
        from sdstudio.core import threads

        threads.configure(share)  # the actor's CPU share (Ray also sets OMP_NUM_THREADS to it)

    def run(self, index: int, request: dict[str, Any], chosen: list[str]) -> dict[str, Any]:
        """One cell; a user-caused failure comes back as one sentence naming this worker."""
        from sdstudio.core.errors import describe, is_user_caused
        from sdstudio.core.grid_run import run_cell

        req = GenerationRequest.from_dict(request)
        model = os.path.expanduser(req.model)
        if _looks_like_path(req.model) and not os.path.exists(model):
            return {"index": index, "error": f"The model {req.model} is missing on worker "
                                             f"{self.node} (every node needs the same models "
                                             "folder path)."}
        try:
            result = run_cell(self.engine, Cell(index, 0, 0, 0, req), chosen)
        except Exception as exc:  # noqa: BLE001 - one sentence back to the driver
            if not is_user_caused(exc):
                raise  # a bug: Ray carries the traceback to the driver
            return {"index": index, "error": f"Worker {self.node}: {describe(exc)}"}
        buf = io.BytesIO()
        result.image.save(buf, format="PNG", compress_level=1)
        return {"index": index, "png": buf.getvalue(), "request": result.request.to_dict(),
                "seed": result.seed, "record": result.record, "seconds": result.seconds,
                "notices": result.notices, "worker": self.node}


def _looks_like_path(model: str) -> bool:
    return os.sep in model or model.startswith((".", "~")) or model.lower().endswith(
        (".safetensors", ".ckpt"))


def connect(address: str) -> bool:
    """Join (or start) a Ray instance; True when this call started it (and should shut it)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "logging_level": logging.WARNING}
    try:
        if address == "local":  # always a new instance, even where a cluster runs
            ray.init(address="local", num_cpus=LOCAL_CPUS, **options)
        else:
            options.pop("include_dashboard")  # a running cluster decides about its dashboard
            ray.init(address=address, **options)
    except ConnectionError as exc:
        raise UserError(f"Could not join the Ray cluster at {address}: {exc}") from None
    return True


def actor_options(resources: dict[str, float], cells: int,
                  actors: int | None = None) -> tuple[int, dict[str, Any]]:
    """How many actors, and what each asks for: one GPU each where there are GPUs, else one CPU
    each."""
    gpus = int(resources.get("GPU", 0))
    per: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}
    most = gpus or max(1, int(resources.get("CPU", 1)))
    count = max(1, min(actors or most, most, cells))
    return count, per


def run_on_ray(sweep: Sweep, address: str = "local", actors: int | None = None,
               should_cancel: Callable[[], bool] = lambda: False) -> Iterator[CellResult]:
    """The sweep's cells on Ray actors, each result yielded to the driver as it finishes. A cell
    whose actor was lost (its process or node died) goes back to the queue for another actor."""
    ray = import_ray()
    from PIL import Image

    started = connect(address)
    workers: list[Any] = []
    try:
        count, options = actor_options(ray.cluster_resources(), len(sweep), actors)
        actor_class = ray.remote(CellWorker).options(**options)
        workers = [actor_class.remote() for _ in range(count)]
        chosen = sorted(sweep.cell_chosen())
        queue = deque((c.index, c.request.to_dict()) for c in sweep.cells())
        idle = list(workers)
        running: dict[Any, tuple[Any, tuple[int, dict[str, Any]]]] = {}  # future -> actor, cell
        lost: dict[int, int] = {}  # cell index -> times its actor was lost
        while queue or running:
            if should_cancel():
                raise GenerationCancelled()
            while queue and idle:
                actor, cell = idle.pop(), queue.popleft()
                running[actor.run.remote(cell[0], cell[1], chosen)] = (actor, cell)
            if not running:
                raise UserError(f"Every Ray worker was lost; {len(queue)} cells did not run.")
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            if not ready:
                continue  # (checks for cancel once a second)
            actor, cell = running.pop(ready[0])
            try:
                out = ray.get(ready[0])
            except _lost_errors(ray) as exc:
                lost[cell[0]] = lost.get(cell[0], 0) + 1
                if lost[cell[0]] > RETRIES:
                    raise UserError(f"Cell {cell[0] + 1} lost its Ray worker {lost[cell[0]]} "
                                    f"times; the last time: {type(exc).__name__}.") from None
                queue.appendleft(cell)  # the actor is gone: not put back into `idle`
                continue
            idle.append(actor)
            if "error" in out:
                raise UserError(out["error"])
            image = Image.open(io.BytesIO(out["png"]))
            image.load()
            yield CellResult(out["index"], image, GenerationRequest.from_dict(out["request"]),
                             int(out["seed"]), dict(out["record"]), float(out["seconds"]),
                             list(out["notices"]), str(out["worker"]))
    finally:
        for worker in workers:  # cancel: the cluster's work stops with its actors
            ray.kill(worker)
        if started:
            ray.shutdown()


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """What Ray raises for a task whose actor, worker process or node died."""
    e = ray.exceptions
    names = ("RayActorError", "WorkerCrashedError", "NodeDiedError", "ObjectLostError",
             "OwnerDiedError")
    return tuple(getattr(e, n) for n in names if isinstance(getattr(e, n, None), type))
