"""Opinion-direction accuracy: did the model say how the viewer's opinion moved (increase, decrease,
no_change), on the rows where that is known?

Read beside two baselines a model must beat: always ``no_change``, and always the most frequent direction
(fitted on the training split's labels when the evaluation has them; else on the evaluated rows, labelled
in-sample, which flatters it). Every figure has its N and a 95 % Wilson interval. Rows without a known
direction (the study's validation files have none) are left out, and a report without any says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from grail_rl.evaluation.metrics import rate

NO_CHANGE = "no_change"


def opinion_accuracy(preds: Sequence[Any], train_labels: Sequence[str] | None = None,
                     train_source: str = "") -> dict[str, Any]:  # fmt: skip
    """Accuracy and answered rate on the labelled rows, and the no_change and majority baselines."""
    labelled = [p for p in preds if p.opinion_gold is not None]
    n = len(labelled)
    if n == 0:
        return {"n": 0, "note": "no evaluated row has a known opinion direction"}
    golds = [p.opinion_gold for p in labelled]
    fitted = [label for label in (train_labels or []) if label is not None]
    source = train_source if fitted else "the evaluated rows (in-sample: an upper bound for a constant answer)"
    majority = Counter(fitted or golds).most_common(1)[0][0]
    return {
        "n": n,
        "accuracy": rate(sum(p.opinion_pick == p.opinion_gold for p in labelled), n),
        "answered_rate": rate(sum(p.opinion_pick is not None for p in labelled), n),
        "baselines": {
            "always_no_change": rate(sum(g == NO_CHANGE for g in golds), n),
            "majority": {**rate(sum(g == majority for g in golds), n), "label": majority, "fitted_on": source},
        },
    }
