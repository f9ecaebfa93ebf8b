"""The "Turing AUC": can the run's trained discriminator tell the viewers' choices from the model's?

For each evaluated row where the model gave a valid answer, the discriminator (frozen) scores the text of the
viewer's real choice and the text of the model's choice (:mod:`grail_rl.grail.texts`). The AUC of the real
against the model's choices is 0.5 when the discriminator cannot tell them apart (a row where the model chose
the viewer's option is a tie and counts half), 1.0 when it always can. The evaluation rows are never trained
on by the discriminator (it learns from the training split), so this is a held-out figure. A 95 % interval
comes from a seeded bootstrap over the rows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from grail_rl.grail.runtime import auc, row_option_text

BOOTSTRAP_SAMPLES = 400


def turing_auc(rows: Sequence[dict[str, Any]], predictions: Sequence[Any], runtime: Any, *, source: str) -> dict[str, Any]:
    """The discriminator's AUC of real against model choices on ``rows`` (the report's rows, in order)."""
    pairs = [
        (row, pred.parsed_index)
        for row, pred in zip(rows, predictions, strict=False)
        if pred.parsed_index is not None and 1 <= pred.parsed_index <= pred.n_options
    ]
    result: dict[str, Any] = {"n": len(pairs), "discriminator": source}
    if not pairs:
        result["note"] = "no valid answers to compare"
        return result
    real = runtime.score([row_option_text(row, int(row["gold_index"])) for row, _ in pairs])
    model = runtime.score([row_option_text(row, pick) for row, pick in pairs])
    result["value"] = auc(real, model)
    rng = random.Random(0)
    values = []
    for _ in range(BOOTSTRAP_SAMPLES):
        picked = [rng.randrange(len(pairs)) for _ in pairs]
        values.append(auc([real[i] for i in picked], [model[i] for i in picked]))
    values.sort()
    result["ci95"] = [values[int(0.025 * (len(values) - 1))], values[int(math.ceil(0.975 * (len(values) - 1)))]]
    return result


def frozen_discriminator(recipe: Any, state: Any) -> Any:
    """The recipe's discriminator, loaded from the state folder ``state`` and frozen (never updates)."""
    from grail_rl.plugins.base import PluginContext
    from grail_rl.training.discriminator import discriminator_runtime

    runtime = discriminator_runtime(recipe, train=False, init_from=None)
    runtime.setup(PluginContext(device="cpu", seed=recipe.trainer.seed))
    runtime.load_state(state, weights_only=True)
    return runtime
