"""The cosine length reward: length shaping whose sign depends on whether the answer is right.

With ``t = min(L, max_length) / max_length`` (``L`` in tokens) and ``c = cos(pi * t)``, a correct
completion gets ``correct_min + (correct_max - correct_min) * (1 + c) / 2``: short right answers earn
most. A wrong one gets ``wrong_max + (wrong_min - wrong_max) * (1 + c) / 2``: short wrong answers are
punished most, so a wrong model is nudged to think longer. Correctness is the accuracy reward's video
rule, read with the shared parser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from grail_rl.plugins.base import PluginConfig, RewardFunction
from grail_rl.rewards.columns import as_int, column, completion_texts, token_lengths
from grail_rl.rewards.parser import parse_answer_text


class CosineLengthConfig(PluginConfig):
    max_length: int = Field(512, gt=0, description="Length in tokens at which the cosine reaches its end.")
    correct_min: float = Field(0.5, description="Reward of a correct completion at max_length.")
    correct_max: float = Field(1.0, description="Reward of a correct completion of length 0.")
    wrong_min: float = Field(-1.0, description="Reward of a wrong completion of length 0.")
    wrong_max: float = Field(-0.5, description="Reward of a wrong completion at max_length.")
    allow_bare_numbers: bool = Field(
        False, description="Read bare numbers as answers, as in the accuracy reward."
    )

    @model_validator(mode="after")
    def _ordered(self) -> CosineLengthConfig:
        if not (self.wrong_min <= self.wrong_max <= self.correct_min <= self.correct_max):
            raise ValueError("expected wrong_min <= wrong_max <= correct_min <= correct_max")
        if not all(
            math.isfinite(v) for v in (self.wrong_min, self.wrong_max, self.correct_min, self.correct_max)
        ):
            raise ValueError("the reward bounds must be finite numbers")
        return self


class CosineLengthReward(RewardFunction):
    """Cosine-scaled length reward: short right answers earn most, short wrong answers lose most."""

    name = "length"
    row_fields = ("gold_index", "n_options")
    Config = CosineLengthConfig

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        cfg: CosineLengthConfig = self.config  # type: ignore[assignment]
        n = len(completions)
        lengths = token_lengths(kwargs, n, reward=self.name)
        golds = column(kwargs, "gold_index", n, reward=self.name, required=True)
        sizes = column(kwargs, "n_options", n, reward=self.name) or [None] * n
        texts = completion_texts(completions)
        rewards: list[float | None] = []
        for text, length, gold, size in zip(texts, lengths, golds, sizes, strict=True):
            gold = as_int(gold)
            if gold is None or gold < 1:
                rewards.append(None)  # correctness unknown, so the sign of the shaping is unknown too
                continue
            pick = parse_answer_text(text, allow_bare_numbers=cfg.allow_bare_numbers)
            bound = as_int(size)
            correct = pick == gold and (bound is None or pick <= bound)
            cosine = math.cos(math.pi * min(length, cfg.max_length) / cfg.max_length)
            low, high = (cfg.correct_min, cfg.correct_max) if correct else (cfg.wrong_max, cfg.wrong_min)
            rewards.append(low + 0.5 * (high - low) * (1.0 + cosine))
        return rewards
