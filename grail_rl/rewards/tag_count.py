"""The tag-count shaping reward: partial credit for each tag marker that appears exactly once.

The original's markers are ``<think>\\n``, ``\\n</think>\\n``, ``\\n<answer>\\n`` and ``\\n</answer>``,
worth 0.25 each. With ``opinion`` on, ``<opinion>`` and ``</opinion>`` join them and every marker is worth
1/6, so the reward always lies in [0, 1]. It rewards getting closer to the format before the strict
``format`` reward can fire.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from grail_rl.plugins.base import PluginConfig, RewardFunction
from grail_rl.rewards.columns import completion_texts

MARKERS: tuple[str, ...] = ("<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>")
OPINION_MARKERS: tuple[str, ...] = ("<opinion>", "</opinion>")


class TagCountConfig(PluginConfig):
    opinion: bool = Field(False, description="Also count the <opinion> and </opinion> tags.")


class TagCountReward(RewardFunction):
    """Partial credit for each of the think/answer tag markers that appears exactly once."""

    name = "tag_count"
    Config = TagCountConfig

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        markers = MARKERS + OPINION_MARKERS if self.config.opinion else MARKERS  # type: ignore[attr-defined]
        total = len(markers)
        # hits / total rather than a sum of shares: six sixths summed are not exactly 1.0.
        return [sum(text.count(m) == 1 for m in markers) / total for text in completion_texts(completions)]
