"""Per-batch reward diagnostics, logged through TRL's ``log_metric`` callback.

Every wrapped reward reports its values here after each call. For each reward this logs
``rewards/<name>/abstain_rate`` (TRL already logs ``rewards/<name>/mean`` and ``/std`` itself) and, for
rewards run with ``on_fault: abstain``, ``rewards/<name>/faulty_rows``. When the last reward of a batch
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

import math
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

from grail_rl.errors import GrailError

LogMetric = Callable[[str, float], None]


class NoRewardSignal(GrailError):
    """Every reward abstained on every completion of a batch: training would learn nothing from it."""


class RewardDiagnostics:
    """Collects each reward's values for the current batch and logs the per-batch statistics."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.latest: dict[str, float] = {}
        self._batch: dict[str, list[float | None]] = {}
        self._batch_key: tuple[int, int] | None = None

    def report(
        self,
        name: str,
        completions: Sequence[Any],
        values: Sequence[float | None],
        log_metric: LogMetric | None,
        *,
        faulty_rows: int | None = None,
        step: int | None = None,
    ) -> None:
        """Record ``values`` from reward ``name`` for the batch ``completions`` and log what is due."""
        # TRL hands the same completions list to every reward of a batch: its identity marks the batch.
        key = (id(completions), len(completions))
        if key != self._batch_key:
            self._batch_key = key
            self._batch = {}
        self._batch[name] = list(values)

        metrics = reward_statistics(name, values)
        if faulty_rows is not None:
            metrics[f"rewards/{name}/faulty_rows"] = float(faulty_rows)
        if len(self._batch) == len(self.names) and set(self._batch) == set(self.names):
            metrics.update(correlations(self._batch, self.names))
            silent = all(v is None for values_ in self._batch.values() for v in values_)
            self._batch = {}
            self._batch_key = None
            if silent and len(completions):
                raise NoRewardSignal(
                    f"no reward scored any of the {len(completions)} completions at step "
                    f"{step if step is not None else '?'}: {', '.join(self.names)} all abstained (returned None) "
                    "on every one, so GRPO gets no signal and would train on zero advantages. Check that the "
                    "rewards can read what the model writes (see OUTPUT/completions/), or add a reward that "
                    "always scores"
                )
        self.latest.update(metrics)
        if log_metric is not None:
            for metric, value in metrics.items():
                # mean and std are TRL's own metrics already; logging them again would double-count.
                if not (metric.endswith("/mean") or metric.endswith("/std")):
                    log_metric(metric, value)


def reward_statistics(name: str, values: Sequence[float | None]) -> dict[str, float]:
    """Mean, std (population, like TRL's) and abstain rate of one reward's values for one batch."""
    scored = [v for v in values if v is not None]
    stats = {f"rewards/{name}/abstain_rate": (len(values) - len(scored)) / len(values) if values else 0.0}
    if scored:
        # Computed on values scaled by the largest magnitude, so no sum or square can overflow however
        # large the (finite) rewards are; mean and std scale back exactly.
        top = max(abs(v) for v in scored) or 1.0
        scaled = [v / top for v in scored]
        mean = math.fsum(scaled) / len(scaled)
        stats[f"rewards/{name}/mean"] = mean * top
        stats[f"rewards/{name}/std"] = math.sqrt(math.fsum((v - mean) ** 2 for v in scaled) / len(scaled)) * top
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
