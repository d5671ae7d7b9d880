"""Test scaffolding: tiny random models and fakes. Not part of the engine."""
