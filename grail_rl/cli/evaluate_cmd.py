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

from pathlib import Path

import click

from grail_rl.cli.validate import recipe_options
from grail_rl.errors import GrailError
from grail_rl.evaluation.learned_baselines import NAMES as BASELINE_NAMES
from grail_rl.evaluation.runner import (
    BACKENDS,
    MODES,
    baseline_choice,
    choose_model,
    load,
    plan_sets,
    predictions_choice,
    refuse_existing,
    refuse_leftovers,
    run_baselines,
    run_evaluation,
    run_rescoring,
    run_served_evaluation,
    served_choice,
)
from grail_rl.files import ensure_writable_folder


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
    type=click.Choice(MODES),
    default="generate",
    show_default=True,
    help="generate: greedy answers, parsed; choice-logprob: each option's probability after a forced answer "
    "prefix (one forward pass per row; docs/evaluation.md).",
)
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    metavar="NAME",
    help="Evaluate a baseline instead of a model (repeatable, or 'all'): "
    f"{', '.join(BASELINE_NAMES)}; docs/evaluation.md.",
)
@click.option("--endpoint", default=None, metavar="URL",
              help="Evaluate the model behind this OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) "
              "instead of a local one; give --served-model too. The API key comes from $GRAIL_RL_API_KEY or "
              "$OPENAI_API_KEY.")  # fmt: skip
@click.option("--served-model", default=None, metavar="NAME", help="The model name the server knows (with --endpoint).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=None,
              help="Requests in flight at once (with --endpoint)  [default: 8]")  # fmt: skip
@click.option("--retries", type=click.IntRange(0, 20), default=None,
              help="Retries per request: refused connections, timeouts, 429, 5xx (with --endpoint)  [default: 5]")  # fmt: skip
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="transformers",
    show_default=True,
    help="What generates the answers: transformers, or vLLM's offline engine (installed, on a GPU).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace reports an earlier evaluation wrote, and start an interrupted one over instead of resuming it.",
)
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
    baselines: tuple[str, ...],
    endpoint: str | None,
    served_model: str | None,
    concurrency: int | None,
    retries: int | None,
    backend: str,
    overwrite: bool,
) -> None:
    """Evaluate a saved model (the run's final model, a checkpoint, or the base model) as RECIPE says.

    Greedy decoding, accuracy with 95 % intervals against the baselines; an interrupted evaluation resumes
    from its progress log when rerun with the same settings; exits 2 on any problem.
    """
    if model_path is not None and base:
        raise GrailError("--model and --base exclude each other: give one model to evaluate")
    limit = [f"data.max_eval_samples={max_samples}"] if max_samples is not None else []
    # With --data the sample limit belongs to each file's set (the recipe itself may have no eval split).
    overrides = [*sets, *limit]
    names = check_baselines(baselines, model_path=model_path, base=base, predictions=predictions, mode=mode, backend=backend)
    served = check_served(endpoint, served_model, concurrency, retries, model_path=model_path, base=base, predictions=predictions,
                          baselines=baselines, mode=mode, backend=backend)  # fmt: skip
    if predictions and (model_path is not None or base):
        raise GrailError("--predictions re-scores stored outputs: it takes no --model or --base")
    if predictions and mode != "generate":
        raise GrailError("--mode applies to a model; --predictions re-scores the outputs as they were stored")
    if predictions and backend != "transformers":
        raise GrailError("--backend applies to a model; --predictions re-scores the outputs as they were stored")
    if backend == "vllm" and mode == "choice-logprob":
        raise GrailError("--mode choice-logprob reads the model's logits: use --backend transformers")
    loaded = load(recipe, list(sets) if data else overrides, list(ctx.args))
    plans = plan_sets(loaded, data, overrides, list(ctx.args))
    if names:
        choices = [baseline_choice(loaded, name, out) for name in names]
        for c in choices:
            ensure_writable_folder(c.eval_dir, "--out" if out is not None else "output.dir")
            hold_folder(c.eval_dir, out)
        stale = [path for c in choices for path in refuse_existing(c.eval_dir, [plan.name for plan in plans], overwrite)]
        for c in choices:
            refuse_leftovers(c.eval_dir, [plan.name for plan in plans], overwrite)
        note = lambda line: click.echo(line, err=True)  # noqa: E731
        reports = run_baselines(loaded, plans, names, choices, stale, note=note)
        for c in choices:
            print_reports([r for r in reports if r.meta["model_label"] == c.label], c.eval_dir)
        return
    if served is not None:
        choice = served_choice(loaded, served, out)
    elif predictions:
        choice = predictions_choice(loaded, out)
    else:
        choice = choose_model(loaded, model_path, base, out)
    if predictions and len(predictions) != len(plans):
        raise GrailError(
            f"--predictions: give one file per evaluated set ({len(plans)}: "
            f"{', '.join(plan.name for plan in plans)}), got {len(predictions)}"
        )
    ensure_writable_folder(choice.eval_dir, "--out" if out is not None else "output.dir")  # before loading
    if choice.out.resolve() == Path(loaded.recipe.output.dir).resolve():
        # The run's own eval/ (its final model): a `train` on this run writes there too, under the run's lock.
        from grail_rl.training.folder_lock import FolderLock

        _HELD.append(FolderLock(choice.out).acquire())
    hold_folder(choice.eval_dir, out)
    stale = refuse_existing(choice.eval_dir, [plan.name for plan in plans], overwrite)
    if predictions:
        refuse_leftovers(choice.eval_dir, [plan.name for plan in plans], overwrite)
    note = lambda line: click.echo(line, err=True)  # noqa: E731
    if served is not None:
        reports = run_served_evaluation(loaded, choice, plans, served, stale, overwrite=overwrite, note=note)
    elif predictions:
        reports = run_rescoring(loaded, choice, plans, list(predictions), stale, note=note)
    else:
        reports = run_evaluation(loaded, choice, plans, stale, mode=mode, backend=backend, overwrite=overwrite, note=note)
    print_reports(reports, choice.eval_dir)


