"""Helpers for testing grail-rl plugins (and grail-rl itself).

Enable the fixture in a plugin's ``conftest.py``::

    pytest_plugins = ["grail_rl.testing"]

Then:

- :func:`isolated_plugins` builds a plugin manager with only the built-ins and the plugins you pass,
  ignoring whatever else is installed;
- the ``register_plugin`` fixture registers a plugin for one test, visible to every ``load_plugins()``
  call (recipes, the registry) until the test ends;
- :func:`check_reward_contract` checks that a reward behaves as TRL and grail-rl require (a reward that
  reads the discriminator is set up with a frozen built-in one first);
- :func:`discriminator_context` gives a reward that reads the discriminator what a training run would;
- :func:`check_gold_ranking` checks that a reward never scores a wrong reply above the ideal one (the check
  ``grail-rl check-rewards`` runs on a recipe's data).
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from grail_rl.plugins import manager
from grail_rl.plugins.base import PluginContext
from grail_rl.plugins.manager import Plugins, load_plugins
from grail_rl.plugins.registry import PluginSource


def isolated_plugins(*plugins: Any, builtins: bool = True, names: Sequence[str] | None = None) -> Plugins:
    """A :class:`Plugins` holding the built-ins (unless ``builtins=False``) and ``plugins``, nothing else.

    Each plugin is named ``names[i]`` when given, else after its ``__name__`` (module or class).
    """
    extra = [
        (obj, PluginSource(plugin=names[i] if names else getattr(obj, "__name__", type(obj).__name__)))
        for i, obj in enumerate(plugins)
    ]
    return load_plugins(
        builtins=builtins,
        use_entry_points=False,
        extra=extra,
        blocked=(),
        with_test_registrations=False,
    )


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., None]]:
    """Register a plugin object for the duration of one test: ``register_plugin(obj, name="x")``."""
    added: list[tuple[Any, PluginSource]] = []

    def register(obj: Any, name: str | None = None, distribution: str | None = None) -> None:
        source = PluginSource(
            plugin=name or getattr(obj, "__name__", type(obj).__name__), distribution=distribution
        )
        manager._extra_plugins.append((obj, source))
        added.append((obj, source))

    yield register
    for item in added:
        manager._extra_plugins.remove(item)


# Completions a model can produce, from well-formed to hostile.
CONTRACT_COMPLETIONS: list[Any] = [
    "<think>\nThe viewer likes the first one.\n</think>\n<answer>\n2\n</answer>\n<opinion>increase</opinion>",
    "<think></think><answer>1</answer>",
    "",
    "   ",
    "no tags at all, just words 3",
    "<answer>-1</answer>",
    "<answer>99999999999999999999999</answer>",
    "<answer><answer>2</answer></answer>",
    "<think>" * 200 + "</answer>" * 200,
    "\x00\x01\x1b[31m control \ud800 surrogate \u202e bidi 🙂",
    "x" * 100_000,
    [{"role": "assistant", "content": "<think>ok</think><answer>3</answer>"}],
    [{"role": "assistant", "content": ""}],
    [],
]


def _default_columns(n: int) -> dict[str, list[Any]]:
    return {
        "prompts": [[{"role": "user", "content": "OPTIONS\n1. a\n2. b\n3. c\n4. d"}]] * n,
        "completion_ids": [[1, 2, 3]] * n,
        "gold_index": [(i % 4) + 1 for i in range(n)],
        "n_options": [4] * n,
        "slate_ids": [["v1", "v2", "v3", "v4"]] * n,
        "slate_titles": [["a", "b", "c", "d"]] * n,
        "slate_channels": [["ch1", None, "ch3", "ch4"]] * n,
        "issue": ["gun_control" if i % 2 else "minimum_wage" for i in range(n)],
        "participant_study": ["study1"] * n,
        "opinion_direction": [["increase", "decrease", "no_change", None][i % 4] for i in range(n)],
        "a_column_no_reward_expects": [object()] * n,
    }


def discriminator_context(name: str = "ngram", *, seed: int = 0, **keys: Any) -> PluginContext:
    """A :class:`~grail_rl.plugins.PluginContext` holding a built-in discriminator, set up on the CPU.

    For testing a reward that reads the discriminator (``requires_discriminator``) outside a training run::

        reward.setup(discriminator_context(train=False))

    ``keys`` are the ``discriminator:`` block's keys (``train``, ``extra_negatives``, ...); options of the
    plugin itself go in ``options``.
    """
    from grail_rl.grail.runtime import DiscriminatorRuntime
    from grail_rl.grail.settings import DiscriminatorBlockKeys

    options = keys.pop("options", {})
    spec = isolated_plugins().discriminators.get(name)
    runtime = DiscriminatorRuntime(spec.build(options), DiscriminatorBlockKeys(**keys), plugin_name=spec.source.plugin)
    context = PluginContext(device="cpu", seed=seed)
    runtime.setup(context)
    return replace(context, discriminator=runtime)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def check_reward_contract(
    reward: Callable[..., Sequence[float | None]],
    *,
    completions: Sequence[Any] | None = None,
    columns: Mapping[str, Sequence[Any]] | None = None,
) -> None:
    """Assert that ``reward`` honours the reward contract; the AssertionError lists every violation.

    The contract: one float (finite) or None per completion; extra dataset columns arrive as keyword
    arguments and are accepted; empty, huge, garbage and chat-message completions never raise; the same
    inputs give the same outputs; an empty batch gives an empty list.
    """
    if getattr(reward, "requires_discriminator", False) and callable(getattr(reward, "setup", None)):
        # A frozen discriminator: one that learns from each call would rightly score the second call differently.
        reward.setup(discriminator_context(train=False))
    completions = list(CONTRACT_COMPLETIONS if completions is None else completions)
    n = len(completions)
    cols = _default_columns(n)
    cols.update({k: list(v) for k, v in (columns or {}).items()})
    cols["trainer_state"] = None
    name = getattr(reward, "__name__", repr(reward))
    problems: list[str] = []

    def call(batch: list[Any], batch_cols: dict[str, Any]) -> Any:
        try:
            result = reward(completions=batch, **batch_cols)
            if inspect.isawaitable(result):  # an async reward: awaited, as TRL awaits it
                result = asyncio.run(_awaited(result))
            return result
        except Exception as exc:  # the contract says: never raise on what a model can produce
            problems.append(f"raised {type(exc).__name__}: {exc}")
            return None

    first = call(completions, cols)
    if first is not None:
        if not isinstance(first, Sequence) or isinstance(first, str | bytes):
            problems.append(f"returned {type(first).__name__}, expected a list")
        elif len(first) != n:
            problems.append(f"returned {len(first)} values for {n} completions")
        else:
            for i, value in enumerate(first):
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    problems.append(f"value {i} is {type(value).__name__} {value!r}, expected float or None")
                elif not math.isfinite(value):
                    problems.append(f"value {i} is {value}, expected a finite float")
            second = call(completions, cols)
            if second is not None and list(second) != list(first):
                problems.append("not deterministic: two calls on the same inputs differ")
    empty_cols = {k: ([] if k != "trainer_state" else None) for k in cols}
    empty = call([], empty_cols)
    if empty is not None and list(empty) != []:
        problems.append(f"an empty batch returned {empty!r}, expected []")
    if problems:
        raise AssertionError(f"reward '{name}' breaks the reward contract:\n  " + "\n  ".join(problems))


def check_gold_ranking(
    reward: Callable[..., Any], *, rows: Sequence[Mapping[str, Any]] | None = None, garbage_at_bottom: bool = False
) -> None:
    """Assert that ``reward`` never scores a wrong reply above the ideal one (``grail-rl check-rewards``'s check,
    for a plugin's own tests). The replies (:mod:`grail_rl.rewards.gold_check`): the gold option in the exact
    format, near misses and garbage, on ``rows`` (default: a few slates with every gold position and opinion
    direction). ``garbage_at_bottom``: also require garbage to score no higher than any real reply, or abstain.
    The AssertionError lists every problem with the row and the replies."""
    from grail_rl.rewards.gold_check import check_reward, row_columns

    if getattr(reward, "requires_discriminator", False) and callable(getattr(reward, "setup", None)):
        reward.setup(discriminator_context(train=False))
    if rows is None:
        defaults = _default_columns(8)
        rows = [{("prompt" if k == "prompts" else k): v[i] for k, v in defaults.items() if k != "completion_ids"}
                for i in range(8)]  # fmt: skip
    rows = [dict(row) for row in rows]
    name = getattr(reward, "__name__", type(reward).__name__)
    check = check_reward(reward, rows, row_columns(rows), name)
    problems = [f"raised on the {kind} replies: {error}" for kind, error in check.errors.items()]
    problems += [
        f"row {v.row}: the {v.kind} reply scores {v.score} above the ideal reply's {v.ideal}\n    ideal: {v.ideal_reply!r}\n"
        f"    {v.kind}: {v.reply[:200]!r}"
        for v in check.violations
    ]
    if garbage_at_bottom:
        problems += [f"{kind} scores above a real reply on {count} row(s)" for kind, count in check.garbage_above.items()]
    if problems:
        raise AssertionError(f"reward '{name}' fails the gold check:\n  " + "\n  ".join(problems))
