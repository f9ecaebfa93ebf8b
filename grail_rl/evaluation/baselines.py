"""Baselines a model's accuracy is read against: random, most-frequent position, trivial rules, ceiling.

- ``random``: the expected accuracy of a uniform pick, the mean of 1/n_options;
- ``most_frequent_position``: always answer the gold position seen most often in the *training* rows
  (in-sample on the evaluated rows when no training rows are given); its note always says which rows it
  was fitted on, and when they are not the evaluated data's own (``--data FILE``), that too;
- ``always_first`` / ``always_last``: the trivial rules; ``always_last`` exposes the gun-data leak
  (DOMAIN.md section 2);
- ``metadata_leak`` (when any row has one option without channel and length): that option, else the most
  frequent position; the leak itself as a rule (computed from the rows' prompts by the runner);
- ``synthetic_ceiling``: the ideal predictor's accuracy, reported by the synthetic data generator.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grail_rl.evaluation.metrics import Prediction, rate

# Baselines that are a rule, not a measurement of the data's ceiling: the model must beat the best of them.
TRIVIAL_RULES = ("random", "most_frequent_position", "always_first", "always_last", "metadata_leak")


@dataclass(frozen=True)
class FitRows:
    """(gold_index, n_options) rows a fitted baseline learns from, and what they are, said beside it."""

    rows: list[tuple[int, int]]
    source: str  # e.g. "1,800 rows of the recipe's train split (synthetic: train.jsonl)"
    opinions: list[str | None] | None = None  # the rows' opinion directions, for the majority-direction baseline


def _accuracy_of(rows: Sequence[tuple[int, int]], pick: Any) -> dict[str, Any]:
    correct = sum(1 for gold, n in rows if pick(n) == gold)
    return rate(correct, len(rows))


def baselines(
    rows: Sequence[tuple[int, int]],
    *,
    train_rows: FitRows | None = None,
    synthetic_ceiling: float | None = None,
    other_data: bool = False,
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Baselines for evaluated ``rows`` of (gold_index, n_options); ``other_data``: the evaluated rows are not
    the data ``train_rows`` come from (a ``--data`` file), which the fitted baseline's note then says."""
    out: dict[str, dict[str, Any]] = {}
    n = len(rows)
    expected = sum(1 / size for _, size in rows) / n if n else 0.0
    out["random"] = {
        "n": n,
        "value": expected,
        "note": "expected accuracy of a uniform pick (mean 1/n_options)",
    }
    fit = train_rows.rows if train_rows and train_rows.rows else rows
    if fit:
        position = Counter(gold for gold, _ in fit).most_common(1)[0][0]
        entry = _accuracy_of(rows, lambda size: position)
        if train_rows and train_rows.rows:
            where = f"fitted on {train_rows.source}" + (", not on the evaluated data" if other_data else "")
        else:
            where = "fitted on these rows: in-sample"
        entry["note"] = f"always option {position}; {where}"
        entry["fitted_on"] = where.removeprefix("fitted on ")
        out["most_frequent_position"] = entry
    out["always_first"] = {**_accuracy_of(rows, lambda size: 1), "note": "always option 1"}
    out["always_last"] = {**_accuracy_of(rows, lambda size: size), "note": "always the last option"}
    out.update(extra or {})  # rules that need more than (gold, size): the metadata-leak rule
    if synthetic_ceiling is not None:
        out["synthetic_ceiling"] = {
            "n": n,
            "value": synthetic_ceiling,
            "note": "the ideal predictor (synthetic data)",
        }
    return out


def rows_of(preds: Sequence[Prediction]) -> list[tuple[int, int]]:
    return [(p.gold_index, p.n_options) for p in preds]
