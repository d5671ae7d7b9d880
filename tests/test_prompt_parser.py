"""A1111's prompt syntax: its own doctests, and the cases they leave out."""

from __future__ import annotations

import doctest

import pytest

from sdstudio.core.conditioning import (
    attention,
    entry_at,
    get_learned_conditioning_prompt_schedules,
    parse_extra_networks,
    parse_prompt_attention,
    schedule,
    schedules,
)


@pytest.mark.parametrize("module", [attention, schedules])
def test_a1111_doctests(module):
    """The doctests are A1111's own, copied from modules/prompt_parser.py."""
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 6 and result.failed == 0


def g(prompt: str, steps: int = 10):
    return get_learned_conditioning_prompt_schedules([prompt], steps)[0]


def test_attention_escapes_nesting_and_break():
    assert parse_prompt_attention(r"a \\ b") == [["a \\ b", 1.0]]
    assert parse_prompt_attention("((a)) [b]") == [
        ["a", 1.1 * 1.1], [" ", 1.0], ["b", 1 / 1.1]
    ]
    assert parse_prompt_attention("(a:1.5 )") == [["a", 1.5]]
    assert parse_prompt_attention("(a:-1)") == [["a", -1.0]]
    assert parse_prompt_attention("a BREAK b") == [["a", 1.0], ["BREAK", -1], ["b", 1.0]]
    assert parse_prompt_attention("") == [["", 1.0]]
    # A colon outside a weight and a ")" without its "(" stay text, as in A1111.
    assert parse_prompt_attention("a: b) c") == [["a: b) c", 1.0]]


def test_schedules_edge_cases_as_a1111_lark_grammar():
    """Outputs of A1111's own lark grammar (lark 1.1.5) for cases its doctests leave out."""
    assert g("[:2]") == [[2, ""], [10, ""]]
    assert g("]:[b:3]") == [[3, "]:"], [10, "]:b"]]  # stray brackets are single characters
    assert g("[[a:1]:2]") == [[1, ""], [2, ""], [10, "a"]]
    assert g("x [a:b] y [c:2]") == [[2, "x [a:b] y "], [10, "x [a:b] y c"]]
    # "|" outside an alternation is no part of the grammar: the prompt is used as written.
    # (A1111's doctest for "a [{b|d{:.5] c" predates that rule and fails on A1111 itself.)
    assert g("a [{b|d{:.5] c") == [[10, "a [{b|d{:.5] c"]]
    assert g("a | b [c:2]") == [[10, "a | b [c:2]"]]
    assert g("trailing \\") == [[10, "trailing \\"]]
    assert g("a [b:c:0]") == [[10, "a c"]]  # step 0: "to" from the first step
    assert g("a [b:c:99]") == [[10, "a b"]]  # clipped to the step count
    assert g("a [b:c:1e1]") == [[10, "a b"]]
    assert g("[a|b] [c:d:0.5]") == [[i, ("a" if i % 2 else "b") + (" c" if i <= 5 else " d")]
                                    for i in range(1, 11)]


def test_schedule_and_entry_at_count_steps_from_zero_like_a1111():
    entries = schedule("a [cat:dog:3]", 10)
    assert entries == [(3, "a cat"), (10, "a dog")]
    assert [entries[entry_at(entries, i)][1] for i in range(10)] == ["a cat"] * 4 + ["a dog"] * 6


def test_extra_network_tags_are_taken_out():
    text, nets = parse_extra_networks("a cat <lora:film grain:0.8>, <lora:x> <hypernet:h:1>")
    assert text == "a cat ,  "
    assert [(n.kind, n.name, n.weight) for n in nets] == [
        ("lora", "film grain", 0.8), ("lora", "x", 1.0), ("hypernet", "h", 1.0)
    ]


def test_a1111_module_comment_example():
    """The schedule A1111's prompt_parser documents in its module comment (100 steps)."""
    prompt = ("fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
              "[ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]")
    assert g(prompt, 100) == [
        [25, "fantasy landscape with a mountain and an oak in foreground shoddy"],
        [50, "fantasy landscape with a lake and an oak in foreground in background shoddy"],
        [60, "fantasy landscape with a lake and an oak in foreground in background masterful"],
        [75, "fantasy landscape with a lake and an oak in background masterful"],
        [100, "fantasy landscape with a lake and a christmas tree in background masterful"],
    ]
