"""`sdstudio gallery list|search QUERY|show FILE|rebuild DIR` (no torch import: starts fast)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gallery", help="list, search and inspect the image gallery")
    gsub = p.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)

    def folder_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dir", help="gallery folder (default: the app's gallery folder)")
        q.add_argument("--limit", type=int, default=50, help="most images to print (0: all)")
        q.add_argument("--favourites", action="store_true", help="only favourites")
        q.add_argument("--oldest", action="store_true", help="oldest first")

    q = gsub.add_parser("list", help="the newest images")
    folder_arg(q)
    q.set_defaults(func=run_list, query="")

    q = gsub.add_parser("search", help='find images: words, "a phrase", seed:123, model:name, '
                                       "sampler:x, steps:20, cfg:7, size:512x512, neg:word, "
                                       "tool:comfyui, is:fav")
    q.add_argument("query")
    folder_arg(q)
    q.set_defaults(func=run_list)

    q = gsub.add_parser("show", help="print the generation parameters of any PNG")
    q.add_argument("file")
    q.add_argument("--json", action="store_true", help="print the full request as JSON")
    q.set_defaults(func=run_show)

    q = gsub.add_parser("rebuild", help="rebuild the index of a gallery folder from its files")
    q.add_argument("dir")
    q.set_defaults(func=run_rebuild)


def run_list(args: argparse.Namespace) -> int:
    from sdstudio.core.gallery import Gallery

    with Gallery(args.dir, create=args.dir is None) as g:
        _print_unreadable(g.last_sync.errors, len(g.last_sync.skipped))
        images = g.search(args.query, favourites_only=args.favourites,
                          newest_first=not args.oldest, limit=args.limit or None)
        for i in images:
            when = datetime.fromtimestamp(i.created).strftime("%Y-%m-%d %H:%M")
            prompt = i.prompt.replace("\n", " ")
            prompt = prompt if len(prompt) <= 60 else prompt[:59] + "…"
            star = "*" if i.favourite else " "
            print(f"{when}{star} seed {i.seed if i.seed is not None else '-':<12} {i.path}  {prompt}")
        shown = len(images)
        total = g.count()
    print(f"{shown} shown, {total} in {g.folder}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sdstudio.core.errors import UserError
    from sdstudio.core.png import display_name, read_png
    from sdstudio.core.png.parameters import clean_text

    p = read_png(args.file)
    if p is None:
        raise UserError(f"{display_name(Path(args.file))} has no generation parameters.")
    if args.json:
        data = {"source": p.source, "prompt": p.prompt, "negative_prompt": p.negative_prompt,
                "settings": p.settings, "request": p.request, "record": p.record}
        print(clean_text(json.dumps(data, indent=2, ensure_ascii=False, default=str)))
        return 0
    print(p.prompt)
    if p.negative_prompt:
        print(f"Negative prompt: {p.negative_prompt}")
    print(", ".join(f"{k}: {v}" for k, v in p.settings.items()))
    if p.source != "a1111":
        print(f"(read from {p.source} metadata)")
    return 0


def run_rebuild(args: argparse.Namespace) -> int:
    from sdstudio.core.gallery import Gallery

    start = time.perf_counter()
    with Gallery(args.dir, sync=False, create=False) as g:
        report = g.rebuild()
        total = g.count()
    for err in report.unreadable:
        print(f"skipped: {err}")
    print(f"indexed {total} images in {time.perf_counter() - start:.1f} s "
          f"({len(report.unreadable)} unreadable files skipped)")
    return 0


def _print_unreadable(new: list[str], known: int) -> None:
    """Each newly found bad file by name (the first ten); those known from before in one line."""
    for err in new[:10]:
        print(f"note: skipped {err}", file=sys.stderr)
    more = len(new) - 10 if len(new) > 10 else 0
    if more or known:
        print(f"note: {more + known} {'more ' if new else ''}files in the folder could not be read "
              "(`sdstudio gallery rebuild DIR` names them all)", file=sys.stderr)