def check_served(endpoint: str | None, model: str | None, concurrency: int | None, retries: int | None,
                 **others: object) -> object:  # fmt: skip
    """The served model the options name (an :class:`~grail_rl.serving.client.Endpoint`), or None; it replaces
    a local model, so it takes no model option of its own kind."""
    if endpoint is None and model is None:
        if concurrency is not None or retries is not None:
            raise GrailError("--concurrency and --retries apply to a served model: give --endpoint and --served-model")
        return None
    if endpoint is None or model is None:
        raise GrailError("--endpoint and --served-model go together: the server's URL and the model name it knows")
    from grail_rl.serving.client import Endpoint, check_url

    endpoint = check_url(endpoint, "--endpoint")
    if others["model_path"] is not None or others["base"] or others["predictions"] or others["baselines"]:
        raise GrailError("--endpoint evaluates a served model: it takes no --model, --base, --predictions or --baseline")
    if others["mode"] != "generate" or others["backend"] != "transformers":
        raise GrailError("--endpoint generates through the server: --mode choice-logprob and --backend do not apply")

    return Endpoint(endpoint.rstrip("/"), model, concurrency=8 if concurrency is None else concurrency,
                    max_retries=5 if retries is None else retries)  # fmt: skip


_HELD: list = []  # the evaluation folders this process holds, until it ends


def hold_folder(eval_dir: Path, out: Path | None) -> None:
    """One evaluation per folder at a time: a second process would interleave its progress log and reports
    with this one's. The lock is released when the process ends, however it ends."""
    from grail_rl.training.folder_lock import FolderLock

    _HELD.append(FolderLock(eval_dir, "--out" if out is not None else "the evaluation folder").acquire())


def check_baselines(baselines: tuple[str, ...], **others: object) -> list[str]:
    """The baselines asked for (``all`` = every one, in the documented order); they exclude a model."""
    if not baselines:
        return []
    if others["model_path"] is not None or others["base"] or others["predictions"]:
        raise GrailError("--baseline evaluates a baseline instead of a model: it takes no --model, --base or --predictions")
    if others["mode"] != "generate" or others["backend"] != "transformers":
        raise GrailError("--mode and --backend apply to a model; a baseline gives its own answers and distribution")
    unknown = [name for name in baselines if name != "all" and name not in BASELINE_NAMES]
    if unknown:
        raise GrailError(f"--baseline {unknown[0]}: unknown; choose from {', '.join(BASELINE_NAMES)} or all")
    wanted = set(BASELINE_NAMES) if "all" in baselines else set(baselines)
    return [name for name in BASELINE_NAMES if name in wanted]


def print_reports(reports: list, eval_dir: Path) -> None:
    from grail_rl.evaluation.report import report_files, summary_lines

    for report in reports:
        for line in summary_lines(report):
            click.echo(line)
        click.echo(f"  report: {report_files(eval_dir, report.name, complete=report.complete)[0]}")
