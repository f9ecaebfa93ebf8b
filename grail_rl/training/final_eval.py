"""The evaluation at the end of ``grail-rl train``: the trained policy on the eval split, written beside the run.

It runs through the shared evaluation runner (:mod:`grail_rl.evaluation.runner`) exactly as ``grail-rl
evaluate`` does: greedy decoding with the recipe's completion limit, reports in ``OUTPUT/eval/`` that are
complete or marked partial, the most-frequent-position baseline fitted on the training rows, the synthetic
ceiling when the run used synthetic data. The run owns its ``eval/`` folder, so a rerun starts the
evaluation afresh instead of resuming an earlier progress log (a resumed training may have new weights).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger("grail_rl.training")


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
    from grail_rl.evaluation.generation import TransformersGenerator
    from grail_rl.evaluation.report import summary_lines
    from grail_rl.evaluation.runner import (
        EVAL_SET,
        BuiltSet,
        Scoring,
        SetPlan,
        evaluate_sets,
        synthetic_ceiling,
        train_rows,
    )
    from grail_rl.run_layout import FINAL_DIR, RunLayout
    from grail_rl.training.callbacks import FILE_ONLY

    model = model if model is not None else trainer.accelerator.unwrap_model(trainer.model)
    generator = TransformersGenerator(
        model, trainer.processing_class, max_new_tokens=recipe.trainer.max_completion_length,
        batch_size=recipe.trainer.per_device_eval_batch_size, chat_template_kwargs=recipe.trainer.chat_template_kwargs,
    )  # fmt: skip
    sets = [BuiltSet(SetPlan(EVAL_SET, None, "the recipe's eval split", ceiling=True), eval_dataset, synthetic_ceiling(recipe))]
    sets += [BuiltSet(SetPlan(name, None, name, ceiling=False), dataset, None) for name, dataset in (extra or [])]

    def to_log(report: Any) -> None:
        for line in summary_lines(report):
            logger.info(line, extra=FILE_ONLY)  # the console gets the end-of-run summary instead

    layout = RunLayout(output_dir)
    meta = {"model_label": FINAL_DIR, "model": str(layout.final.resolve()) if layout.final.exists() else "the trained policy"}
    return evaluate_sets(
        generator, sets, output_dir, fit=train_rows(trainer.train_dataset, recipe), meta=meta,
        scoring=Scoring(settings={"model": "the policy at the end of training"}, resume=False),
        discriminator=(discriminator, "the run's discriminator at the end of training") if discriminator else None,
        note=lambda line: logger.info(line, extra=FILE_ONLY), on_report=to_log,
    )  # fmt: skip
