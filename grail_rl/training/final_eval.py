"""Accuracy of the trained model on the evaluation split(s), written beside the run.

Greedy decoding with the recipe's completion limit; reports go to ``OUTPUT/eval/`` and are complete or
marked partial (:mod:`grail_rl.evaluation.report`). The most-frequent-position baseline is fitted on the
training rows; the synthetic ceiling is read from the synthetic set's metadata when the run used one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from grail_rl.evaluation.baselines import FitRows
from grail_rl.run_layout import EVAL_DIR

logger = logging.getLogger("grail_rl.training")


def synthetic_ceiling(recipe: Any) -> float | None:
    """The ideal predictor's validation accuracy recorded by the synthetic generator, if the run used it."""
    synthetic = getattr(recipe.data, "synthetic", None)
    if synthetic is None or recipe.data.eval:
        return None
    from grail_rl.data.synth import SUMMARY_FILE

    path = Path(synthetic.folder()) / SUMMARY_FILE
    if path.is_file():
        value = json.loads(path.read_text(encoding="utf-8")).get("ideal_accuracy")
        if isinstance(value, int | float):
            return float(value)
    return None


def train_rows(dataset: Any, recipe: Any) -> FitRows | None:
    """The training rows a fitted baseline learns from, with a description of where they come from."""
    if dataset is None or "gold_index" not in dataset.column_names:
        return None
    rows = list(zip(dataset["gold_index"], dataset["n_options"], strict=True))
    labels = sorted(set(dataset["source"])) if "source" in dataset.column_names else []
    kind = "synthetic: " if getattr(recipe.data, "synthetic", None) is not None and not recipe.data.train else ""
    where = f" ({kind}{', '.join(labels)})" if labels else ""
    opinions = list(dataset["opinion_direction"]) if "opinion_direction" in dataset.column_names else None
    return FitRows(rows, f"{len(rows):,} rows of the recipe's train split{where}", opinions)


def evaluate_sets(
    model: Any,
    tokenizer: Any,
    sets: list[tuple[str, Any, float | None]],
    output_dir: Path,
    recipe: Any,
    *,
    fit_rows: FitRows | None,
    meta: dict[str, Any] | None = None,
    other_data: bool = False,
    discriminator: tuple[Any, str] | None = None,
    mode: str = "generate",
) -> list[Any]:
    """Evaluate ``model`` on each (name, dataset, ceiling) and write the reports under ``OUTPUT/eval``;
    ``meta`` goes into every report; ``other_data``: the sets are not the recipe's own eval split."""
    from grail_rl.evaluation.generate import evaluate_model
    from grail_rl.evaluation.report import summary_lines
    from grail_rl.training.callbacks import FILE_ONLY

    reports = []
    batch = max(recipe.trainer.per_device_eval_batch_size, 1)
    for name, dataset, ceiling in sets:
        report = evaluate_model(
            model, tokenizer, dataset, name=name, out_dir=output_dir / EVAL_DIR,
            max_new_tokens=recipe.trainer.max_completion_length, batch_size=batch,
            train_rows=fit_rows, synthetic_ceiling=ceiling,
            chat_template_kwargs=recipe.trainer.chat_template_kwargs, meta=meta, other_data=other_data,
            discriminator=discriminator, mode=mode,
        )  # fmt: skip
        for line in summary_lines(report):
            logger.info(line, extra=FILE_ONLY)  # the console gets the end-of-run summary instead
        reports.append(report)
    return reports


def evaluate_after_training(
    trainer: Any,
    eval_dataset: Any,
    output_dir: Path,
    recipe: Any,
    extra: list | None = None,
    *,
    model: Any = None,
    discriminator: Any = None,
):
    """Evaluate the trained policy (or ``model``) on the eval split (and ``extra`` (name, dataset) sets); with
    the run's ``discriminator`` (frozen for this), the reports get its Turing AUC."""
    model = model if model is not None else trainer.accelerator.unwrap_model(trainer.model)
    sets = [("eval", eval_dataset, synthetic_ceiling(recipe))]
    sets += [(name, ds, None) for name, ds in (extra or [])]
    return evaluate_sets(
        model, trainer.processing_class, sets, output_dir, recipe, fit_rows=train_rows(trainer.train_dataset, recipe),
        discriminator=(discriminator, "the run's discriminator at the end of training") if discriminator else None,
    )  # fmt: skip
