"""The task reward: did the completion pick the option the viewer clicked (and, optionally, their opinion)?

Video part: 1 when the parsed option number equals ``gold_index`` and lies in ``1..n_options``, else 0.
Opinion part: 1 when the ``<opinion>`` label equals ``opinion_direction``; scored only on rows whose
direction is known and when ``opinion_share`` > 0. The reward is the share-weighted mean of the parts that
exist on the row, so with the default share of 0.5 it is 0, 0.5 or 1, as in the original. A row without a
usable ``gold_index`` gets ``None`` (abstain): it cannot be scored.

When TRL passes ``log_metric``, the reward also logs its parsed rate, the video accuracy per issue and,
where opinions are scored, the opinion accuracy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from grail_rl.plugins.base import PluginConfig, RewardFunction
from grail_rl.rewards.columns import as_int, column, completion_texts
from grail_rl.rewards.parser import (
    ANSWER_RE,
    answer_follows_think,
    normalise_opinion_label,
    parse_answer_text,
    parse_opinion_text,
)


class AccuracyConfig(PluginConfig):
    require_tags: bool = Field(
        False,
        description="Count the answer only when a closed <think>...</think> block comes before it "
        "(the structure the system prompt asks for). Off in the original.",
    )
    allow_bare_numbers: bool = Field(
        False,
        description="Also accept a completion that is nothing but the option number ('3' or 'option 3'), "
        "for a model that has not learned the tags yet. Cannot be combined with require_tags.",
    )
    opinion_share: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        description="Weight of the opinion part on rows whose opinion_direction is known; the video part "
        "gets the rest. 0 scores the video only; 0.5 is the original's plain mean of the two parts.",
    )

    @model_validator(mode="after")
    def _tags_or_bare(self) -> AccuracyConfig:
        if self.require_tags and self.allow_bare_numbers:
            raise ValueError(
                "require_tags and allow_bare_numbers contradict each other: a bare number has no tags"
            )
        return self


class AccuracyReward(RewardFunction):
    """Next-click accuracy: the chosen option number equals the clicked one (plus the optional opinion part)."""

    name = "accuracy"
    row_fields = ("gold_index", "n_options", "opinion_direction", "issue")
    Config = AccuracyConfig

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        golds = column(kwargs, "gold_index", n, reward=self.name, required=True)
        sizes = column(kwargs, "n_options", n, reward=self.name) or [None] * n
        texts = completion_texts(completions)
        picks = self._picks(texts)
        video = [_video_score(pick, gold, size) for pick, gold, size in zip(picks, golds, sizes, strict=True)]

        opinion: list[float | None] | None = None
        config: AccuracyConfig = self.config  # type: ignore[assignment]
        directions = (
            column(kwargs, "opinion_direction", n, reward=self.name) if config.opinion_share > 0 else None
        )
        if directions is not None:
            opinion = _opinion_scores(texts, directions)
            share = config.opinion_share
            rewards = [
                v if v is None or o is None else (1.0 - share) * v + share * o
                for v, o in zip(video, opinion, strict=True)
            ]
        else:
            rewards = video

        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and n:
            self._log(log_metric, picks, video, opinion, column(kwargs, "issue", n, reward=self.name))
        return rewards

    def _picks(self, texts: list[str]) -> list[int | None]:
        config: AccuracyConfig = self.config  # type: ignore[assignment]
        if config.require_tags:
            return [parse_answer_text(t) if answer_follows_think(t) else None for t in texts]
        if config.allow_bare_numbers:
            return [parse_answer_text(t, allow_bare_numbers=True) for t in texts]
        # The hot path: one precompiled search per completion, no function call in between.
        search = ANSWER_RE.search
        return [None if (m := search(t)) is None else int(m[1]) for t in texts]

    def _log(
        self, log_metric: Any, picks: list, video: list, opinion: list | None, issues: list | None
    ) -> None:
        prefix = f"rewards/{self.name}"
        log_metric(f"{prefix}/parsed_rate", sum(p is not None for p in picks) / len(picks))
        if issues is not None:
            by_issue: dict[str, list[float]] = defaultdict(list)
            for issue, score in zip(issues, video, strict=True):
                if score is not None and isinstance(issue, str) and issue:
                    by_issue[issue].append(score)
            for issue, scores in sorted(by_issue.items()):
                log_metric(f"{prefix}/video_accuracy/{issue}", sum(scores) / len(scores))
        if opinion is not None:
            scored = [o for o in opinion if o is not None]
            if scored:
                log_metric(f"{prefix}/opinion_accuracy", sum(scored) / len(scored))


def _video_score(pick: int | None, gold: Any, size: Any) -> float | None:
    if type(gold) is not int:
        gold = as_int(gold)
    if gold is None or gold < 1:
        return None  # no usable label: abstain rather than punish the model for a data gap
    if pick is None or pick != gold:
        return 0.0
    if size is not None:
        if type(size) is not int:
            size = as_int(size)
        if size is not None and pick > size:
            return 0.0
    return 1.0


def _opinion_scores(texts: list[str], directions: list[Any]) -> list[float | None]:
    scores: list[float | None] = []
    for text, direction in zip(texts, directions, strict=True):
        label = normalise_opinion_label(direction)
        scores.append(None if label is None else float(parse_opinion_text(text) == label))
    return scores
