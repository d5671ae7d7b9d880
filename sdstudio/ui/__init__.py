"""The Qt studio window. Imports PySide6 and, lazily (in the worker thread), the core engine."""
