"""``grail-rl evaluate RECIPE [--model PATH | --base | --predictions FILE ...] [--data FILE ...] [--out DIR]``.

Evaluates a saved model on its own, with the same greedy decoding, answer parser and baselines as the
evaluation at the end of ``grail-rl train`` (:mod:`grail_rl.training.final_eval`):

- the model is the run's ``output.dir/final`` (default), a checkpoint or any model folder (``--model``; a
  LoRA adapter folder loads its base model with the adapter applied), or the recipe's untrained
  ``model.name_or_path`` (``--base``), the honest "before training" number;
- the data are the recipe's eval split (default) or each ``--data`` file as its own set named by its stem;
- the most-frequent-position baseline is fitted on the recipe's *train* rows, never on the evaluated rows;
- reports go to ``OUTPUT/eval/`` for the final model (where ``train`` writes them), else to
  ``OUTPUT/evaluations/<model folder name or "base">/eval/``; an existing report is replaced only with
  ``--overwrite``.

``--predictions FILE`` re-scores stored outputs instead of running a model (one file per set, in the order of
the sets): the rows are built as for a model, each is matched to its stored output by the hash of its user
prompt, and the outputs are read by the same parser (:mod:`grail_rl.evaluation.predictions`). Reports go to
``OUTPUT/evaluations/predictions/eval/`` unless ``--out`` says otherwise.

Everything a user can get wrong (the recipe, the model folder, the data files, an existing report) is
checked before torch is imported, and stops with one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from grail_rl.cli.validate import recipe_options
from grail_rl.errors import GrailError
from grail_rl.files import ensure_writable_folder
from grail_rl.training.run_folder import EVALUATIONS_DIR

BASE_LABEL = "base"
PREDICTIONS_LABEL = "predictions"
EVAL_SET = "eval"  # the recipe's eval split, named as `train` names it
MODEL_FILES = ("config.json", "adapter_config.json")  # a full model, or a PEFT adapter on a base model


@dataclass(frozen=True)
class ModelChoice:
    """The model to evaluate and where its reports go (``out/eval/``)."""

    location: str  # a local folder, or a hub id for --base
    label: str  # final, the folder's name, or "base"
    out: Path


@dataclass(frozen=True)
class SetPlan:
    """One evaluation set: its report name, the recipe whose eval split it is, and what it was read from."""

    name: str
    loaded: Any  # LoadedRecipe
    source: str
    ceiling: bool  # report the synthetic ceiling (the recipe's own synthetic eval split only)


def load(path: str | Path, sets: list[str], trainer_args: list[str], plugins: Any = None) -> Any:
    from grail_rl.recipe.loader import load_recipe

    return load_recipe(path, sets=sets, trainer_args=trainer_args, plugins=plugins)


def model_folder(path: Path, what: str) -> Path:
    """``path`` if it is a folder holding a model or an adapter, else a one-line error naming ``what``."""
    if not path.exists():
        raise GrailError(f"{what}: {path}: no such folder")
    if not path.is_dir():
        raise GrailError(f"{what}: {path} is a file; give the model's folder")
    if not any((path / name).is_file() for name in MODEL_FILES):
        raise GrailError(f"{what}: {path} holds no {' or '.join(MODEL_FILES)}; is it a model folder?")
    from grail_rl.training.checkpoints import MARKER, checkpoint_problem

    if (path / MARKER).is_file():  # a checkpoint or final model grail-rl wrote: its files are listed
        problem = checkpoint_problem(path)
        if problem is not None:
            raise GrailError(f"{what}: {path} is damaged: {problem}; evaluate another checkpoint")
    return path.resolve()


def choose_model(loaded: Any, model_path: Path | None, base: bool, out: Path | None) -> ModelChoice:
    """The model the options name, and the default output folder that goes with it."""
    from grail_rl.models.loading import resolve_model_location
    from grail_rl.training.run import FINAL_DIR

    output_dir = Path(loaded.recipe.output.dir)
    final = output_dir / FINAL_DIR
    if base:
        location = resolve_model_location(loaded.recipe.model.name_or_path, loaded.path.resolve().parent)
        return ModelChoice(location, BASE_LABEL, out or output_dir / EVALUATIONS_DIR / BASE_LABEL)
    if model_path is None:
        if not final.exists():
            raise GrailError(
                f"{final} does not exist: train first (grail-rl train {loaded.path}), "
                "or pass --model PATH (a checkpoint or model folder) or --base"
            )
        folder = model_folder(final, "output.dir/final")
    else:
        folder = model_folder(model_path.expanduser(), "--model")
    # The run's own final model reports beside the run, exactly where `train` puts its evaluation.
    is_final = final.exists() and folder == final.resolve()
    default_out = output_dir if is_final else output_dir / EVALUATIONS_DIR / folder.name
    return ModelChoice(str(folder), FINAL_DIR if is_final else folder.name, out or default_out)


def has_eval_split(recipe: Any) -> bool:
    return bool(recipe.data.eval) or recipe.data.synthetic is not None


def plan_sets(loaded: Any, data: tuple[Path, ...], sets: list[str], trainer_args: list[str]) -> list[SetPlan]:
    """The recipe's eval split, or one set per ``--data`` file (the recipe with ``data.eval`` replaced)."""
    from grail_rl.data.sources import detect_format

    if not data:
        if not has_eval_split(loaded.recipe):
            raise GrailError(
                f"{loaded.path} has no eval split (data.eval is empty and there is no data.synthetic); "
                "pass --data FILE"
            )
        return [SetPlan(EVAL_SET, loaded, "the recipe's eval split", ceiling=True)]
    plans: list[SetPlan] = []
    for path in data:
        path = path.expanduser()
        if not path.exists():
            raise GrailError(f"--data {path}: no such file")
        detect_format(path)  # an unreadable kind of file stops here, before any model is loaded
        name = path.stem if path.is_file() else path.name
        if name == EVAL_SET:
            raise GrailError(
                f"--data {path}: a set named '{EVAL_SET}' would take the place of the recipe's own eval-split "
                "report; rename the file"
            )
        if any(plan.name == name for plan in plans):
            raise GrailError(f"--data: two files are named '{name}'; their reports would replace each other")
        # JSON is valid YAML, so the path needs no quoting of its own; the format is detected as for a recipe.
        overrides = [*sets, "data.eval=" + json.dumps([{"path": str(path.resolve())}])]
        if loaded.recipe.data.train and loaded.recipe.data.synthetic is not None:  # it only filled the eval split
            overrides.append("data.synthetic=null")
        with_file = load(loaded.path, overrides, trainer_args, loaded.plugins)
        plans.append(SetPlan(name, with_file, str(path), ceiling=False))
    return plans


