"""Models: loading (folders, single files, cached hub ids) and safe weight files.

The loading names are imported on first use, so that torch-free parts (discovery, hashing,
per-model choices) can be imported without torch.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; at run time __getattr__ imports them on first use
    from sdstudio.core.models.loading import LoadedModel, load_model, resolve_device

__all__ = ["LoadedModel", "load_model", "resolve_device"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sdstudio.core.models import loading

        return getattr(loading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
