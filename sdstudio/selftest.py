"""`sdstudio --self-test`: prove an installation works, end to end, without a display.

Loads the demo model (or `SDSTUDIO_SELFTEST_MODEL=<path>`), builds every scheduler of the menu,
generates one small image with a few steps, checks that the image decoded to real pixels, that Qt
(offscreen) can read it, and that its generation parameters survive a round trip through the PNG. Prints `self-test passed` and returns
0, or prints which check failed and why and returns 1. The packaged app runs the same code, so
this also catches what freezing breaks (missing modules, plugins or data files).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from PIL import Image

    from sdstudio.core.models import LoadedModel
    from sdstudio.core.request import GenerationRequest

MODEL_ENV = "SDSTUDIO_SELFTEST_MODEL"
PROMPT = "a red circle on a blue background"
NEGATIVE = "blurry"
SEED = 1234
STEPS = 4
MAX_SIZE = 128  # generate at the model's native size, but never bigger than this
PASSED = "self-test passed"
# Request fields whose values must come back unchanged from the PNG.
ROUND_TRIP_FIELDS = ("prompt", "negative_prompt", "seed", "steps", "guidance", "scheduler",
                     "width", "height", "model")

T = TypeVar("T")
_qt_app: object | None = None  # the QGuiApplication the self-test made, kept alive


class SelfTestFailure(Exception):
    """One check failed; the message says which and why."""


def _say(message: str) -> None:
    print(f"self-test: {message}", flush=True)


def _stage(name: str, func: Callable[[], T]) -> T:
    """Run one stage, timing it; any exception becomes a SelfTestFailure naming the stage."""
    start = time.perf_counter()
    try:
        result = func()
    except SelfTestFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - the point is to report anything at all
        raise SelfTestFailure(f"{name}: {type(exc).__name__}: {exc}") from exc
    _say(f"{name} ok ({time.perf_counter() - start:.2f} s)")
    return result


def check_qt() -> None:
    """Qt's GUI library and a platform plugin load (offscreen unless QT_QPA_PLATFORM says else)."""
    global _qt_app
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.instance() is None:
        _qt_app = QGuiApplication(["sdstudio", "--self-test"])
    platform = QGuiApplication.platformName()
    if not platform:
        raise SelfTestFailure("Qt: no platform plugin loaded")


def load() -> LoadedModel:
    from sdstudio.core.models import load_model
    from sdstudio.core.request import DEMO_MODEL

    return load_model(os.environ.get(MODEL_ENV) or DEMO_MODEL)


def check_schedulers(loaded: LoadedModel) -> None:
    """Every sampler in the menu builds from the model's scheduler config (diffusers imports each
    scheduler class lazily: a frozen app without one fails here, not when the user picks it)."""
    from sdstudio.core.schedulers import SAMPLERS, make_scheduler

    for spec in SAMPLERS:
        make_scheduler(spec.name, loaded.scheduler_config)


