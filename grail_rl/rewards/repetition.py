"""The n-gram repetition penalty: the share of repeated word n-grams, scaled to ``max_penalty``.

Words are the completion's lowercased, whitespace-separated tokens. With ``total`` n-grams of which
``unique`` are distinct, the reward is ``max_penalty * (1 - unique / total)``: 0 for text without a
repeated n-gram, approaching ``max_penalty`` for text that loops. Completions shorter than ``ngram_size``
words score 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from grail_rl.plugins.base import PluginConfig, RewardFunction
from grail_rl.rewards.columns import completion_texts


class RepetitionConfig(PluginConfig):
    ngram_size: int = Field(3, ge=1, le=64, description="Length of the word n-grams compared.")
    max_penalty: float = Field(
        -1.0, ge=-1e6, le=0.0, description="Reward of a completion made only of repeats."
    )


class RepetitionReward(RewardFunction):
    """N-gram repetition penalty: negative in proportion to the share of repeated word n-grams."""

    name = "repetition"
    Config = RepetitionConfig

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        size = self.config.ngram_size  # type: ignore[attr-defined]
        penalty = self.config.max_penalty  # type: ignore[attr-defined]
        rewards: list[float | None] = []
        for text in completion_texts(completions):
            words = text.lower().split()
            total = len(words) - size + 1
            if total <= 0:
                rewards.append(0.0)
                continue
            unique = len(set(zip(*(words[i:] for i in range(size)), strict=False)))
            rewards.append(penalty * (1.0 - unique / total))
        return rewards
