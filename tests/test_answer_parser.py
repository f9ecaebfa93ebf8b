"""The shared answer/opinion parser: the documented rules, then properties over adversarial inputs."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from grail_rl.rewards.parser import (
    OPINION_LABELS,
    OPINION_SYNONYMS,
    answer_follows_think,
    completion_text,
    normalise_opinion_label,
    parse_answer,
    parse_answer_text,
    parse_opinion,
)

# DOMAIN.md section 4, written the plain way, restricted to ASCII digits and 9 significant digits.
REFERENCE = re.compile(r"<answer>\s*(option\s*)?(\d+)\s*</answer>", re.IGNORECASE | re.ASCII)


def reference_index(text: str) -> int | None:
    for match in REFERENCE.finditer(text):
        digits = match[2].lstrip("0") or "0"
        if len(digits) <= 9:
            return int(digits)
    return None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>3</answer>", 3),
        ("<think>\nx\n</think>\n<answer>\n2\n</answer>", 2),
        ("<ANSWER> Option 4 </ANSWER>", 4),
        ("<answer>option3</answer>", 3),
        ("<answer>007</answer>", 7),
        ("<answer>0</answer>", 0),  # parsed, and out of range for every slate
        ("<answer>3.</answer>", None),
        ('<answer>"3"</answer>', None),
        ("<answer>-2</answer>", None),
        ("<answer>+2</answer>", None),
        ("<answer>2.5</answer>", None),
        ("<answer>Option A</answer>", None),
        ("<answer>Parkland shooting</answer>", None),
        ("<answer>3", None),  # cut off before the closing tag
        ("<answer>3</answer><answer>4</answer>", 3),  # the first valid block decides
        ("<answer>x</answer> then <answer>4</answer>", 4),  # invalid blocks are skipped (DOMAIN regex)
        ("<answer><answer>2</answer></answer>", 2),
        ("<answer>٣</answer>", None),  # Arabic-Indic digit
        ("<answer>３</answer>", None),  # full-width digit
        ("<anſwer>3</anſwer>", None),  # long s folds to "s" only under Unicode case-insensitivity
        ("<answer>1234567890</answer>", None),  # more digits than any slate position
        ("<answer>0001234</answer>", 1234),
        ("<answer>" + "9" * 5000 + "</answer>", None),  # int() would refuse this many digits
        ("3", None),  # bare numbers need allow_bare_numbers
        ("", None),
    ],
)
def test_answer_rules(text: str, expected: int | None) -> None:
    assert parse_answer_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("  option 2 \n", 2),
        ("Option3", 3),
        ("3.", None),
        ("I pick 3", None),
        ("-1", None),
        ("", None),
    ],
)
def test_bare_numbers_only_when_allowed(text: str, expected: int | None) -> None:
    assert parse_answer_text(text, allow_bare_numbers=True) == expected
    assert parse_answer_text(text) is None


def test_tagged_answer_wins_over_bare_reading() -> None:
    assert parse_answer_text("<answer>2</answer>", allow_bare_numbers=True) == 2


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        ("plain", "plain"),
        (None, ""),
        (42, ""),
        ({"role": "assistant", "content": "a"}, "a"),
        ([{"role": "assistant", "content": "<answer>1</answer>"}], "<answer>1</answer>"),
        ([{"role": "assistant", "content": "a"}, {"role": "tool", "content": "b"}, {"content": "c"}], "ac"),
        ([{"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "image"}, "junk"]}], "x"),
        ([{"role": "assistant", "content": None}], ""),
        ([], ""),
        (["loose", " strings"], "loose strings"),
    ],
)
def test_completion_text_shapes(completion: object, text: str) -> None:
    assert completion_text(completion) == text


def test_message_list_parses_like_its_text() -> None:
    text = "<think>a</think><answer>3</answer><opinion>up</opinion>"
    messages = [{"role": "assistant", "content": text}]
    assert parse_answer(messages) == parse_answer(text) == 3
    assert parse_opinion(messages) == parse_opinion(text) == "increase"


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("increase", "increase"),
        ("Up", "increase"),
        ("HIGHER", "increase"),
        ("decrease", "decrease"),
        ("lower", "decrease"),
        ("no_change", "no_change"),
        ("No change", "no_change"),
        ("no-change", "no_change"),
        ("stay the same", "no_change"),
        ("  Unchanged ", "no_change"),
        ("maybe", None),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_opinion_labels(label: object, expected: str | None) -> None:
    assert normalise_opinion_label(label) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<opinion>increase</opinion>", "increase"),
        ("<OPINION> stay the same </OPINION>", "no_change"),
        ("<opinion>maybe</opinion>", None),
        ("<opinion>maybe</opinion><opinion>down</opinion>", "decrease"),
        ("<opinion>increase", None),
        ("increase", None),
        ("<opinion>" + " " * 50_000 + "x", None),
    ],
)
def test_opinion_parsing(text: str, expected: str | None) -> None:
    assert parse_opinion(text) == expected


def test_every_synonym_maps_to_a_label() -> None:
    assert set(OPINION_SYNONYMS.values()) == set(OPINION_LABELS)
    for label in OPINION_LABELS:
        assert normalise_opinion_label(label) == label


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>x</think><answer>1</answer>", True),
        ("<answer>1</answer><think>x</think>", False),
        ("<think>x<answer>1</answer></think>", False),
        ("<think></think>\n<answer> 2 </answer>", True),
        ("no answer <think>x</think>", False),
    ],
)
def test_answer_follows_think(text: str, expected: bool) -> None:
    assert answer_follows_think(text) is expected


# --- properties -------------------------------------------------------------------------------------

TAGS = [
    "<answer>",
    "</answer>",
    "<think>",
    "</think>",
    "<opinion>",
    "</opinion>",
    "option",
    "Option",
    " ",
    "\n",
]
pieces = st.one_of(
    st.sampled_from(TAGS),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.text(max_size=20),
    st.sampled_from(["+", "-", ".", '"', "٣", "３", "\u00a0", "\ud800", "🙂", "\x00"]),
)
adversarial_text = st.lists(pieces, max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(adversarial_text)
@example("<answer>" * 1000 + "1" * 5000 + "</answer>")
def test_parser_matches_the_reference_rule(text: str) -> None:
    assert parse_answer_text(text) == reference_index(text)


@settings(max_examples=300, deadline=None)
@given(adversarial_text, st.booleans())
def test_parser_never_raises_and_returns_small_ints(text: str, bare: bool) -> None:
    result = parse_answer_text(text, allow_bare_numbers=bare)
    assert result is None or (isinstance(result, int) and 0 <= result < 10**9)
    assert parse_opinion(text) in (None, *OPINION_LABELS)
    assert isinstance(answer_follows_think(text), bool)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**9 - 1), adversarial_text, st.sampled_from(["", " ", "\n", "\t "])
)
def test_a_valid_answer_after_text_without_one_is_found(index: int, prefix: str, pad: str) -> None:
    if reference_index(prefix) is None:
        assert parse_answer_text(f"{prefix}<answer>{pad}{index}{pad}</answer><answer>0</answer>") == index


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**9 - 1), st.sampled_from(["-", "+", "−"]))
def test_signed_numbers_are_never_answers(index: int, sign: str) -> None:
    assert parse_answer_text(f"<answer>{sign}{index}</answer>") is None
    assert parse_answer_text(f"{sign}{index}", allow_bare_numbers=True) is None


@settings(max_examples=100, deadline=None)
@given(adversarial_text)
def test_chat_messages_parse_like_plain_text(text: str) -> None:
    messages = [{"role": "assistant", "content": text}]
    assert parse_answer(messages) == parse_answer(text)
    assert parse_opinion(messages) == parse_opinion(text)


@pytest.mark.parametrize(
    "text",
    [
        "<answer>" + " " * 200_000,
        "<answer>" + "0" * 200_000,
        "<opinion>" + "a " * 100_000,
        "<think>" * 50_000 + "<answer>1</answer>",
        " " * 200_000 + "x",
        "<answer>\n" * 50_000,
    ],
)
def test_huge_hostile_inputs_stay_linear(text: str) -> None:
    start = time.perf_counter()
    parse_answer_text(text, allow_bare_numbers=True)
    parse_opinion(text)
    answer_follows_think(text)
    assert time.perf_counter() - start < 1.0
