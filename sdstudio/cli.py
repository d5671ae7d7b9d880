"""Command line: `sdstudio` opens the window; subcommands run the same core calls for scripts.

Each subcommand lives in `sdstudio/commands/<name>.py` with `register(subparsers)`; they import
torch lazily so `sdstudio` (the window) and `--help` start fast. A command whose module fails to
import is still listed: running it says why it cannot run (and the self-test fails on it), so a
broken install or frozen build never silently loses a command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sdstudio.core.errors import UserError, describe, is_user_caused

COMMAND_MODULES = ("generate", "grid", "outpaint", "upscale", "vae", "schedulers", "gallery",
                   "train_demo")


def import_errors() -> dict[str, str]:
    """Command name -> why its module does not import (empty when all of them do)."""
    errors = {}
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"sdstudio.commands.{name}")
        except Exception as exc:  # noqa: BLE001 - any failure is reported, none hidden
            errors[name] = f"{type(exc).__name__}: {exc}"
    return errors


def _register_broken(sub: argparse._SubParsersAction, name: str, reason: str) -> None:
    p = sub.add_parser(name.replace("_", "-"), help=f"(cannot run: {reason})")

    def run(_args: argparse.Namespace) -> int:
        raise UserError(f"The {name} command cannot run: its module failed to import ({reason}).")

    p.set_defaults(func=run)


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
        except Exception as exc:  # noqa: BLE001 - listed anyway, see the module docstring
            _register_broken(sub, name, f"{type(exc).__name__}: {exc}")
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
    except Exception as exc:
        if not is_user_caused(exc):  # a bug: the traceback is what a bug report needs
            raise
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
