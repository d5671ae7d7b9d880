"""Models: loading (folders, single files, cached hub ids) and safe weight files."""

from sdstudio.core.models.loading import LoadedModel, load_model, resolve_device

__all__ = ["LoadedModel", "load_model", "resolve_device"]
