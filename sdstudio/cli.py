"""Command line: `sdstudio` opens the window; subcommands run the same core calls for scripts.

Each subcommand lives in `sdstudio/commands/<name>.py` with `register(subparsers)`; they import
torch lazily so `sdstudio` (the window) and `--help` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sdstudio.core.errors import UserError

COMMAND_MODULES = ("generate", "vae", "schedulers", "gallery", "train_demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdstudio", description="A desktop studio for Stable Diffusion."
    )
    parser.add_argument(
        "--self-test", action="store_true",
        help="generate one small image with the demo model offscreen and check it; exit 0 if it works",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"sdstudio.commands.{name}")
        except ModuleNotFoundError as exc:  # a command still being written
            if exc.name != f"sdstudio.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.self_test:
            from sdstudio.selftest import run_self_test

            return run_self_test()
        if args.command is None:
            from sdstudio.ui.app import run_app

            return run_app()
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
