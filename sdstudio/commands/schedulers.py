from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schedulers", help="list the sampler names (display name and slug)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sdstudio.core.schedulers import SAMPLERS, slug

    for spec in SAMPLERS:
        print(f"{spec.name}\t{slug(spec.name)}")
    return 0
