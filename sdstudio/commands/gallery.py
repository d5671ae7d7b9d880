"""`sdstudio gallery list|search QUERY|show FILE|rebuild DIR|sources add|list|remove` (no torch
import: starts fast)."""

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
        where = q.add_mutually_exclusive_group()
        where.add_argument("--dir", help="gallery folder (default: the app's gallery folder)")
        where.add_argument("--source", help="a source folder (read-only: see `gallery sources`)")
        q.add_argument("--limit", type=int, default=50, help="most images to print (0: all)")
        q.add_argument("--favourites", action="store_true", help="only favourites")
        q.add_argument("--oldest", action="store_true", help="oldest first")

    q = gsub.add_parser("list", help="the newest images")
    folder_arg(q)
    q.set_defaults(func=run_list, query="")

    q = gsub.add_parser("search", help='find images: words, "a phrase", seed:123, model:name, '
                                       "sampler:x, steps:20, cfg:7, size:512x512, neg:word, "
                                       "tool:comfyui, is:fav, from:2026-01-01, to:2026-01-31, "
                                       "date:2026-01")
    q.add_argument("query")
    folder_arg(q)
    q.set_defaults(func=run_list)

    q = gsub.add_parser("show", help="print the generation parameters of any PNG")
    q.add_argument("file")
    q.add_argument("--json", action="store_true", help="print the full request as JSON")
    q.set_defaults(func=run_show)

    q = gsub.add_parser("sources", help="other tools' folders shown read-only in the gallery")
    ssub = q.add_subparsers(dest="sources_command", metavar="ACTION", required=True)
    s = ssub.add_parser("add", help="add a folder (indexed now; its files are never written)")
    s.add_argument("path")
    s.set_defaults(func=run_sources_add)
    s = ssub.add_parser("list", help="the source folders and how many images each holds")
    s.set_defaults(func=run_sources_list)
    s = ssub.add_parser("remove", help="take a folder off the list (its files are not touched)")
    s.add_argument("path")
    s.set_defaults(func=run_sources_remove)

    q = gsub.add_parser("rebuild", help="rebuild the index of a gallery folder from its files")
    q.add_argument("dir")
    q.set_defaults(func=run_rebuild)


def run_list(args: argparse.Namespace) -> int:
    from sdstudio.core.gallery import Gallery
    from sdstudio.core.gallery.sources import open_source

    opened = (open_source(args.source) if args.source
              else Gallery(args.dir, create=args.dir is None))
    with opened as g:
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


def run_sources_add(args: argparse.Namespace) -> int:
    from sdstudio.core.gallery.sources import add_source, open_source

    folder = add_source(args.path)
    with open_source(folder) as g:
        _print_unreadable(g.last_sync.errors, len(g.last_sync.skipped))
        total = g.count()
    print(f"added {folder} (read-only): {_images(total)} indexed")
    return 0


def run_sources_list(args: argparse.Namespace) -> int:
    from sdstudio.core.errors import UserError
    from sdstudio.core.gallery.sources import load_sources, open_source

    folders = load_sources()
    for folder in folders:
        try:
            with open_source(folder, sync=False) as g:
                state = _images(g.count())
        except UserError as exc:  # moved, unplugged drive: say so, list the others
            state = str(exc)
        print(f"{folder}  ({state})")
    print(f"{len(folders)} source folder{'s' if len(folders) != 1 else ''}")
    return 0


def run_sources_remove(args: argparse.Namespace) -> int:
    from sdstudio.core.gallery.sources import remove_source

    print(f"removed {remove_source(args.path)} (its files are untouched)")
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


def _images(n: int) -> str:
    return f"{n} image{'s' if n != 1 else ''}"


def _print_unreadable(new: list[str], known: int) -> None:
    """Each newly found bad file by name (the first ten); those known from before in one line."""
    for err in new[:10]:
        print(f"note: skipped {err}", file=sys.stderr)
    more = len(new) - 10 if len(new) > 10 else 0
    if more or known:
        print(f"note: {more + known} {'more ' if new else ''}files in the folder could not be read "
              "(`sdstudio gallery rebuild DIR` names them all)", file=sys.stderr)