def make_request(loaded: LoadedModel) -> GenerationRequest:
    from sdstudio.core.request import DEMO_MODEL, GenerationRequest

    size = max(8, min(loaded.native_size, MAX_SIZE) // 8 * 8)
    return GenerationRequest(
        prompt=PROMPT, negative_prompt=NEGATIVE, seed=SEED, steps=STEPS, width=size,
        height=size, model=os.environ.get(MODEL_ENV) or DEMO_MODEL,
    ).validate()


def generate(loaded: LoadedModel, request: GenerationRequest) -> Image.Image:
    from sdstudio.core.pipeline import StableDiffusion

    result = StableDiffusion(loaded).generate(request)
    if len(result.images) != 1:
        raise SelfTestFailure(f"generate: expected 1 image, got {len(result.images)}")
    event = result.images[0]
    if event.seed != request.seed:
        raise SelfTestFailure(f"generate: image seed {event.seed}, asked for {request.seed}")
    return event.image


def check_pixels(image: Image.Image, request: GenerationRequest) -> None:
    """The VAE decoded to a real picture: right size, finite, not one flat colour."""
    import numpy as np

    if image.size != (request.width, request.height):
        raise SelfTestFailure(f"decode: image is {image.size}, expected {request.width}x{request.height}")
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    if not np.isfinite(pixels).all():
        raise SelfTestFailure("decode: the image has non-finite pixels")
    if float(pixels.std()) < 1.0:
        raise SelfTestFailure(f"decode: the image is one flat colour (mean {pixels.mean():.1f}): "
                              "NaNs in the VAE or a broken model")


def check_qt_reads(path: Path, image: Image.Image) -> None:
    """Qt decodes the saved PNG to the same size (what the window and gallery will show)."""
    from PySide6.QtGui import QImage

    qimage = QImage(str(path))
    if qimage.isNull() or (qimage.width(), qimage.height()) != image.size:
        raise SelfTestFailure(f"Qt could not read the PNG back ({qimage.width()}x{qimage.height()})")


def check_round_trip(path: Path, image: Image.Image, request: GenerationRequest) -> None:
    """Pixels are lossless and the parameters (A1111 text and our JSON) come back the same."""
    import numpy as np
    from PIL import Image as PILImage

    from sdstudio.core.png import parse_parameters, read_png

    with PILImage.open(path) as saved:
        same = np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(image.convert("RGB")))
        text = saved.info.get("parameters")
    if not same:
        raise SelfTestFailure("metadata: the pixels read back differ from those written")
    params = read_png(path)
    if params is None:
        raise SelfTestFailure("metadata: the PNG has no generation parameters")
    back = params.to_request()
    diffs = [f"{name}: wrote {getattr(request, name)!r}, read {getattr(back, name)!r}"
             for name in ROUND_TRIP_FIELDS if getattr(back, name) != getattr(request, name)]
    if diffs:
        raise SelfTestFailure("metadata: " + "; ".join(diffs))
    if not isinstance(text, str):
        raise SelfTestFailure("metadata: no A1111 `parameters` text chunk")
    a1111 = parse_parameters(text)  # what other tools read
    if (a1111.prompt, a1111.seed, a1111.steps) != (request.prompt, request.seed, request.steps):
        raise SelfTestFailure(f"metadata: the A1111 text reads back as {a1111.prompt!r}, "
                              f"seed {a1111.seed}, steps {a1111.steps}")


def _describe(request: GenerationRequest) -> str:
    names = ("width", "height", "steps", "scheduler", "seed")
    known = {f.name for f in fields(request)}
    return ", ".join(f"{n}={getattr(request, n)}" for n in names if n in known)


def _run() -> None:
    from sdstudio.core.png import write_png

    frozen = "packaged" if getattr(sys, "frozen", False) else "from source"
    _say(f"sdstudio {_version()} ({frozen}), Python {sys.version.split()[0]}")
    _stage("Qt platform plugin", check_qt)
    loaded = _stage(f"load model {os.environ.get(MODEL_ENV) or 'demo'}", load)
    _say(f"model {loaded.name} on {loaded.device}, native size {loaded.native_size}")
    _stage("schedulers", lambda: check_schedulers(loaded))
    request = _stage("request", lambda: make_request(loaded))
    image = _stage(f"generate ({_describe(request)})", lambda: generate(loaded, request))
    _stage("decoded pixels", lambda: check_pixels(image, request))
    with tempfile.TemporaryDirectory(prefix="sdstudio-selftest-") as tmp:
        path = Path(tmp) / "selftest.png"
        _stage("write PNG", lambda: write_png(path, image, request, request.seed))
        _stage("Qt reads the PNG", lambda: check_qt_reads(path, image))
        _stage("metadata round trip", lambda: check_round_trip(path, image, request))


def _version() -> str:
    from sdstudio import __version__

    return __version__


def run_self_test() -> int:
    """Run every check; print `self-test passed` and return 0, or the failure and return 1."""
    start = time.perf_counter()
    try:
        _run()
    except SelfTestFailure as failure:
        print(f"self-test FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - an unexpected failure still gets one line
        print(f"self-test FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    _say(f"all checks ok in {time.perf_counter() - start:.1f} s")
    print(PASSED, flush=True)
    return 0
