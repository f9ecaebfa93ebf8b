"""The one parser for a model's answer and opinion, shared by rewards, evaluation and the discriminator.

A completion is what the model wrote: a plain string, or a list of chat messages (TRL passes
``[{"role": "assistant", "content": ...}]``). :func:`completion_text` turns either into one string.

The rules (DOMAIN.md section 4):

- The answer is the first ``<answer>N</answer>`` block whose content is an option number, optionally
  prefixed by ``option`` (``<answer> Option 3 </answer>``). Tags are case-insensitive; whitespace around
  the number is ignored. Signs, decimals, words, quotes and trailing punctuation make a block invalid
  (``<answer>3.</answer>``, ``<answer>-2</answer>``) and such blocks are skipped.
- Only ASCII digits count, and at most 9 significant digits: no slate has more options, and a longer
  run could not even be converted by ``int`` (Python refuses strings over 4,300 digits).
- A bare number (the whole completion is ``3`` or ``option 3``) counts only when the caller allows it.
- The opinion is the first ``<opinion>label</opinion>`` block with a known label; synonyms are mapped
  onto ``increase``, ``decrease`` and ``no_change`` (``up``, ``higher`` -> ``increase`` and so on).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

OPINION_LABELS: tuple[str, ...] = ("increase", "decrease", "no_change")

# Spellings a model (or a data file) uses for each label, after lowercasing and turning runs of spaces,
# hyphens and underscores into one "_".
_SPELLINGS: dict[str, str] = {
    "increase": "increase increases increased increasing up higher more rise raise go_up goes_up strengthen stronger",
    "decrease": "decrease decreases decreased decreasing down lower less fall drop go_down goes_down weaken weaker",
    "no_change": "no_change nochange no_changes same the_same stay_the_same stays_the_same remain_the_same "
    "unchanged stable neutral stay stays no_shift",
}
OPINION_SYNONYMS: dict[str, str] = {
    word: label for label, words in _SPELLINGS.items() for word in words.split()
}

# The answer pattern, public so that hot loops can bind ANSWER_RE.search once.
# re.ASCII matters: under Unicode case folding "ſ" matches "s" and "K" (Kelvin) matches "k", so
# "<anſwer>" would count as a tag, and \d would accept Arabic-Indic or full-width digits.
ANSWER_RE = re.compile(r"<answer>\s*(?:option\s*)?0*(\d{1,9})\s*</answer>", re.IGNORECASE | re.ASCII)
_BARE_RE = re.compile(r"\s*(?:option\s*)?0*(\d{1,9})\s*", re.IGNORECASE | re.ASCII)
# The label must start with a letter: were spaces allowed there, the surrounding \s* and the label
# could split a long run of whitespace in quadratically many ways.
_OPINION_RE = re.compile(r"<opinion>\s*([a-z][a-z_\- ]{0,39}?)\s*</opinion>", re.IGNORECASE | re.ASCII)
# Two plain searches rather than one lazy "<think>.*?</think>", which is quadratic on "<think>" * n.
_THINK_OPEN_RE = re.compile(r"<think>", re.IGNORECASE | re.ASCII)
_THINK_CLOSE_RE = re.compile(r"</think>", re.IGNORECASE | re.ASCII)
_SEPARATORS_RE = re.compile(r"[\s_\-]+")


def completion_text(completion: Any) -> str:
    """The text a model wrote: a string as is; a chat-message list as its assistant messages joined.

    Messages without a role count as the assistant's; other roles (a tool's output) are left out because
    the model did not write them. Content given as parts (``[{"type": "text", "text": ...}]``) is joined.
    ``None`` and anything unrecognised give ``""`` so that a reward scores it as unparsed.
    """
    if type(completion) is str:
        return completion
    if isinstance(completion, str):  # a str subclass
        return str(completion)
    if isinstance(completion, Mapping):
        return _content_text(completion.get("content"))
    if isinstance(completion, list | tuple):
        parts = []
        for message in completion:
            if isinstance(message, Mapping):
                if message.get("role", "assistant") == "assistant":
                    parts.append(_content_text(message.get("content")))
            elif isinstance(message, str):
                parts.append(message)
        return "".join(parts)
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping)
            and part.get("type", "text") == "text"
            and isinstance(part.get("text"), str)
        )
    return ""


def parse_answer_text(text: str, *, allow_bare_numbers: bool = False) -> int | None:
    """The option number in ``text`` (a string), or ``None`` when there is no valid answer."""
    match = ANSWER_RE.search(text)
    if match is not None:
        return int(match[1])
    if allow_bare_numbers:
        match = _BARE_RE.fullmatch(text)
        if match is not None:
            return int(match[1])
    return None


def parse_answer(completion: Any, *, allow_bare_numbers: bool = False) -> int | None:
    """The option number a completion (string or chat messages) chose, or ``None`` when unparsed."""
    return parse_answer_text(completion_text(completion), allow_bare_numbers=allow_bare_numbers)


def normalise_opinion_label(label: Any) -> str | None:
    """``increase`` / ``decrease`` / ``no_change`` for any known spelling; ``None`` otherwise."""
    if not isinstance(label, str):
        return None
    key = _SEPARATORS_RE.sub("_", label.strip().lower()).strip("_")
    return OPINION_SYNONYMS.get(key)


def parse_opinion_text(text: str) -> str | None:
    """The label of the first ``<opinion>`` block in ``text`` with a known label, or ``None``."""
    if "<" not in text:
        return None
    for match in _OPINION_RE.finditer(text):
        label = normalise_opinion_label(match[1])
        if label is not None:
            return label
    return None


def parse_opinion(completion: Any) -> str | None:
    """The opinion label a completion (string or chat messages) gave, or ``None``."""
    return parse_opinion_text(completion_text(completion))


def answer_follows_think(text: str) -> bool:
    """True when a closed ``<think>…</think>`` block ends before the first valid answer block."""
    answer = ANSWER_RE.search(text)
    if answer is None:
        return False
    opened = _THINK_OPEN_RE.search(text, 0, answer.start())
    return opened is not None and _THINK_CLOSE_RE.search(text, opened.end(), answer.start()) is not None