def refuse_existing(eval_dir: Path, names: list[str], overwrite: bool) -> list[Path]:
    """The files earlier evaluations of ``names`` left in ``eval_dir``; refused unless ``overwrite``."""
    from grail_rl.evaluation.report import report_files

    found = [
        path
        for name in names
        for complete in (True, False)
        for path in report_files(eval_dir, name, complete=complete)
        if path.exists()
    ]
    if found and not overwrite:
        raise GrailError(f"{found[0]} already exists; pass --overwrite to replace it, or --out DIR")
    return found


def fit_rows(loaded: Any, tokenizer: Any, limit: int | None) -> Any:
    """(gold, n_options) of the recipe's train rows, for the most-frequent-position baseline.

    Built exactly as training builds them. When the train split cannot be read here (a hub source
    offline, say) the baseline falls back to the evaluated rows, labelled in-sample in the report.
    """
    from grail_rl.data.dataset import build_split
    from grail_rl.training.final_eval import train_rows

    try:
        train, _ = build_split(loaded.recipe, loaded.plugins, "train", tokenizer=tokenizer, limit=limit)
    except GrailError as exc:
        click.echo(f"note: most-frequent-position baseline fitted in-sample (train split: {exc})", err=True)
        return None
    return train_rows(train, loaded.recipe)


def build_sets(plans: list[SetPlan], tokenizer: Any, limit: int | None) -> list[tuple[str, Any, float | None]]:
    """(name, dataset, synthetic ceiling) per plan; a set without usable rows is an error."""
    from grail_rl.data.dataset import build_split
    from grail_rl.training.final_eval import synthetic_ceiling

    built = []
    for plan in plans:
        dataset, report = build_split(
            plan.loaded.recipe, plan.loaded.plugins, "eval", tokenizer=tokenizer, limit=limit
        )
        if len(dataset) == 0:
            raise GrailError(f"{plan.source}: no usable rows ({drop_summary(report)})")
        if report.dropped:
            click.echo(f"note: {plan.source}: {drop_summary(report)}", err=True)
        ceiling = synthetic_ceiling(plan.loaded.recipe) if plan.ceiling else None
        built.append((plan.name, dataset, ceiling))
    return built


def drop_summary(report: Any) -> str:
    """The drop report's headline and its most common reason with an example, on one line."""
    return "; ".join(" ".join(line.split()) for line in report.lines()[:2])


def device_for(recipe: Any) -> str:
    """The GPU when there is one and the recipe does not ask for the CPU, as training would use."""
    import torch

    return "cuda" if torch.cuda.is_available() and not recipe.trainer.use_cpu else "cpu"


