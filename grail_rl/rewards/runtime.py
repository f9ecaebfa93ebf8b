"""Turn the recipe's reward blocks into the callables TRL's GRPOTrainer receives as ``reward_funcs``.

Each reward plugin is wrapped in a :class:`GuardedReward`, which TRL calls as
``f(prompts=, completions=, completion_ids=, trainer_state=, log_extra=, log_metric=, **columns)``. The
wrapper passes everything on to the plugin, checks what comes back (see :mod:`grail_rl.rewards.faults`),
and reports the values to a :class:`~grail_rl.rewards.diagnostics.RewardDiagnostics` shared by all the
rewards of the run. Nothing here imports torch or TRL::

    funcs, weights = build_reward_functions(
        entries_from_blocks(recipe.rewards), fault_dir=output_dir / "reward_faults"
    )
    GRPOTrainer(..., reward_funcs=funcs, args=GRPOConfig(..., reward_weights=weights))
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from grail_rl.data.row_fields import decode_columns
from grail_rl.errors import GrailError, describe_exception
from grail_rl.plugins.base import PluginConfig, PluginContext, RewardFunction
from grail_rl.plugins.manager import BUILTIN_DISTRIBUTION
from grail_rl.plugins.registry import PluginSpec
from grail_rl.rewards.diagnostics import RewardDiagnostics
from grail_rl.rewards.faults import (
    CONTEXT_KEYS,
    MAX_ABS_REWARD,
    FatalRewardError,
    Fault,
    RewardFault,
    bad_value,
    save_fault,
)
from grail_rl.rewards.weights import normalise_weights

logger = logging.getLogger(__name__)

OnFault = Literal["stop", "abstain"]
ON_FAULT_CHOICES: tuple[str, ...] = ("stop", "abstain")

RewardEntry = tuple[PluginSpec, PluginConfig | Mapping[str, Any] | None, float, str]


class GuardedReward:
    """One reward plugin as TRL sees it: named like the plugin, with its faults caught and reported."""

    def __init__(
        self,
        reward: RewardFunction,
        *,
        plugin: str,
        on_fault: OnFault = "stop",
        fault_dir: Path | None = None,
        diagnostics: RewardDiagnostics | None = None,
        isolate: bool = True,
    ):
        if on_fault not in ON_FAULT_CHOICES:
            raise GrailError(
                f"reward '{reward.name}': on_fault must be 'stop' or 'abstain', got {on_fault!r}"
            )
        self.reward = reward
        self.plugin = plugin
        self.on_fault = on_fault
        self.fault_dir = fault_dir
        self.diagnostics = diagnostics
        self.__name__ = reward.name  # TRL logs each reward as rewards/<__name__>/mean
        self.faulty_rows_total = 0
        self._saved_abstained_fault = False
        # Private copies of the batch for the plugin (so one that edits its arguments cannot change what the
        # next reward sees). grail-rl's own rewards, which never edit them, are called without the copies.
        self.isolate = isolate
        fields_read = getattr(reward, "fields_read", None)
        # The row fields stored as JSON text (the survey) reach the plugin decoded, as documented.
        self.row_fields = tuple(fields_read(getattr(reward, "config", None))) if callable(fields_read) else ()

    def setup(self, context: PluginContext) -> None:
        """Give the plugin the run's context (once, before the first step); a failure names the plugin."""
        try:
            self.reward.setup(context)
        except (GrailError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # plugin code: sys.exit included
            raise GrailError(
                f"reward '{self.__name__}' (plugin '{self.plugin}') failed to set up: {describe_exception(exc)}"
            ) from exc

    def __repr__(self) -> str:
        return f"GuardedReward({self.__name__!r}, plugin={self.plugin!r}, on_fault={self.on_fault!r})"

    def __new__(cls, reward: Any = None, **kwargs: Any) -> GuardedReward:
        # A plugin whose __call__ is a coroutine function gets the async wrapper, whoever builds the guard: TRL
        # then awaits it with the run's other async rewards concurrently.
        if cls is GuardedReward and is_async_reward(reward):
            cls = AsyncGuardedReward
        return super().__new__(cls)

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        started = time.perf_counter()
        own_completions, own = self._private(completions, kwargs)
        outcome = self._run(own_completions, own, len(completions))
        return self._finish(completions, kwargs, *outcome, seconds=time.perf_counter() - started)

    def _private(self, completions: Sequence[Any], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The plugin's own copies of its arguments: one that edits the completions (or a column) in place
        must not change what the next reward scores or what the samples record."""
        if not self.isolate:
            own = dict(kwargs)
            if self.row_fields:
                decode_columns(self.row_fields, own)
            return completions, own
        own = {key: value if key in CONTEXT_KEYS else private_copy(value) for key, value in kwargs.items()}
        if self.row_fields:
            decode_columns(self.row_fields, own)
        return private_copy(completions), own

    def _finish(
        self,
        completions: Sequence[Any],
        kwargs: dict[str, Any],
        values: list[Any],
        fault: Fault | None,
        cause: BaseException | None,
        *,
        seconds: float | None = None,
    ) -> list[float | None]:
        """Handle a fault (stop or abstain), convert the values and report them to the diagnostics (with the
        call's wall time, ``seconds``)."""
        n = len(completions)
        faulty = 0
        if fault is not None:
            self._handle(fault, completions, kwargs, cause)  # raises unless the recipe says abstain
            rows = range(n) if fault.rows is None else fault.rows
            values = [None] * n if fault.rows is None else values
            for i in rows:
                values[i] = None
            faulty = len(rows)
            self.faulty_rows_total += faulty
        # TRL gets plain floats (or None): a list of floats already is one.
        floats = type(values) is CheckedFloats or set(map(type, values)) <= {float}
        result = values if floats else [v if v is None or type(v) is float else float(v) for v in values]

        if self.diagnostics is not None:
            log_metric = kwargs.get("log_metric")
            self.diagnostics.report(
                self.__name__,
                completions,
                result,
                log_metric if callable(log_metric) else None,
                faulty_rows=faulty if self.on_fault == "abstain" else None,
                step=getattr(kwargs.get("trainer_state"), "global_step", None),
                prompts=kwargs.get("prompts"),
                floats=floats,
                seconds=seconds,
            )
        return result

    def _run(
        self, completions: Sequence[Any], kwargs: dict[str, Any], n: int
    ) -> tuple[list[Any], Fault | None, BaseException | None]:
        """Call the plugin: (its values as a list, the fault if any, the exception it raised if any)."""
        try:
            values = self.reward(completions, **kwargs)
        except (KeyboardInterrupt, FatalRewardError):
            raise
        except BaseException as exc:  # any failure inside a plugin (sys.exit too) becomes a fault naming it
            return [], Fault(f"raised {describe_exception(exc)}", None, {}), exc
        return self._checked(values, n)

    def _checked(self, values: Any, n: int) -> tuple[list[Any], Fault | None, BaseException | None]:
        """What the plugin returned, as a list of ``n`` values, or the fault that makes it unusable."""
        # TRL iterates whatever comes back, so any sized iterable will do (a numpy array, a tuple).
        if isinstance(values, str | bytes | Mapping) or not (
            hasattr(values, "__len__") and hasattr(values, "__iter__")
        ):
            return (
                [],
                Fault(f"returned a {type(values).__name__} instead of a list of numbers", None, {}),
                None,
            )
        try:
            values = list(values)  # a 0-d array has __len__ and __iter__ but raises here
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            return [], Fault(f"returned a {type(values).__name__} that is not a list ({describe_exception(exc)})",
                             None, {}), exc  # fmt: skip
        if len(values) != n:  # the plugin's copy may have changed length; the batch has not
            return (
                [],
                Fault(f"returned {len(values)} values for {n} completions", None, {}),
                None,
            )
        if values and set(map(type, values)) <= {float}:  # checked once; _finish and the diagnostics rely on it
            values = CheckedFloats(values)
        return values, _bad_rows(values), None

    def _handle(
        self, fault: Fault, completions: Sequence[Any], kwargs: Mapping[str, Any], cause: BaseException | None
    ):
        """Stop (raise :class:`RewardFault`) or, with ``on_fault: abstain``, warn and let the rows abstain."""
        step = getattr(kwargs.get("trainer_state"), "global_step", None)
        where = (
            f"reward '{self.__name__}' (plugin '{self.plugin}') at step {step if step is not None else '?'}"
        )
        save = self.fault_dir is not None and (self.on_fault == "stop" or not self._saved_abstained_fault)
        saved_to = None
        if save:
            saved_to = save_fault(
                self.fault_dir,  # type: ignore[arg-type]
                reward=self.__name__,
                plugin=self.plugin,
                step=step,
                fault=fault,
                completions=completions,
                kwargs=kwargs,
            )
            self._saved_abstained_fault = self.on_fault == "abstain"
        saved = f"; the offending completions are in {saved_to}" if saved_to else ""
        if self.on_fault == "abstain":
            rows = "all rows" if fault.rows is None else f"{len(fault.rows)} row(s)"
            logger.warning("%s %s; %s abstain (on_fault: abstain)%s", where, fault.problem, rows, saved)
            return
        if saved_to is None:
            saved = "; no fault directory was given, so the completions were not saved"
        raise RewardFault(
            f"{where} {fault.problem}{saved}. Fix the reward, or set on_fault: abstain on its recipe block "
            "to treat such rows as abstentions.",
            reward=self.__name__,
            plugin=self.plugin,
            step=step,
            saved_to=saved_to,
        ) from cause


class AsyncGuardedReward(GuardedReward):
    """The guard of a reward plugin whose ``__call__`` is ``async``: the same checks, fault handling and
    diagnostics, awaited. TRL recognises it as async (by its ``__call__``) and gathers the run's async rewards
    on its event loop, so rewards that wait on I/O (a judge server, a database) wait together."""

    async def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:  # type: ignore[override]
        started = time.perf_counter()
        own_completions, own = self._private(completions, kwargs)
        outcome = await self._run_async(own_completions, own, len(completions))
        return self._finish(completions, kwargs, *outcome, seconds=time.perf_counter() - started)

    async def _run_async(
        self, completions: Sequence[Any], kwargs: dict[str, Any], n: int
    ) -> tuple[list[Any], Fault | None, BaseException | None]:
        try:
            values = await self.reward(completions, **kwargs)
        except (KeyboardInterrupt, FatalRewardError):
            raise
        except BaseException as exc:  # asyncio.CancelledError and timeouts too: a fault naming the plugin
            return [], Fault(f"raised {describe_exception(exc)}", None, {}), exc
        return self._checked(values, n)


def is_async_reward(reward: Any) -> bool:
    """Whether calling ``reward`` returns a coroutine (an ``async def __call__``)."""
    if inspect.iscoroutinefunction(reward):
        return True
    return callable(reward) and inspect.iscoroutinefunction(type(reward).__call__)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def private_copy(value: Any) -> Any:
    """A copy of a batch argument deep enough that changing it cannot change the caller's.

    The common shapes are copied fast: a list of strings or numbers (completions as text, a column), and a
    list of chat messages per completion (conversational completions, prompts). Anything else is deep-copied;
    an argument that is not a list (TRL's state, a callable) is passed as it is.
    """
    if type(value) is not list:
        return value
    if set(map(type, value)) <= _IMMUTABLE:  # the common case, checked and copied at C speed
        return value.copy()
    out = []
    for item in value:
        kind = type(item)
        if kind is str or kind is int or kind is float or kind is bool or item is None:
            out.append(item)
        elif kind is list and all(type(m) is dict and all(type(v) is str for v in m.values()) for m in item):
            out.append([dict(m) for m in item])
        elif kind is list and all(type(v) is int for v in item):  # token ids
            out.append(list(item))
        else:
            out.append(copy.deepcopy(item))
    return out


class CheckedFloats(list):
    """A plugin's values already known to be plain floats (one type check per batch, however many readers)."""


def _bad_rows(values: Sequence[Any]) -> Fault | None:
    # Fastest screen, at C speed: only floats, none NaN or infinite (their sum would be), all within the bound.
    floats = type(values) is CheckedFloats or (values and set(map(type, values)) <= {float})
    if values and floats and math.isfinite(sum(values)):
        if -MAX_ABS_REWARD <= min(values) and max(values) <= MAX_ABS_REWARD:
            return None
    # Fast screen first: a float within the accepted magnitude passes (NaN fails every comparison, inf the
    # bound). Only the rows that fail the screen (ints, None, junk, huge values) get the full check.
    suspects = [
        i for i, v in enumerate(values) if not (type(v) is float and -MAX_ABS_REWARD <= v <= MAX_ABS_REWARD) and v is not None
    ]
    problems = {i: why for i in suspects if (why := bad_value(values[i])) is not None}
    if not problems:
        return None
    first = min(problems)
    detail = f"row {first}: {values[first]!r} is {problems[first]}"
    return Fault(
        f"returned {len(problems)} unusable value(s) of {len(values)} ({detail})",
        sorted(problems),
        {i: values[i] for i in problems},
    )


def entries_from_blocks(blocks: Sequence[Any]) -> list[RewardEntry]:
    """``(spec, config, weight, on_fault)`` for each recipe reward block (``recipe.rewards``)."""
    return [(block.plugin_spec, block.plugin_options(), block.weight, block.on_fault) for block in blocks]


def build_reward_functions(
    entries: Sequence[RewardEntry],
    *,
    fault_dir: Path | str | None = None,
    diagnostics: RewardDiagnostics | None = None,
    group_size: int | None = None,
) -> tuple[list[GuardedReward], list[float]]:
    """Build the reward callables and their normalised weights from ``(spec, config, weight, on_fault)``.

    ``config`` is the plugin's validated Config (or a plain mapping, or None for the defaults). The
    callables share one :class:`RewardDiagnostics` (``diagnostics``, or a new one), reachable as
    ``funcs[i].diagnostics``. Faults are saved under ``fault_dir`` when it is given.
    """
    if not entries:
        raise GrailError("no rewards configured: a recipe needs at least one entry under 'rewards'")
    names = [spec.name for spec, *_ in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise GrailError(
            f"reward(s) {', '.join(repr(d) for d in duplicates)} appear more than once; TRL logs rewards by name, "
            "so each reward may appear once"
        )
    weights = normalise_weights([weight for _, _, weight, _ in entries], expected=len(entries))
    shared = diagnostics if diagnostics is not None else RewardDiagnostics(names, weights, group_size)
    directory = Path(fault_dir) if fault_dir is not None else None
    funcs = []
    for spec, config, _weight, on_fault in entries:
        if isinstance(config, PluginConfig) and not isinstance(config, spec.config_class):
            raise GrailError(
                f"reward '{spec.name}' got a {type(config).__name__}, expected {spec.config_class.__name__}"
            )
        reward = spec.build(dict(config) if isinstance(config, Mapping) else config)
        funcs.append(
            GuardedReward(
                reward,
                plugin=spec.source.plugin,
                on_fault=on_fault,
                fault_dir=directory,
                diagnostics=shared,  # type: ignore[arg-type]
                isolate=spec.source.distribution != BUILTIN_DISTRIBUTION,
            )
        )
    return funcs, weights
