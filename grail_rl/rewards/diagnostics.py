"""Per-batch reward diagnostics, logged through TRL's ``log_metric`` callback.

Every wrapped reward reports its values here after each call. For each reward this logs
``rewards/<name>/abstain_rate`` and ``rewards/<name>/seconds`` (the reward's wall time on the batch: its
latency; TRL already logs ``rewards/<name>/mean`` and ``/std`` itself), the signal
statistics ``rewards/<name>/p10``, ``/median``, ``/p90`` and ``/constant_groups`` (the share of prompt groups
in which every completion got the same score, abstentions included: GRPO gets no advantage from those) and,
for rewards run with ``on_fault: abstain``, ``rewards/<name>/faulty_rows``. The same signal statistics are
logged for the weighted total as ``reward/p10`` ... ``reward/constant_groups`` (rows every reward abstained
on left out, as TRL leaves them out), and a reward (or the total) whose every group was constant for
:data:`NO_SIGNAL_STEPS` batches in a row is named in a warning. When the last reward of a batch
has reported, it logs the Pearson correlation of every pair of rewards over the rows both scored, as
``rewards/corr/<a>/<b>``: a shaping reward that fights the task reward shows up as a negative value.
A pair with fewer than two common rows or a constant side has no correlation and is not logged.

The same numbers, mean and std included, are kept in :attr:`RewardDiagnostics.latest` for callers that
are not TRL (evaluation, tests). One object serves one trainer; TRL calls the rewards one after another.

A batch in which no reward scored any completion (every reward abstained on every row) gives GRPO no
signal at all: TRL would go on with zero advantages and zero loss. That stops the run with a
:class:`NoRewardSignal` naming the rewards and the step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.plugins.base import prompt_runs

LogMetric = Callable[[str, float], None]
logger = logging.getLogger(__name__)


class NoRewardSignal(GrailError):
    """Every reward abstained on every completion of a batch: training would learn nothing from it."""


# A reward whose every prompt group was constant for this many batches in a row is named in a warning.
NO_SIGNAL_STEPS = 20
# The weighted sum of the rewards, as GRPO's advantages see it, is logged under reward/... beside TRL's own
# `reward` (its mean): a reward plugin may itself be named "total".
TOTAL_PREFIX = "reward"
TOTAL = "\x00total"  # its key among the rewards' streaks: no plugin can have this name


class RewardDiagnostics:
    """Collects each reward's values for the current batch and logs the per-batch statistics."""

    def __init__(self, names: Sequence[str], weights: Sequence[float] | None = None, group_size: int | None = None):
        self.names = list(names)
        # TRL generates num_generations completions per prompt, side by side: with the size known the groups
        # are fixed slices; without it they are read from the prompts.
        self.group_size = group_size
        self.weights = list(weights) if weights is not None else [1.0] * len(self.names)
        self.latest: dict[str, float] = {}
        self._batch: dict[str, list[float | None]] = {}
        self._batch_key: tuple[int, int] | None = None
        self._groups: int | list[range] = []
        self._arrays: dict[str, Any] = {}
        self.silent_streak: dict[str, int] = {name: 0 for name in [*self.names, TOTAL]}
        self.warnings: list[str] = []

    def report(
        self,
        name: str,
        completions: Sequence[Any],
        values: Sequence[float | None],
        log_metric: LogMetric | None,
        *,
        faulty_rows: int | None = None,
        step: int | None = None,
        prompts: Sequence[Any] | None = None,
        floats: bool = False,
        seconds: float | None = None,
    ) -> None:
        """Record ``values`` from reward ``name`` for the batch ``completions`` and log what is due. ``prompts``
        (one per completion) mark the prompt groups: the consecutive completions of one prompt; ``seconds``:
        how long the reward took on the batch (its latency)."""
        import numpy as np

        # TRL hands the same completions list to every reward of a batch: its identity marks the batch.
        key = (id(completions), len(completions))
        if key != self._batch_key:
            self._batch_key = key
            self._batch = {}
            self._arrays = {}
            n = len(completions)
            size = self.group_size
            # Equal slices (kept as their size: one reshape later) when the prompts agree with them; otherwise,
            # e.g. in an evaluation with another number of generations, the runs of one prompt.
            fits = size and n % size == 0 and (not prompts or len(prompts) != n or all(
                prompts[i] == prompts[i + size - 1] for i in range(0, n, size)))  # fmt: skip
            self._groups = size if fits else prompt_groups(prompts, n)
        self._batch[name] = list(values)
        array = _as_array(values, floats)  # once per reward and batch: every statistic reads it
        self._arrays[name] = array

        metrics = reward_statistics(name, array)
        metrics.update(signal_statistics(name, array, self._groups))
        self._count_silence(name, metrics[f"rewards/{name}/constant_groups"], step)
        if faulty_rows is not None:
            metrics[f"rewards/{name}/faulty_rows"] = float(faulty_rows)
        if seconds is not None:
            metrics[f"rewards/{name}/seconds"] = float(seconds)
        if len(self._batch) == len(self.names) and set(self._batch) == set(self.names):
            metrics.update(correlations(self._batch, self.names))
            total = weighted_total(self._arrays, self.names, self.weights)
            # TRL leaves rows every reward abstained on out of a group's mean and std: so does the total here.
            total_stats = signal_statistics(TOTAL, total, self._groups, ignore_abstained=True)
            metrics.update({key.replace(f"rewards/{TOTAL}", TOTAL_PREFIX): v for key, v in total_stats.items()})
            self._count_silence(TOTAL, total_stats[f"rewards/{TOTAL}/constant_groups"], step)
            silent = bool(np.isnan(total).all())  # every reward abstained on every completion
            self._batch = {}
            self._arrays = {}
            self._batch_key = None
            if silent and len(completions):
                raise NoRewardSignal(
                    f"no reward scored any of the {len(completions)} completions at step "
                    f"{step if step is not None else '?'}: {', '.join(self.names)} all abstained (returned None) "
                    "on every one, so GRPO gets no signal and would train on zero advantages. Check that the "
                    "rewards can read what the model writes (see OUTPUT/completions/) and that a reward's server "
                    "(llm_judge) is up, or add a reward that always scores"
                )
        self.latest.update(metrics)
        if log_metric is not None:
            for metric, value in metrics.items():
                # mean and std are TRL's own metrics already; logging them again would double-count.
                if not (metric.endswith("/mean") or metric.endswith("/std")):
                    log_metric(metric, value)


    def _count_silence(self, name: str, constant_share: float, step: int | None) -> None:
        """Count the batches in a row in which every prompt group of ``name`` was constant; warn when a streak
        reaches :data:`NO_SIGNAL_STEPS`, and again at twice, four times ... as many."""
        streak = self.silent_streak[name] + 1 if constant_share >= 1.0 else 0
        self.silent_streak[name] = streak
        doublings = streak // NO_SIGNAL_STEPS
        if streak and streak % NO_SIGNAL_STEPS == 0 and doublings & (doublings - 1) == 0:
            what = "the weighted total of the rewards" if name == TOTAL else f"reward '{name}'"
            message = (
                f"{what} has carried no signal for {streak} batches in a row (up to step {step if step is not None else '?'}): "
                "in every prompt group all completions got the same score (all solved, none solved, or all "
                "abstained), so GRPO gets no advantage from it"
            )
            self.warnings.append(message)
            logger.warning(message)


