"""The engine: plain Python on torch/diffusers. Never imports Qt (see the import-linter contract)."""
