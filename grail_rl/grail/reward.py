"""The ``gail`` reward: how human-like the discriminator finds each completion's choice.

For each completion the answer is parsed with the shared parser. A valid choice (an option number on the
slate) is scored with the discriminator's P(real) of (that option, the viewer's context), transformed:

- ``prob``: D, in [0, 1] (the original: alpha x D; here the block's ``weight`` plays alpha);
- ``log``: log D, in [log 1e-6, 0] (GAIL's -log(1 - D) counterpart that punishes clearly fake choices);
- ``logit``: log D - log(1 - D), in [-13.8, 13.8] (AIRL's reward, symmetric around D = 0.5).

An invalid answer (nothing parsed, or a number off the slate) gets the transform's lowest value (0 for
``prob``, as in the original) or abstains (``invalid: abstain``). After scoring, the batch teaches the
discriminator (see :mod:`grail_rl.grail.runtime`): the rewards of a batch always come from the
discriminator as it was before that batch's update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from grail_rl.errors import GrailError
from grail_rl.grail.runtime import ChoiceBatchRow, is_heldout
from grail_rl.grail.texts import option_text, prompt_context
from grail_rl.plugins.base import PluginConfig, PluginContext, RewardFunction
from grail_rl.rewards.columns import as_int, column, completion_texts
from grail_rl.rewards.parser import parse_answer_text

EPSILON = 1e-6  # D is clipped to [EPSILON, 1 - EPSILON] before log and logit


class GailConfig(PluginConfig):
    transform: Literal["prob", "log", "logit"] = Field(
        "prob", description="prob: D (the original); log: log D; logit: log D - log(1 - D) (AIRL)."
    )
    invalid: Literal["lowest", "abstain"] = Field(
        "lowest",
        description="What an invalid answer gets: the transform's lowest value (0 for prob), or no score (abstain).",
    )
    allow_bare_numbers: bool = Field(
        False, description="Also read a completion that is nothing but the option number, as accuracy can."
    )


def transform(p: float, kind: str) -> float:
    """The reward for P(real) = ``p`` under ``kind``."""
    if kind == "prob":
        return p
    clipped = min(max(p, EPSILON), 1.0 - EPSILON)
    if kind == "log":
        return math.log(clipped)
    return math.log(clipped) - math.log1p(-clipped)


def lowest(kind: str) -> float:
    return 0.0 if kind == "prob" else transform(0.0, kind)


class GailReward(RewardFunction):
    """The discriminator's P(real) of each valid choice (GRAIL); needs a discriminator block."""

    name = "gail"
    row_fields = ("gold_index", "slate_titles", "slate_channels")
    Config = GailConfig
    requires_discriminator = True

    def __init__(self, config: GailConfig | None = None):
        super().__init__(config)
        self.runtime: Any = None

    def setup(self, context: PluginContext) -> None:
        if context.discriminator is None:
            raise GrailError("reward 'gail' needs the recipe's discriminator block, and the run has none")
        self.runtime = context.discriminator

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if self.runtime is None:
            raise GrailError(
                "reward 'gail' has no discriminator: it is set up by a training run whose recipe has a "
                "'discriminator:' block"
            )
        config: GailConfig = self.config  # type: ignore[assignment]
        n = len(completions)
        prompts = column(kwargs, "prompts", n, reward=self.name, required=True)
        golds = column(kwargs, "gold_index", n, reward=self.name, required=True)
        titles = column(kwargs, "slate_titles", n, reward=self.name, required=True)
        channels = column(kwargs, "slate_channels", n, reward=self.name) or [None] * n
        texts = completion_texts(completions)
        picks = [parse_answer_text(t, allow_bare_numbers=config.allow_bare_numbers) for t in texts]
        valid = [
            pick if pick is not None and isinstance(slate, Sequence) and 1 <= pick <= len(slate) else None
            for pick, slate in zip(picks, titles, strict=True)
        ]
        # The exchange between ranks comes first, before anything that could fail on one rank only: a rank that
        # skipped it would leave the others waiting in it.
        try:
            mine = self._batch_rows(prompts, golds, titles, channels, valid)
        except BaseException:
            self.runtime.exchange([])  # the other ranks are waiting in the exchange: take part, then fail
            raise
        rows = self.runtime.exchange(mine)
        chosen = [i for i, pick in enumerate(valid) if pick is not None]
        scores = self.runtime.score([option_text(prompts[i], titles[i], channels[i], valid[i]) for i in chosen])
        fallback = None if config.invalid == "abstain" else lowest(config.transform)
        rewards: list[float | None] = [fallback] * n
        for i, p in zip(chosen, scores, strict=True):
            rewards[i] = transform(p, config.transform)

        log_metric = kwargs.get("log_metric")
        log = log_metric if callable(log_metric) else None
        if log is not None and n:
            gold_scores = self.runtime.score([row.gold for row in rows]) if rows else []
            if gold_scores:
                log("discriminator/p_real_gold", sum(gold_scores) / len(gold_scores))
            if scores:
                log("discriminator/p_real_policy", sum(scores) / len(scores))
            log("discriminator/valid_rate", len(chosen) / n)
        step = getattr(kwargs.get("trainer_state"), "global_step", None)
        self.runtime.learn(rows, step=step, log=log, exchanged=True)
        return rewards

    def _batch_rows(
        self, prompts: list, golds: list, titles: list, channels: list, valid: list[int | None]
    ) -> list[ChoiceBatchRow]:
        """One row per prompt of the batch (TRL repeats each prompt once per generation)."""
        share = self.runtime.keys.heldout_share
        rows: dict[str, ChoiceBatchRow] = {}
        for i, prompt in enumerate(prompts):
            gold = as_int(golds[i])
            slate = titles[i]
            if gold is None or not isinstance(slate, Sequence) or not 1 <= gold <= len(slate):
                continue  # no usable label: nothing to learn from this row
            context = prompt_context(prompt)
            key = f"{gold}\x00{context}"
            row = rows.get(key)
            if row is None:
                others = [option_text(prompt, slate, channels[i], j) for j in range(1, len(slate) + 1) if j != gold]
                row = ChoiceBatchRow(
                    gold=option_text(prompt, slate, channels[i], gold), policy_wrong=[], others=others,
                    heldout=is_heldout(context, share),
                )  # fmt: skip
                rows[key] = row
            if valid[i] is not None and valid[i] != gold:
                row.policy_wrong.append(option_text(prompt, slate, channels[i], valid[i]))
        return list(rows.values())
