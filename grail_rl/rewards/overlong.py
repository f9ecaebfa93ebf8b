"""DAPO's soft overlong punishment: a penalty that grows linearly over the last tokens before the limit.

With ``L`` the completion's length in tokens, ``M = max_completion_length`` and ``B = buffer_length``:
0 while ``L <= M - B``; ``(M - B - L) / B`` (from 0 down to -1) inside the buffer; -1 beyond ``M``.
Set ``max_completion_length`` to the trainer's generation limit, or the buffer sits in the wrong place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from grail_rl.plugins.base import PluginConfig, RewardFunction
from grail_rl.rewards.columns import token_lengths


class SoftOverlongConfig(PluginConfig):
    max_completion_length: int = Field(512, gt=0, description="The generation limit, in tokens.")
    buffer_length: int = Field(
        128, gt=0, description="How many tokens before the limit the penalty starts (DAPO's soft cache)."
    )

    @model_validator(mode="after")
    def _buffer_fits(self) -> SoftOverlongConfig:
        if self.buffer_length > self.max_completion_length:
            raise ValueError("buffer_length must not exceed max_completion_length")
        return self


class SoftOverlongReward(RewardFunction):
    """DAPO soft overlong punishment: 0 up to the buffer, falling linearly to -1 at the length limit."""

    name = "soft_overlong"
    Config = SoftOverlongConfig

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        limit = self.config.max_completion_length  # type: ignore[attr-defined]
        buffer = self.config.buffer_length  # type: ignore[attr-defined]
        start = limit - buffer
        rewards: list[float | None] = []
        for length in token_lengths(kwargs, len(completions), reward=self.name):
            if length <= start:
                rewards.append(0.0)
            elif length <= limit:
                rewards.append((start - length) / buffer)
            else:
                rewards.append(-1.0)
        return rewards
