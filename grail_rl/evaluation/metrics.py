"""Next-click accuracy with 95 % Wilson intervals, parsed and format rates, and their breakdowns.

One :class:`Prediction` per evaluated row. Accuracy counts a row correct when the parsed option equals
``gold_index`` and lies in ``1..n_options``; unparsed rows count as wrong (they stay in the denominator).
Breakdowns: by issue, by study, by slate size and by gold position. No torch here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Prediction:
    """What a model (or baseline) answered for one row."""

    gold_index: int
    n_options: int
    parsed_index: int | None
    formatted: bool = False
    issue: str | None = None
    participant_study: str | None = None
    # What the model wrote and which prompt it answered (grail_rl.evaluation.predictions.prompt_hash): with
    # them a predictions file can be re-scored without the model (`grail-rl evaluate --predictions`).
    prompt_hash: str | None = None
    output: str | None = None
    # The viewer's opinion direction where known, and the one the model's <opinion> tag gave (normalised).
    opinion_gold: str | None = None
    opinion_pick: str | None = None
    # choice-logprob mode: the model's probability of each option 1..n_options (grail_rl.evaluation.choice_logprob).
    probabilities: list[float] | None = None
    # Who chose (participant_id), for the participant-level bootstrap; None where the data does not say.
    participant_id: str | None = None
    # The row's position in the evaluated set (the progress log's key for resuming; None for hand-built rows).
    row_id: int | None = None

    @property
    def correct(self) -> bool:
        return (
            self.parsed_index is not None
            and 1 <= self.parsed_index <= self.n_options
            and (self.parsed_index == self.gold_index)
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "correct": self.correct}


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; with no rows it is (0, 1): nothing is known."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(successes: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(successes, n)
    return {"n": n, "k": successes, "value": successes / n if n else 0.0, "ci95": [lo, hi]}


def summarise(preds: list[Prediction]) -> dict[str, Any]:
    """Accuracy, parsed rate and format rate of ``preds``."""
    n = len(preds)
    return {
        "n": n,
        "accuracy": rate(sum(p.correct for p in preds), n),
        "parsed_rate": rate(sum(p.parsed_index is not None for p in preds), n),
        "format_rate": rate(sum(p.formatted for p in preds), n),
    }


def _group(preds: Iterable[Prediction], key: Callable[[Prediction], Any]) -> dict[str, dict[str, Any]]:
    groups: dict[Any, list[Prediction]] = defaultdict(list)
    for p in preds:
        groups[key(p)].append(p)
    return {str(k): summarise(v) for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))}


def breakdowns(preds: list[Prediction]) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "issue": _group(preds, lambda p: p.issue),
        "study": _group(preds, lambda p: p.participant_study),
        "n_options": _group(preds, lambda p: p.n_options),
        "gold_position": _group(preds, lambda p: p.gold_index),
    }


BOOTSTRAP_SAMPLES = 1000


def participant_bootstrap(preds: Iterable[Prediction], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict[str, Any]:
    """Accuracy's 95 % interval when whole viewers are resampled (a viewer's rows are not independent draws, so
    the row-level Wilson interval is too narrow when viewers contribute many rows). Percentile bootstrap over
    participants with replacement, seeded; only rows with a ``participant_id`` count. Without two participants
    there is nothing to resample, and the entry says so."""
    import numpy as np

    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in preds:
        if p.participant_id is not None:
            per[p.participant_id][0] += p.correct
            per[p.participant_id][1] += 1
    if len(per) < 2:
        return {"participants": len(per), "note": "fewer than two participants with an id: no participant bootstrap"}
    correct = np.array([k for k, _ in per.values()], dtype=float)
    rows = np.array([n for _, n in per.values()], dtype=float)
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, samples, 100):  # counts per participant, a block of resamples at a time: bounded memory
        counts = rng.multinomial(len(per), np.full(len(per), 1 / len(per)), size=min(100, samples - start))
        values.append((counts @ correct) / np.maximum(counts @ rows, 1))
    drawn = np.concatenate(values)
    return {"participants": len(per), "rows": int(rows.sum()), "value": float(correct.sum() / rows.sum()),
            "ci95": [float(np.percentile(drawn, 2.5)), float(np.percentile(drawn, 97.5))], "samples": samples, "seed": seed}  # fmt: skip
