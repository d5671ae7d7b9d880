"""Adapters applied to a loaded model without reloading it: LoRA, textual-inversion embeddings."""
