"""Behavioural fidelity: are the model's choices distributed like the viewers' choices?

Accuracy asks whether the top pick is right; a simulated viewer should also choose option k about as often
as real viewers do. For each slate size, the positions the model picked (parsed answers only) are compared
with the positions the viewers clicked by the Jensen-Shannon divergence (base 2: 0 = the same distribution,
1 = no overlap), with a seeded bootstrap 95 % interval over the rows. The overall figure weights each slate
size by its rows. For scale, the same divergence of a uniform random pick is reported beside it: a model
below it places its choices more like people do than chance does; a model that always gives one answer is
far above it whatever its accuracy. No torch here.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

BOOTSTRAP_SAMPLES = 400
BOOTSTRAP_SEED = 0


def js_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence (base 2) of two distributions over the same positions; in [0, 1]."""
    total_p, total_q = sum(p), sum(q)
    if total_p <= 0 or total_q <= 0:
        raise ValueError("a distribution with no mass")
    p = [x / total_p for x in p]
    q = [x / total_q for x in q]
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(a: Sequence[float], b: Sequence[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, b, strict=True) if x > 0)

    return min(1.0, max(0.0, (kl(p, m) + kl(q, m)) / 2))


def _distribution(positions: Sequence[int], size: int) -> list[float]:
    counts = Counter(positions)
    return [float(counts.get(k, 0)) for k in range(1, size + 1)]


def position_fidelity(preds: Sequence[Any]) -> dict[str, Any]:
    """Per slate size and overall: rows, parsed rows, the human and model position shares, the JSD with its
    bootstrap interval, and a uniform random pick's JSD. Rows without a valid parsed answer are left out of
    the model's distribution (their share is the parsed rate, reported beside it)."""
    by_size: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
    for p in preds:
        if not 1 <= int(p.gold_index) <= int(p.n_options):
            continue  # no usable click (the data layer drops such rows; a hand-made prediction may have one)
        valid = p.parsed_index if p.parsed_index is not None and 1 <= p.parsed_index <= p.n_options else None
        by_size[int(p.n_options)].append((int(p.gold_index), valid))
    rng = random.Random(BOOTSTRAP_SEED)
    sizes: dict[str, Any] = {}
    weighted = {"jsd": 0.0, "uniform": 0.0, "rows": 0}
    for size in sorted(by_size):
        rows = by_size[size]
        parsed = [(gold, pick) for gold, pick in rows if pick is not None]
        human = _distribution([gold for gold, _ in rows], size)
        entry: dict[str, Any] = {
            "rows": len(rows),
            "parsed": len(parsed),
            "human": [x / len(rows) for x in human],
            "uniform_pick_jsd": js_divergence([1.0] * size, human),
        }
        if parsed:
            model = _distribution([pick for _, pick in parsed], size)
            entry["model"] = [x / len(parsed) for x in model]
            entry["jsd"] = js_divergence(model, human)
            entry["ci95"] = _bootstrap(rows, size, rng.randrange(2**32))
            weighted["jsd"] += entry["jsd"] * len(rows)
            weighted["uniform"] += entry["uniform_pick_jsd"] * len(rows)
            weighted["rows"] += len(rows)
        sizes[str(size)] = entry
    overall: dict[str, Any] = {"rows": sum(len(r) for r in by_size.values())}
    if weighted["rows"]:
        overall |= {
            "jsd": weighted["jsd"] / weighted["rows"],
            "uniform_pick_jsd": weighted["uniform"] / weighted["rows"],
            "rows_with_parsed_answers_in_sizes": weighted["rows"],
        }
    return {"overall": overall, "by_slate_size": sizes}


def _bootstrap(rows: list[tuple[int, int | None]], size: int, seed: int) -> list[float]:
    """95 % percentile interval of the JSD over rows resampled with replacement (seeded). The JSD depends only
    on how many rows have each (click, pick) pair, so the resamples are multinomial draws of those counts:
    the cost grows with the slate size, not with the number of rows."""
    import numpy as np

    cells = sorted(set(rows), key=lambda cell: (cell[0], -1 if cell[1] is None else cell[1]))
    counts = Counter(rows)
    probabilities = np.array([counts[cell] for cell in cells], dtype=float) / len(rows)
    draws = np.random.default_rng(seed).multinomial(len(rows), probabilities, size=BOOTSTRAP_SAMPLES)
    values = []
    for draw in draws:
        human, model = [0.0] * size, [0.0] * size
        for (gold, pick), count in zip(cells, draw, strict=True):
            human[gold - 1] += count
            if pick is not None:
                model[pick - 1] += count
        if sum(model) > 0:
            values.append(js_divergence(model, human))
    if not values:
        return [0.0, 1.0]
    values.sort()
    return [values[int(0.025 * (len(values) - 1))], values[int(math.ceil(0.975 * (len(values) - 1)))]]
