"""An example grail-rl reward plugin: ``think_brevity`` rewards a short ``<think>`` section.

Install it with ``pip install ./plugins/grail-rl-brevity`` and use it in a recipe::

    rewards:
      - name: accuracy
      - name: think_brevity
        weight: 0.2
        max_words: 40
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from grail_rl.plugins import PluginConfig, RewardFunction, hookimpl

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)


def _text(completion: Any) -> str:
    """Completions are plain strings or chat-message lists; take the assistant's text either way."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content") or "") for m in completion if isinstance(m, dict))
    return ""


class ThinkBrevity(RewardFunction):
    """1.0 for a <think> section of at most max_words words, falling linearly to 0 at twice that."""

    name = "think_brevity"

    class Config(PluginConfig):
        max_words: int = Field(40, ge=1, description="Words allowed in <think> before the reward decays.")
        missing_think: float | None = Field(
            None, description="Reward when there is no <think> section; None abstains."
        )

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        limit = self.config.max_words
        scores: list[float | None] = []
        for completion in completions:
            match = _THINK.search(_text(completion))
            if match is None:
                scores.append(self.config.missing_think)
                continue
            words = len(match.group(1).split())
            scores.append(max(0.0, min(1.0, 2.0 - words / limit)))
        return scores


@hookimpl
def register_rewards(register):
    register(ThinkBrevity)
