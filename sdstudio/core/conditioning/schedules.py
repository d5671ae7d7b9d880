r"""Prompt editing `[from:to:when]` and alternation `[a|b]`, as AUTOMATIC1111's prompt_parser.

A1111 parses these with a lark (Earley) grammar; lark is not a dependency here, so this module is
a hand-written parser for the same grammar, with the same lexing (each terminal matches the
longest text it can from where it starts) and the same output:

    start:       (prompt | /[][():]/+)*
    prompt:      (emphasized | scheduled | alternate | plain | WHITESPACE)*
    emphasized:  "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
    scheduled:   "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
    alternate:   "[" prompt ("|" [prompt])+ "]"
    plain:       /([^\\\[\]():|]|\\.)+/

Emphasis is kept as text here (it is weighted later by `attention.parse_prompt_attention`); only
scheduled and alternate parts change with the step. A prompt the grammar cannot parse (a stray
`|` or a lone trailing backslash) is used as it is for every step, as A1111 does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_PLAIN = re.compile(r"(?:[^\\\[\]():|]|\\.)+")
_WHITESPACE = re.compile(r"\s+")
_STRAY = re.compile(r"[\[\]():]")  # one char: the `+` is on the rule
# lark's common.SIGNED_NUMBER: ["+"|"-"] (FLOAT | INT), FLOAT tried first.
_NUMBER = re.compile(r"[+-]?(?:\d+[eE][+-]?\d+|(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+)")


class _ParseError(Exception):
    pass


@dataclass
class _Scheduled:
    before: list | None
    after: list
    number: str  # as written: "." in it makes it a fraction of the steps
    when: int = 0  # resolved against the step count by `_collect_steps`


@dataclass
class _Alternate:
    options: list = field(default_factory=list)  # None for an empty option


class _Parser:
    def __init__(self, text: str):
        self.text = text

    def start(self) -> list:
        """Top level: prompts, and runs of unmatched brackets/colons kept as text."""
        pos, text = 0, self.text
        nodes: list[object] = []
        while pos < len(text):
            part, end = self.prompt(pos)
            nodes += part
            if end == len(text):
                break
            m = _STRAY.match(text, end)
            if m is None:  # "|" or a lone backslash: nothing in the grammar matches
                raise _ParseError(end)
            nodes.append(m.group(0))
            pos = m.end()
        return nodes

    def prompt(self, pos: int) -> tuple[list, int]:
        text = self.text
        nodes: list[object] = []
        while pos < len(text):
            m = _PLAIN.match(text, pos)
            if m:
                nodes.append(m.group(0))
                pos = m.end()
                continue
            if text[pos] in "([":
                try:
                    node, pos = self.bracketed(pos)
                except _ParseError:
                    break
                nodes.append(node)
                continue
            break
        return nodes, pos

    def expect(self, pos: int, char: str) -> int:
        if pos < len(self.text) and self.text[pos] == char:
            return pos + 1
        raise _ParseError(pos)

    def bracketed(self, pos: int) -> tuple[object, int]:
        if self.text[pos] == "(":
            first, end = self.prompt(pos + 1)
            if end < len(self.text) and self.text[end] == ":":
                second, end = self.prompt(end + 1)
                end = self.expect(end, ")")
                return ["(", *first, ":", *second, ")"], end
            return ["(", *first, ")"], self.expect(end, ")")
        first, end = self.prompt(pos + 1)
        nxt = self.text[end] if end < len(self.text) else ""
        if nxt == "]":
            return ["[", *first, "]"], end + 1
        if nxt == "|":
            options: list[list | None] = [first]
            while end < len(self.text) and self.text[end] == "|":
                option, end = self.prompt(end + 1)
                options.append(option or None)
            return _Alternate(options), self.expect(end, "]")
        if nxt != ":":
            raise _ParseError(end)
        when = self.number_close(end + 1)
        if when is not None:  # [to:when]
            return _Scheduled(None, first, when[0]), when[1]
        second, end = self.prompt(end + 1)
        end = self.expect(end, ":")
        when = self.number_close(end)
        if when is None:
            raise _ParseError(end)
        return _Scheduled(first, second, when[0]), when[1]

    def number_close(self, pos: int) -> tuple[str, int] | None:
        """`[WHITESPACE] NUMBER [WHITESPACE] "]"` from pos: (number text, end) or None."""
        text = self.text
        ws = _WHITESPACE.match(text, pos)
        pos = ws.end() if ws else pos
        m = _NUMBER.match(text, pos)
        if m is None:
            return None
        end = m.end()
        ws = _WHITESPACE.match(text, end)
        end = ws.end() if ws else end
        if end < len(text) and text[end] == "]":
            return m.group(0), end + 1
        return None


def _walk(nodes: list):
    for node in nodes:
        if isinstance(node, _Scheduled):
            yield node
            yield from _walk(node.before or [])
            yield from _walk(node.after)
        elif isinstance(node, _Alternate):
            yield node
            for option in node.options:
                yield from _walk(option or [])
        elif isinstance(node, list):
            yield from _walk(node)


def _collect_steps(tree: list, steps: int, int_offset: int, flt_offset: float, old: bool):
    res = {steps}
    for node in _walk(tree):
        if isinstance(node, _Alternate):
            res.update(range(1, steps + 1))
            continue
        v = float(node.number)
        if old:
            v = v * steps if v < 1 else v
        elif "." in node.number:
            v = (v - flt_offset) * steps
        else:
            v = v - int_offset
        node.when = min(steps, int(v))
        if node.when >= 1:
            res.add(node.when)
    return sorted(res)


def _text_at(nodes: list, step: int) -> str:
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Scheduled):
            out.append(_text_at(node.before or [], step) if step <= node.when else
                       _text_at(node.after, step))
        elif isinstance(node, _Alternate):
            option = node.options[(step - 1) % len(node.options)]
            out.append(_text_at(option or [], step))
        else:
            out.append(_text_at(node, step))
    return "".join(out)


def get_learned_conditioning_prompt_schedules(
    prompts: list[str], base_steps: int, hires_steps: int | None = None,
    use_old_scheduling: bool = False,
) -> list[list[list]]:
    """A1111's function of the same name: per prompt, [[until_step, text], ...].

    >>> g = lambda p: get_learned_conditioning_prompt_schedules([p], 10)[0]
    >>> g("test")
    [[10, 'test']]
    >>> g("a [b:3]")
    [[3, 'a '], [10, 'a b']]
    >>> g("a [b: 3]")
    [[3, 'a '], [10, 'a b']]
    >>> g("a [[[b]]:2]")
    [[2, 'a '], [10, 'a [[b]]']]
    >>> g("[(a:2):3]")
    [[3, ''], [10, '(a:2)']]
    >>> g("a [b : c : 1] d")
    [[1, 'a b  d'], [10, 'a  c  d']]
    >>> g("a[b:[c:d:2]:1]e")
    [[1, 'abe'], [2, 'ace'], [10, 'ade']]
    >>> g("a [unbalanced")
    [[10, 'a [unbalanced']]
    >>> g("a [b:.5] c")
    [[5, 'a  c'], [10, 'a b c']]
    >>> g("((a][:b:c [d:3]")
    [[3, '((a][:b:c '], [10, '((a][:b:c d']]
    >>> g("[a|(b:1.1)]")
    [[1, 'a'], [2, '(b:1.1)'], [3, 'a'], [4, '(b:1.1)'], [5, 'a'], [6, '(b:1.1)'], [7, 'a'], [8, '(b:1.1)'], [9, 'a'], [10, '(b:1.1)']]
    >>> g("[fe|]male")
    [[1, 'female'], [2, 'male'], [3, 'female'], [4, 'male'], [5, 'female'], [6, 'male'], [7, 'female'], [8, 'male'], [9, 'female'], [10, 'male']]
    >>> g("[fe|||]male")
    [[1, 'female'], [2, 'male'], [3, 'male'], [4, 'male'], [5, 'female'], [6, 'male'], [7, 'male'], [8, 'male'], [9, 'female'], [10, 'male']]
    >>> g = lambda p: get_learned_conditioning_prompt_schedules([p], 10, 10)[0]
    >>> g("a [b:.5] c")
    [[10, 'a b c']]
    >>> g("a [b:1.5] c")
    [[5, 'a  c'], [10, 'a b c']]
    """  # noqa: E501
    if hires_steps is None or use_old_scheduling:
        int_offset, flt_offset, steps = 0, 0.0, base_steps
    else:
        int_offset, flt_offset, steps = base_steps, 1.0, hires_steps

    def get_schedule(prompt: str) -> list[list]:
        try:
            tree = _Parser(prompt).start()
        except _ParseError:
            return [[steps, prompt]]
        when = _collect_steps(tree, steps, int_offset, flt_offset, use_old_scheduling)
        return [[t, _text_at(tree, t)] for t in when]

    cache = {prompt: get_schedule(prompt) for prompt in set(prompts)}
    return [cache[prompt] for prompt in prompts]


def schedule(prompt: str, steps: int) -> list[tuple[int, str]]:
    """[(until_step, text), ...] for a prompt and a step count (see `entry_at`)."""
    return [(t, text) for t, text in get_learned_conditioning_prompt_schedules([prompt], steps)[0]]


def entry_at(entries: Sequence[tuple[int, Any]], step: int) -> int:
    """Index of the entry for 0-based `step`: the first whose until_step >= step.

    As A1111's `reconstruct_cond_batch`, whose step counts the denoiser's calls from 0: with
    "[a:b:3]" and 10 steps, "a" conditions steps 0..3 and "b" steps 4..9.
    """
    for index, (until, _) in enumerate(entries):
        if step <= until:
            return index
    return 0
