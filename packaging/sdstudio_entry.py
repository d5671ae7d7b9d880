"""Entry point of the packaged app (PyInstaller runs this file as __main__)."""

from __future__ import annotations

import multiprocessing


def _main() -> int:
    from sdstudio.cli import main

    return main()


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not start the app again
    raise SystemExit(_main())
