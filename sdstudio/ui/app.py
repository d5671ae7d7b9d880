"""run_app(): show the window first, then start the engine (torch is imported in the worker)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from sdstudio.core.paths import resources_dir
from sdstudio.ui.main_window import MainWindow


def run_app(argv: list[str] | None = None,
            on_shown: Callable[[MainWindow], None] | None = None) -> int:
    """Open the studio window and run the event loop; returns the exit code.

    `on_shown` is called once the window is on screen (the launch benchmark uses it).
    """
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(
        argv if argv is not None else sys.argv)
    app.setApplicationName("sdstudio")
    app.setOrganizationName("sdstudio")
    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "sdstudio.png")))
    window = MainWindow()
    window.show()
    # A full garbage collection walks every tracked object holding the GIL; with Qt, our modules
    # and torch that stalls the window for 0.5 s (stress/ui_freeze.py). Objects alive after
    # start-up, and again once the engine has imported torch, are moved out of its sight.
    gc.freeze()
    window.coreReady.connect(lambda _names: gc.freeze())
    app.aboutToQuit.connect(window.jobs.shutdown)  # join the worker however the app ends
    if on_shown is not None:
        QTimer.singleShot(0, lambda: on_shown(window))
    # Start importing torch in the worker thread only after the first paint.
    QTimer.singleShot(0, window.start_engine)
    return app.exec()
