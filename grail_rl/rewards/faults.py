"""Reward faults: a reward that raises, returns the wrong number of values, or a value that is not finite.

Such a fault stops training with a :class:`RewardFault` naming the reward, its plugin and the step, after
the offending completions are written as JSON for the user to inspect; or, when the recipe says
``on_fault: abstain``, the faulty rows become ``None`` (TRL's abstention) and training goes on.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.files import write_json_atomically

# TRL's own keyword arguments: not dataset columns, never saved with a fault.
CONTEXT_KEYS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})
# The largest reward magnitude accepted. TRL stacks rewards in float32 and squares deviations for the group
# std; far larger (finite) values overflow there to inf and turn every advantage into NaN.
MAX_ABS_REWARD = 1e6


class RewardFault(GrailError):
    """A reward misbehaved during training; the message says which reward, plugin and step, and why."""

    def __init__(self, message: str, *, reward: str, plugin: str, step: int | None, saved_to: Path | None):
        super().__init__(message)
        self.reward = reward
        self.plugin = plugin
        self.step = step
        self.saved_to = saved_to


class FatalRewardError(GrailError):
    """A failure that abstaining cannot fix (the run's discriminator broke, say): it stops training whatever
    the reward's ``on_fault`` says. (With several processes, the one that failed says why; the others stop when
    the launcher ends the job.)"""


@dataclass(frozen=True)
class Fault:
    """What went wrong in one call: a description, the rows concerned (None: the whole batch) and their values."""

    problem: str
    rows: list[int] | None
    values: Mapping[int, Any]


def bad_value(value: Any) -> str | None:
    """Why ``value`` is not a usable reward (``None`` is fine: it abstains), or None when it is usable."""
    if value is None:
        return None
    # numbers.Real takes numpy's scalars too; a bool is a number to Python but never a reward.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"a {type(value).__name__}, not a number"
    try:
        if not math.isfinite(value):
            return "not finite"
    except (OverflowError, ValueError, TypeError):  # an int too large for a float, an odd Real subclass
        return "not representable as a float"
    if abs(value) > MAX_ABS_REWARD:
        return f"larger than {MAX_ABS_REWARD:.0e} in magnitude (TRL's float32 advantages would overflow)"
    return None


def save_fault(
    directory: Path,
    *,
    reward: str,
    plugin: str,
    step: int | None,
    fault: Fault,
    completions: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> Path:
    """Write the offending rows (completion, prompt, dataset columns, returned value) as one JSON file."""
    n = len(completions)
    columns = {
        key: value
        for key, value in kwargs.items()
        if key not in CONTEXT_KEYS
        and isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == n
    }
    rows = []
    for i in range(n) if fault.rows is None else fault.rows:
        row: dict[str, Any] = {"row": i, "completion": completions[i]}
        if i in fault.values:
            row["returned"] = repr(fault.values[i])
        row.update({key: value[i] for key, value in columns.items() if key != "completion_ids"})
        rows.append(row)
    payload = {"reward": reward, "plugin": plugin, "step": step, "problem": fault.problem, "rows": rows}
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"step{step if step is not None else 'unknown'}-{_safe(reward)}"
    path = directory / f"{stem}.json"
    counter = 1
    while path.exists():  # one file per fault, even when a step faults twice
        counter += 1
        path = directory / f"{stem}-{counter}.json"
    write_json_atomically(path, payload, default=repr)
    return path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "reward"
