"""The strict format reward: 1 when the completion is exactly the structure the system prompt asks for.

That structure is ``<think>…</think>`` then ``<answer>N</answer>`` (digits only, no ``option`` prefix)
then, depending on ``opinion``, an ``<opinion>label</opinion>`` block with a canonical label
(``increase``, ``decrease``, ``no_change``). Tags are lowercase, only whitespace may sit between or
around the blocks, and the reasoning may not contain any of the tags itself. Anything else scores 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from grail_rl.plugins.base import PluginConfig, RewardFunction
from grail_rl.rewards.columns import completion_texts

# The structure is checked in pieces rather than with one pattern and a lazy "<think>(.*?)</think>" body:
# stepping a lazy body through 500 characters made the reward ten times slower than the answer parser.
# The body ends at the first "</think>" (a later one would put a tag inside the body, which is invalid).
_OPEN_RE = re.compile(r"\s*<think>", re.ASCII)
_TAIL_RE = re.compile(
    r"\s*<answer>\s*\d{1,9}\s*</answer>\s*(?:<opinion>\s*(increase|decrease|no_change)\s*</opinion>\s*)?",
    re.ASCII,
)
_ANY_TAG_RE = re.compile(r"</?(?:think|answer|opinion)\s*>", re.IGNORECASE | re.ASCII)
_CLOSE = "</think>"


# What structure() finds; the reward looks its score up by this code, one list index per completion.
INVALID, VALID, VALID_WITH_OPINION = 0, 1, 2
_SCORES: dict[str, tuple[float, float, float]] = {
    "optional": (0.0, 1.0, 1.0),
    "required": (0.0, 0.0, 1.0),
    "forbidden": (0.0, 1.0, 0.0),
}


def structure(text: str) -> int:
    """INVALID, VALID (no opinion block) or VALID_WITH_OPINION for one completion's text."""
    opened = _OPEN_RE.match(text)
    if opened is None:
        return INVALID
    start = opened.end()
    close = text.find(_CLOSE, start)
    if close < 0:
        return INVALID
    # Only a body holding "<" can hold a tag; the plain find spares the regex on most bodies.
    if text.find("<", start, close) >= 0 and _ANY_TAG_RE.search(text, start, close) is not None:
        return INVALID
    tail = _TAIL_RE.fullmatch(text, close + len(_CLOSE))
    if tail is None:
        return INVALID
    return VALID if tail[1] is None else VALID_WITH_OPINION


class FormatConfig(PluginConfig):
    opinion: Literal["optional", "required", "forbidden"] = Field(
        "optional",
        description="Whether the <opinion>...</opinion> block after the answer may appear (optional), "
        "must appear (required) or may not appear (forbidden, for the think/answer-only prompt).",
    )


class FormatReward(RewardFunction):
    """Strict tag structure: <think>...</think><answer>N</answer>[<opinion>label</opinion>] and nothing else."""

    name = "format"
    Config = FormatConfig

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        scores = _SCORES[self.config.opinion]  # type: ignore[attr-defined]
        return [scores[structure(text)] for text in completion_texts(completions)]