def prompt_groups(prompts: Sequence[Any] | None, n: int) -> list[range]:
    """The prompt groups of a batch: runs of consecutive completions with the same prompt (TRL puts a prompt's
    generations next to each other); without prompts, one group. The same split group rewards get."""
    return prompt_runs(prompts, n)


def weighted_total(batch: dict[str, Any], names: Sequence[str], weights: Sequence[float]) -> Any:
    """Each completion's weighted sum of the rewards that scored it (an abstention adds nothing, as in TRL's
    nansum); NaN where every reward abstained."""
    import numpy as np

    arrays = [_as_array(batch[name]) for name in names]
    stacked = np.vstack(arrays) * np.asarray(weights, dtype=float)[:, None]
    total = np.nansum(stacked, axis=0)
    total[np.isnan(stacked).all(axis=0)] = np.nan
    return total


def signal_statistics(name: str, values: Any, groups: int | Sequence[range], *, ignore_abstained: bool = False) -> dict[str, float]:
    """p10, median and p90 of the scored values, and the share of prompt groups in which the reward is constant
    (every completion the same score, abstentions included: no GRPO advantage from it). Vectorised: a batch
    of 100k completions costs milliseconds."""
    import numpy as np

    array = _as_array(values)
    stats: dict[str, float] = {}
    scored = array[~np.isnan(array)]
    if scored.size:
        p10, median, p90 = np.percentile(scored, (10, 50, 90))
        stats |= {f"rewards/{name}/p10": float(p10), f"rewards/{name}/median": float(median), f"rewards/{name}/p90": float(p90)}
    stats[f"rewards/{name}/constant_groups"] = constant_share(array, groups, ignore_abstained)
    return stats