@recipe_options
@click.command("evaluate")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Evaluate this checkpoint or model folder [default: output.dir/final].",
)
@click.option("--base", is_flag=True, help="Evaluate the recipe's untrained model.name_or_path.")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Evaluate on FILE instead of the recipe's eval split, as a set named by its stem (repeatable).",
)
@click.option(
    "--max-samples", type=click.IntRange(min=1), default=None, help="Evaluate on at most N prompts per set."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the reports under DIR/eval [default: output.dir for the final model, "
    "else output.dir/evaluations/<model folder or base>].",
)
@click.option(
    "--predictions",
    "predictions",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Re-score the outputs stored in FILE instead of running a model: one file per set (the eval split, or "
    "each --data file in order), matched to the rows by prompt hash.",
)
@click.option(
    "--mode",
    type=click.Choice(["generate", "choice-logprob"]),
    default="generate",
    show_default=True,
    help="generate: greedy answers, parsed; choice-logprob: each option's probability after a forced answer "
    "prefix (one forward pass per row; docs/training.md).",
)
@click.option("--overwrite", is_flag=True, help="Replace reports an earlier evaluation wrote.")
@click.pass_context
def evaluate(
    ctx: click.Context,
    recipe: str,
    sets: tuple[str, ...],
    model_path: Path | None,
    base: bool,
    data: tuple[Path, ...],
    max_samples: int | None,
    out: Path | None,
    predictions: tuple[Path, ...],
    mode: str,
    overwrite: bool,
) -> None:
    """Evaluate a saved model (the run's final model, a checkpoint, or the base model) as RECIPE says.

    Greedy decoding, accuracy with 95 % intervals against the baselines; exits 2 on any problem.
    """
    if model_path is not None and base:
        raise GrailError("--model and --base exclude each other: give one model to evaluate")
    from grail_rl.training.final_eval import EVAL_DIR

    limit = [f"data.max_eval_samples={max_samples}"] if max_samples is not None else []
    # With --data the sample limit belongs to each file's set (the recipe itself may have no eval split).
    overrides = [*sets, *limit]
    if predictions and (model_path is not None or base):
        raise GrailError("--predictions re-scores stored outputs: it takes no --model or --base")
    if predictions and mode != "generate":
        raise GrailError("--mode applies to a model; --predictions re-scores the outputs as they were stored")
    loaded = load(recipe, list(sets) if data else overrides, list(ctx.args))
    if predictions:
        output_dir = Path(loaded.recipe.output.dir)
        choice = ModelChoice(PREDICTIONS_LABEL, PREDICTIONS_LABEL, out or output_dir / EVALUATIONS_DIR / PREDICTIONS_LABEL)
    else:
        choice = choose_model(loaded, model_path, base, out)
    plans = plan_sets(loaded, data, overrides, list(ctx.args))
    if predictions and len(predictions) != len(plans):
        raise GrailError(
            f"--predictions: give one file per evaluated set ({len(plans)}: "
            f"{', '.join(plan.name for plan in plans)}), got {len(predictions)}"
        )
    stale = refuse_existing(choice.out / EVAL_DIR, [plan.name for plan in plans], overwrite)
    ensure_writable_folder(choice.out / EVAL_DIR, "--out" if out is not None else "output.dir")  # before loading
    if predictions:
        reports = run_rescoring(loaded, choice, plans, list(predictions), stale)
    else:
        reports = run_evaluation(loaded, choice, plans, stale, mode=mode)
    print_reports(reports, choice.out / EVAL_DIR)


def run_evaluation(
    loaded: Any, choice: ModelChoice, plans: list[SetPlan], stale: list[Path], *, mode: str = "generate"
) -> list[Any]:
    """Load the data, then the model, and evaluate every set; ``stale`` reports are removed just before."""
    from grail_rl.models.loading import load_model, prompt_measure
    from grail_rl.training.final_eval import evaluate_sets

    click.echo(f"evaluating {choice.location}", err=True)
    # Data before the model: a file without usable rows stops before a large model is loaded. Prompts are
    # measured and limited as training measures them (the model's tokens; its context window by default).
    tokenizer, limit = prompt_measure(loaded.recipe, choice.location)
    built = build_sets(plans, tokenizer, limit)
    baseline_rows = fit_rows(loaded, tokenizer, limit)
    from grail_rl.training.final_eval import EVAL_DIR

    model = load_model(loaded.recipe.model, choice.location).to(device_for(loaded.recipe))
    discriminator = saved_discriminator(loaded.recipe, choice.location)
    meta = {"model": choice.location, "model_label": choice.label, "recipe": str(loaded.path.resolve())}
    reports = []
    for (name, dataset, ceiling), plan in zip(built, plans, strict=True):
        reports += evaluate_sets(
            model, tokenizer, [(name, dataset, ceiling)], choice.out, loaded.recipe,
            fit_rows=baseline_rows, meta={**meta, "data": plan.source}, other_data=not plan.ceiling,
            discriminator=discriminator, mode=mode,
        )  # fmt: skip
    # Only now, with the new reports written: an older report of another completeness (a partial beside a
    # new complete one) would contradict them. An interrupted evaluation leaves the older ones as they were.
    _remove_stale(stale, reports, choice.out / EVAL_DIR)
    return reports


def saved_discriminator(recipe: Any, location: str) -> tuple[Any, str] | None:
    """The discriminator saved with the evaluated model (a GRAIL run's final/ or checkpoint), frozen, with
    where it came from; None for a model without one or a recipe without a discriminator block."""
    from grail_rl.grail.settings import STATE_NAME, state_folder
    from grail_rl.training.checkpoints import STATE_DIR

    folder = Path(location)
    if recipe.discriminator is None or not folder.is_dir():
        return None
    state = state_folder(folder / STATE_DIR / STATE_NAME)
    if state is None:
        return None
    from grail_rl.evaluation.turing import frozen_discriminator

    return frozen_discriminator(recipe, state), str(state)


def run_rescoring(
    loaded: Any, choice: ModelChoice, plans: list[SetPlan], files: list[Path], stale: list[Path]
) -> list[Any]:
    """Score the stored outputs of ``files`` (one per plan) on the rows the plans build; no model, no torch.

    The prompts are built without a tokenizer (limits, if the recipe sets any, count characters), so a row
    the model's evaluation dropped or truncated differently has no stored output and the report is partial.
    """
    from grail_rl.evaluation.generate import prediction_for
    from grail_rl.evaluation.predictions import match_outputs, prompt_hash, read_predictions
    from grail_rl.evaluation.report import build_report
    from grail_rl.files import check_readable_path
    from grail_rl.training.final_eval import EVAL_DIR

    for path in files:  # a missing or unreadable file stops before any work
        check_readable_path(path.expanduser(), "--predictions")
    built = build_sets(plans, None, None)
    sets_rows = [[dict(row) for row in dataset] for _, dataset, _ in built]
    # Only the evaluated prompts' outputs are kept in memory, however large the files.
    stored = [read_predictions(path.expanduser(), {prompt_hash(row["prompt"]) for row in rows})
              for path, rows in zip(files, sets_rows, strict=True)]  # fmt: skip
    baseline_rows = fit_rows(loaded, None, None)
    reports = []
    for (name, _dataset, ceiling), plan, outputs_file, rows in zip(built, plans, stored, sets_rows, strict=True):
        outputs = match_outputs(outputs_file, [row["prompt"] for row in rows], set_name=name)
        scored = [prediction_for(row, text, False) for row, text in zip(rows, outputs, strict=True) if text is not None]
        missing = len(rows) - len(scored)
        if missing:
            click.echo(f"note: {outputs_file.path} has no output for {missing:,} of the {len(rows):,} rows of "
                       f"'{name}': the report is partial", err=True)  # fmt: skip
        meta = {"model": f"stored outputs ({outputs_file.path})", "model_label": choice.label,
                "recipe": str(loaded.path.resolve()), "data": plan.source, "decoding": "as stored"}  # fmt: skip
        report = build_report(name, scored, expected_rows=len(rows), train_rows=baseline_rows,
                              synthetic_ceiling=ceiling, meta=meta, other_data=not plan.ceiling)  # fmt: skip
        report.write(choice.out / EVAL_DIR)
        reports.append(report)
    _remove_stale(stale, reports, choice.out / EVAL_DIR)
    return reports


def _remove_stale(stale: list[Path], reports: list[Any], eval_dir: Path) -> None:
    """Remove the earlier reports the new ones replace (only now, with the new ones written)."""
    from grail_rl.evaluation.report import report_files

    written = {path for report in reports for path in report_files(eval_dir, report.name, complete=report.complete)}
    for path in stale:
        if path not in written:
            path.unlink(missing_ok=True)


def print_reports(reports: list[Any], eval_dir: Path) -> None:
    from grail_rl.evaluation.report import report_files, summary_lines

    for report in reports:
        for line in summary_lines(report):
            click.echo(line)
        click.echo(f"  report: {report_files(eval_dir, report.name, complete=report.complete)[0]}")
