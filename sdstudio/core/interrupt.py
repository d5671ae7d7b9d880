"""Cancelling inside a step: at huge sizes one UNet call or one VAE decode takes minutes, so the
pipeline's check before each step is not enough. While `interruptible` is active, a forward
pre-hook on each UNet block and each VAE decoder block asks `should_cancel` and stops the call
there (hooks only read the flag: the pixels are unchanged)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sdstudio.core.errors import GenerationCancelled


def _blocks(model: Any) -> list[Any]:
    """The UNet's down, mid and up blocks and the VAE decoder's blocks of a loaded model."""
    found: list[Any] = []
    unet = getattr(model, "unet", None)
    decoder = getattr(getattr(model, "vae", None), "decoder", None)
    for owner, names in ((unet, ("down_blocks", "up_blocks")), (decoder, ("up_blocks",))):
        for name in names:
            found.extend(getattr(owner, name, None) or [])
    for owner in (unet, decoder):
        mid = getattr(owner, "mid_block", None)
        if mid is not None:
            found.append(mid)
    return [m for m in found if hasattr(m, "register_forward_pre_hook")]


@contextmanager
def interruptible(model: Any, should_cancel: Callable[[], bool] | None) -> Iterator[None]:
    """Raise GenerationCancelled at the next block once `should_cancel()` is true."""
    if should_cancel is None:
        yield
        return

    def check(_module: Any, _args: Any) -> None:
        if should_cancel():
            raise GenerationCancelled()

    handles = [block.register_forward_pre_hook(check) for block in _blocks(model)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