def constant_share(array: Any, groups: int | Sequence[range], ignore_abstained: bool = False) -> float:
    """The share of ``groups`` (a group size dividing the batch, or ranges) whose values (NaN = an abstention,
    equal to another abstention) are all equal; ``ignore_abstained``: abstentions are left out first (a group
    of abstentions only is constant)."""
    import numpy as np

    if ignore_abstained:
        ranges = [range(i, min(i + groups, array.size)) for i in range(0, array.size, groups)] if isinstance(groups, int) else groups
        kept = [array[g.start : g.stop] for g in ranges]
        kept = [part[~np.isnan(part)] for part in kept]
        return sum(1 for part in kept if part.size == 0 or (part == part[0]).all()) / len(kept) if kept else 0.0
    if isinstance(groups, int):  # equal slices: one reshape
        if not array.size:
            return 0.0
        table = array.reshape(-1, groups)
        first = table[:, :1]
        same = (table == first) | (np.isnan(table) & np.isnan(first))
        return float(same.all(axis=1).mean())
    if not groups:
        return 0.0
    constant = 0
    for g in groups:
        part = array[g.start : g.stop]
        nans = np.isnan(part)
        constant += bool(nans.all() or (not nans.any() and (part == part[0]).all()))
    return constant / len(groups)


def _as_array(values: Sequence[float | None], floats: bool = False) -> Any:
    """The values as a float array, None as NaN (a float-only list converts at C speed); ``floats``: the caller
    knows every value is a float."""
    import numpy as np

    if isinstance(values, np.ndarray):
        return values.astype(float, copy=False)
    if floats or set(map(type, values)) <= {float}:
        return np.fromiter(values, dtype=float, count=len(values))
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, linear between the closest ranks (numpy's default)."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def reward_statistics(name: str, values: Any) -> dict[str, float]:
    """Mean, std (population, like TRL's) and abstain rate of one reward's values for one batch."""
    import numpy as np

    array = _as_array(values)
    scored = array[~np.isnan(array)]
    stats = {f"rewards/{name}/abstain_rate": (array.size - scored.size) / array.size if array.size else 0.0}
    if scored.size:
        # Computed on values scaled by the largest magnitude, so no sum or square can overflow however
        # large the (finite) rewards are; mean and std scale back exactly.
        top = float(np.abs(scored).max()) or 1.0
        scaled = scored / top
        mean = float(scaled.mean())
        stats[f"rewards/{name}/mean"] = mean * top
        stats[f"rewards/{name}/std"] = float(np.sqrt(((scaled - mean) ** 2).mean())) * top
    return stats


def correlations(batch: dict[str, list[float | None]], names: Sequence[str]) -> dict[str, float]:
    """Pearson correlation of each pair of rewards over the rows where both gave a value."""
    out: dict[str, float] = {}
    for a, b in combinations(names, 2):
        pairs = [(x, y) for x, y in zip(batch[a], batch[b], strict=False) if x is not None and y is not None]
        r = pearson(pairs)
        if r is not None:
            out[f"rewards/corr/{a}/{b}"] = r
    return out


def pearson(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Pearson's r of (x, y) pairs; None with fewer than two pairs or when either side is constant."""
    xs = [x for x, _ in pairs]
    ys = [y for _, y in pairs]
    # Constant sides are caught exactly: with rounding, a sum of squares over equal values may come out
    # as a tiny positive number and produce a meaningless r.
    if len(pairs) < 2 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    xs, ys = _centred(xs), _centred(ys)
    scale = math.sqrt(math.fsum(x * x for x in xs)) * math.sqrt(math.fsum(y * y for y in ys))
    if scale == 0.0:  # spreads so small against the values that they vanish in rounding
        return None
    return max(-1.0, min(1.0, math.fsum(x * y for x, y in zip(xs, ys, strict=True)) / scale))


def _centred(values: list[float]) -> list[float]:
    # r does not change with the scale of a side; dividing by the largest magnitude first keeps every
    # square finite, whatever size of numbers a reward returns.
    top = max(abs(v) for v in values)
    scaled = [v / top for v in values]
    mean = math.fsum(scaled) / len(scaled)
    return [v - mean for v in scaled]
