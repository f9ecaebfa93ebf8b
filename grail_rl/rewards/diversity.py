"""The choice-diversity group reward: within each prompt group, a completion scores by how few of its siblings
chose the same option.

GRPO compares a prompt's completions with each other; when they all pick the same option (a policy collapsing
onto one position), the task reward gives no advantage and the simulated viewers stop looking like a
population. For each completion with a valid answer, the reward is ``1 - same / (valid - 1)``, where ``same`` is
the number of other completions in its group with the same option and ``valid`` the number with a valid
answer: 1 when nobody else chose it, 0 when everybody did. A completion without a valid answer abstains, and
so does a group with a single valid answer (nothing to compare). Use it with a small weight beside
``accuracy``: it rewards spread, not correctness.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from grail_rl.plugins.base import GroupReward, PluginConfig
from grail_rl.rewards.columns import column, completion_texts
from grail_rl.rewards.parser import parse_answer_text


class DiversityConfig(PluginConfig):
    allow_bare_numbers: bool = Field(False, description="Read an answer written as a bare number, without tags.")


class ChoiceDiversityReward(GroupReward):
    """Group reward: 1 minus the share of the group's other valid answers that chose the same option."""

    name = "choice_diversity"
    Config = DiversityConfig
    row_fields = ("n_options",)

    def score_group(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        n = len(completions)
        sizes = column(columns, "n_options", n, reward=self.name) or [None] * n
        picks = []
        for text, size in zip(completion_texts(completions), sizes, strict=True):
            pick = parse_answer_text(text, allow_bare_numbers=self.config.allow_bare_numbers)  # type: ignore[attr-defined]
            valid = pick is not None and (size is None or 1 <= pick <= int(size))
            picks.append(pick if valid else None)
        counts = Counter(p for p in picks if p is not None)
        valid = sum(counts.values())
        if valid < 2:
            return [None] * n
        return [None if p is None else 1.0 - (counts[p] - 1) / (valid - 1) for p in picks]
