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

# A lazy think body plus a check of its content afterwards: cheaper than a tempered pattern that tests
# every character for a tag, and it still rejects "<think>a</think>b</think>..." (the body holds a tag).
_FORMAT_RE = re.compile(
    r"\s*<think>(.*?)</think>\s*<answer>\s*\d{1,9}\s*</answer>\s*"
    r"(?:<opinion>\s*(increase|decrease|no_change)\s*</opinion>\s*)?",
    re.DOTALL | re.ASCII,
)
_ANY_TAG_RE = re.compile(r"</?(?:think|answer|opinion)\s*>", re.IGNORECASE | re.ASCII)


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
        opinion = self.config.opinion  # type: ignore[attr-defined]
        fullmatch = _FORMAT_RE.fullmatch
        tag = _ANY_TAG_RE.search
        rewards: list[float | None] = []
        for text in completion_texts(completions):
            match = fullmatch(text)
            if match is None or tag(match[1]) is not None:
                rewards.append(0.0)
            elif opinion == "optional":
                rewards.append(1.0)
            else:
                rewards.append(float((match[2] is not None) == (opinion == "required")))
        return rewards
