"""Base classes for the three kinds of plugin (rewards, prompt sections, discriminators) and their runtime context.

A plugin class sets ``name`` (the identifier recipes use), optionally ``description`` (one line; the first
line of the docstring otherwise) and a nested ``Config``: a :class:`PluginConfig` whose fields become the
keys a recipe may set on that plugin's block. Nothing here imports torch, so recipes validate quickly.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class PluginConfig(BaseModel):
    """Options of one plugin, validated strictly: unknown keys, strings-for-numbers, NaN and infinities are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class BlockKeys(BaseModel):
    """Keys every recipe block of a kind has besides ``name`` (see :mod:`grail_rl.plugins.kinds`); a plugin's
    Config may not reuse them."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class PluginContext:
    """What a training run tells its reward and discriminator plugins, once, before the first step.

    Passed to :meth:`RewardFunction.setup` and :meth:`Discriminator.setup`. Outside a training run (a
    reward called by hand, ``grail_rl.testing``) ``setup`` is not called, so a plugin must work without it
    unless it needs what only a run has (a discriminator, the tokenizer).
    """

    device: str  # where this process computes: "cpu" or "cuda:<local rank>"
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    output_dir: Path | None = None  # the run's folder
    tokenizer: Any = None  # the policy's tokenizer
    accelerator: Any = None  # the run's accelerate.Accelerator
    seed: int = 0  # the recipe's trainer.seed
    discriminator: Any = None  # the run's GAIL discriminator (grail_rl.grail.runtime.DiscriminatorRuntime), if any
    # True while the policy takes a training step (False during in-training evaluation); None outside a run.
    in_training_step: Callable[[], bool] | None = None

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0


class _Plugin(abc.ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[PluginConfig]] = PluginConfig

    def __init__(self, config: PluginConfig | None = None):
        self.config = config if config is not None else self.Config()

    @classmethod
    def summary(cls) -> str:
        """The one-line description shown by the listing commands."""
        if cls.description:
            return cls.description.strip().splitlines()[0]
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


class RewardFunction(_Plugin):
    """A reward: scores each completion of a batch.

    Instances are called the way TRL calls reward functions: ``reward(completions=..., **columns)`` where
    ``columns`` holds ``prompts``, ``completion_ids``, ``trainer_state`` and every dataset column, each
    repeated once per generation. Return one float per completion, or ``None`` to abstain on it.
    """

    # True when the reward needs the recipe's ``discriminator`` block (checked at validation time).
    requires_discriminator: ClassVar[bool] = False
    # The optional row fields the reward reads (grail_rl.data.row_fields: current_video_title, history_titles,
    # survey, ...): the data pipeline carries exactly these into the splits, and each arrives as a keyword
    # argument with one value per completion. A Config field named ``row_fields`` adds the fields a recipe asks
    # for. A name the data schema does not have is a validation error.
    row_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def fields_read(cls, config: Any = None) -> tuple[str, ...]:
        """The row fields this reward reads with ``config``: the class's, then its Config's ``row_fields``."""
        extra = getattr(config, "row_fields", None) or ()
        for where, names in (("the class's row_fields", cls.row_fields), ("the Config's row_fields", extra)):
            if isinstance(names, str) or not all(isinstance(name, str) for name in names):
                raise TypeError(f"{where} must be a list of field names, got {names!r}")
        return tuple(dict.fromkeys((*cls.row_fields, *extra)))

    @property
    def __name__(self) -> str:  # TRL logs each reward as rewards/<__name__>/mean
        return self.name

    def setup(self, context: PluginContext) -> None:
        """Called once by a training run, before the first step, with what the run knows (see
        :class:`PluginContext`). The default does nothing."""

    @abc.abstractmethod
    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        """Score ``completions``; extra keyword arguments are dataset columns and TRL's context."""


class GroupReward(RewardFunction):
    """A reward that scores a whole prompt group at once: the completions TRL generated for one prompt, side by
    side (the diversity of their choices, a judge that ranks them against each other).

    Implement :meth:`score_group`; the runtime calls the reward as TRL calls any reward, and this class hands
    :meth:`score_group` one group at a time (the consecutive completions of one prompt) with each column cut to
    that group, then puts the scores back in order. A group's wrong number of scores is the reward's fault.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # An ``async def score_group`` makes the reward async: its groups are scored concurrently and TRL awaits
        # it with the run's other async rewards.
        if inspect.iscoroutinefunction(cls.__dict__.get("score_group")):
            cls.__call__ = GroupReward._score_async  # type: ignore[method-assign]

    @abc.abstractmethod
    def score_group(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        """Score the completions of one prompt (in order); ``columns`` hold the group's rows only."""

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        groups = prompt_runs(kwargs.get("prompts"), len(completions))
        return _joined(groups, [self._score(completions, kwargs, g) for g in groups])

    async def _score_async(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        import asyncio

        groups = prompt_runs(kwargs.get("prompts"), len(completions))
        return _joined(groups, await asyncio.gather(*(self._score(completions, kwargs, g) for g in groups)))

    def _score(self, completions: Sequence[Any], kwargs: dict[str, Any], group: range) -> Any:
        """``score_group`` on one group: its completions, and each per-completion column cut to it."""
        n = len(completions)
        columns = {key: _cut(value, group, n) for key, value in kwargs.items()}
        return self.score_group([completions[i] for i in group], **columns)


def _joined(groups: Sequence[range], scored: Sequence[Any]) -> list[float | None]:
    """The groups' scores in the batch's order; a group with the wrong number of scores is the reward's fault."""
    out: list[float | None] = []
    for group, scores in zip(groups, scored, strict=True):
        scores = list(scores)
        if len(scores) != len(group):
            raise ValueError(f"score_group returned {len(scores)} scores for a group of {len(group)} completions")
        out.extend(scores)
    return out


def prompt_runs(prompts: Any, n: int) -> list[range]:
    """Runs of consecutive completions with the same prompt (one run when the prompts are not given)."""
    if not isinstance(prompts, list | tuple) or len(prompts) != n:
        return [range(n)] if n else []
    runs, start = [], 0
    for i in range(1, n + 1):
        if i == n or prompts[i] != prompts[start]:
            runs.append(range(start, i))
            start = i
    return runs


def _cut(value: Any, group: range, n: int) -> Any:
    """A per-completion column cut to ``group``; anything else (TRL's state, callables) as it is."""
    if isinstance(value, list | tuple) and len(value) == n:
        return [value[i] for i in group]
    return value


class PromptSection(_Plugin):
    """One block of the user prompt (``VIEWER``, ``OPTIONS``, ...), rendered from a cleaned step row."""

    @abc.abstractmethod
    def render(self, row: Mapping[str, Any]) -> str | None:
        """Return the block's text for ``row``, or ``None`` to leave the block out of this prompt."""


class Discriminator(_Plugin):
    """A classifier that scores how human-like a (prompt, choice) text is, trained during GRPO."""

    def setup(self, context: PluginContext) -> None:
        """Called once by a training run before the first step: build the model on ``context.device``.
        The default does nothing."""

    @abc.abstractmethod
    def score(self, texts: Sequence[str]) -> list[float]:
        """Return P(real) for each text, without training."""

    @abc.abstractmethod
    def update(self, real: Sequence[str], fake: Sequence[str]) -> dict[str, float]:
        """Take one training step on human (``real``) and policy (``fake``) texts; return metrics."""

    @abc.abstractmethod
    def save(self, directory: Path) -> None:
        """Write the discriminator's full state (weights, optimizer) into ``directory``."""

    @abc.abstractmethod
    def load(self, directory: Path) -> None:
        """Restore the state written by :meth:`save`."""
