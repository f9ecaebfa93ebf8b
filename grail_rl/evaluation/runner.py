"""The evaluation runner ``evaluate``, ``train`` and ``demo`` share: sets to evaluate, a model through the
generation interface (or stored outputs), incremental predictions, resume, reports.

- :func:`evaluate_set` scores one set's rows with a :class:`~grail_rl.evaluation.generation.Generator`
  (``generate``: greedy answers read by the shared parser; ``choice-logprob``: each option's probability),
  appends every finished chunk to the set's progress log (:mod:`grail_rl.evaluation.progress`) and resumes
  from it, then writes the report, complete or marked partial (:mod:`grail_rl.evaluation.report`);
- :func:`run_evaluation` is ``grail-rl evaluate`` on a model: data first, then the model, then every set;
- :func:`run_rescoring` is ``grail-rl evaluate --predictions``: stored outputs, no model, no torch;
- :func:`plan_sets`, :func:`choose_model`, :func:`refuse_existing` decide what is evaluated and where the
  reports go (a :class:`~grail_rl.run_layout.RunLayout`), before anything heavy is loaded.

Evaluation never trains: the model is put in eval mode under ``torch.inference_mode`` by the generator.
Notes for the user (dropped rows, a resume, a partial report) go to ``note`` (stderr by default).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.evaluation.baselines import FitRows
from grail_rl.evaluation.metrics import Prediction
from grail_rl.evaluation.predictions import full_prompt_hash, prompt_hash
from grail_rl.evaluation.progress import (
    ProgressLog,
    model_fingerprint,
    progress_logs,
    progress_path,
    rows_digest,
    settings_key,
)
from grail_rl.evaluation.report import EvalReport, build_report, report_files
from grail_rl.evaluation.rows import prediction_for, row_prediction
from grail_rl.run_layout import EVAL_DIR, FINAL_DIR, RunLayout

BASE_LABEL = "base"
PREDICTIONS_LABEL = "predictions"
EVAL_SET = "eval"  # the recipe's eval split, named as `train` names it
MODEL_FILES = ("config.json", "adapter_config.json")  # a full model, or a PEFT adapter on a base model
MODES = ("generate", "choice-logprob")
BACKENDS = ("transformers", "vllm")


def stderr_note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


Note = Callable[[str], None]


@dataclass(frozen=True)
class ModelChoice:
    """The model to evaluate and where its reports go (``out/eval/``)."""

    location: str  # a local folder, or a hub id for --base
    label: str  # final, the folder's name, or "base"
    out: Path

    @property
    def eval_dir(self) -> Path:
        return self.out / EVAL_DIR


@dataclass(frozen=True)
class SetPlan:
    """One evaluation set: its report name, the recipe whose eval split it is, and what it was read from."""

    name: str
    loaded: Any  # LoadedRecipe
    source: str
    ceiling: bool  # report the synthetic ceiling (the recipe's own synthetic eval split only)


@dataclass(frozen=True)
class BuiltSet:
    """A planned set with its rows built: the dataset and the synthetic ceiling, if reported."""

    plan: SetPlan
    dataset: Any
    ceiling: float | None

    @property
    def name(self) -> str:
        return self.plan.name


# --- what to evaluate, and where the reports go ---------------------------------------------------------


def load(path: str | Path, sets: list[str], trainer_args: list[str], plugins: Any = None) -> Any:
    from grail_rl.recipe.loader import load_recipe

    return load_recipe(path, sets=sets, trainer_args=trainer_args, plugins=plugins)


def model_folder(path: Path, what: str) -> Path:
    """``path`` if it is a folder holding a model or an adapter, else a one-line error naming ``what``."""
    if not path.exists():
        raise GrailError(f"{what}: {path}: no such folder")
    if path.is_file() and path.suffix == ".gguf":  # a GGUF model: converted when the evaluation starts
        return path.resolve()
    if not path.is_dir():
        raise GrailError(f"{what}: {path} is a file; give the model's folder (or a .gguf file)")
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

    layout = RunLayout(Path(loaded.recipe.output.dir))
    if base:
        block, here = loaded.recipe.model, loaded.path.resolve().parent
        if block.gguf_file is not None:  # converted when the evaluation starts, after every check
            from grail_rl.models.gguf import find_gguf

            location = str(find_gguf(block.name_or_path, block.gguf_file, here))
        else:
            location = resolve_model_location(block.name_or_path, here)
        return ModelChoice(location, BASE_LABEL, out or layout.evaluation_root(BASE_LABEL))
    if model_path is None:
        if not layout.final.exists():
            raise GrailError(
                f"{layout.final} does not exist: train first (grail-rl train {loaded.path}), "
                "or pass --model PATH (a checkpoint or model folder) or --base"
            )
        folder = model_folder(layout.final, "output.dir/final")
    else:
        folder = model_folder(model_path.expanduser(), "--model")
    # The run's own final model reports beside the run, exactly where `train` puts its evaluation.
    is_final = layout.final.exists() and folder == layout.final.resolve()
    label = folder.stem if folder.suffix == ".gguf" else folder.name
    default_out = layout.root if is_final else layout.evaluation_root(label)
    return ModelChoice(str(folder), FINAL_DIR if is_final else label, out or default_out)


def predictions_choice(loaded: Any, out: Path | None) -> ModelChoice:
    """Where the re-scoring of stored outputs reports."""
    layout = RunLayout(Path(loaded.recipe.output.dir))
    return ModelChoice(PREDICTIONS_LABEL, PREDICTIONS_LABEL, out or layout.evaluation_root(PREDICTIONS_LABEL))


def has_eval_split(recipe: Any) -> bool:
    return bool(recipe.data.eval) or recipe.data.synthetic is not None


def plan_sets(loaded: Any, data: Sequence[Path], sets: list[str], trainer_args: list[str]) -> list[SetPlan]:
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


def refuse_existing(eval_dir: Path, names: Sequence[str], overwrite: bool) -> list[Path]:
    """The files earlier evaluations of ``names`` left in ``eval_dir``: a complete report is refused unless
    ``overwrite``; an interrupted one (a partial report, a progress log) is resumed or refused once the
    settings are known (:func:`resumable`). Returns what the new reports replace."""
    complete = [path for name in names for path in report_files(eval_dir, name, complete=True) if path.exists()]
    if complete and not overwrite:
        raise GrailError(f"{complete[0]} already exists; pass --overwrite to replace it, or --out DIR")
    leftovers = [
        path
        for name in names
        for path in [*report_files(eval_dir, name, complete=False), *progress_logs(eval_dir, name)]
        if path.exists()
    ]
    return complete + leftovers


def resumable(eval_dir: Path, name: str, key: str, overwrite: bool) -> bool:
    """Whether set ``name`` resumes from its progress log with settings ``key`` (the same settings: its rows
    are this evaluation's rows, with or without ``overwrite``). An interrupted evaluation with other settings
    is refused unless ``overwrite``, which lets the new report replace it."""
    own = progress_path(eval_dir, name, key)
    if own.exists():
        return True
    if overwrite:
        return False
    others = [
        path
        for path in [*report_files(eval_dir, name, complete=False), *progress_logs(eval_dir, name)]
        if path.exists()
    ]
    if others:
        raise GrailError(
            f"{others[0]} holds an interrupted evaluation of '{name}' with other settings (model, mode, decoding "
            "or rows); pass --overwrite to replace it, or --out DIR"
        )
    return False


def refuse_leftovers(eval_dir: Path, names: Sequence[str], overwrite: bool) -> None:
    """Stored outputs and baselines resume nothing: an interrupted evaluation left in ``eval_dir`` (a partial
    report, a progress log) is refused unless ``overwrite``, never removed silently."""
    if overwrite:
        return
    for name in names:
        for path in [*report_files(eval_dir, name, complete=False), *progress_logs(eval_dir, name)]:
            if path.exists():
                raise GrailError(
                    f"{path} holds an interrupted evaluation of '{name}'; pass --overwrite to replace it, or --out DIR"
                )


def remove_stale(stale: Sequence[Path], reports: Sequence[EvalReport], eval_dir: Path) -> None:
    """Remove the earlier files the new reports replace (only now, with the new ones written)."""
    written = {path for report in reports for path in report_files(eval_dir, report.name, complete=report.complete)}
    for path in stale:
        if path not in written:
            path.unlink(missing_ok=True)


# --- the rows ------------------------------------------------------------------------------------------


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


def fit_rows(loaded: Any, tokenizer: Any, limit: int | None, note: Note = stderr_note) -> FitRows | None:
    """The recipe's train rows, for the fitted baselines, built exactly as training builds them. When the
    train split cannot be read here (a hub source offline, say) the baselines fall back to the evaluated
    rows, labelled in-sample in the report."""
    from grail_rl.data.dataset import build_split

    try:
        train, _ = build_split(loaded.recipe, loaded.plugins, "train", tokenizer=tokenizer, limit=limit)
    except GrailError as exc:
        note(f"note: most-frequent-position baseline fitted in-sample (train split: {exc})")
        return None
    return train_rows(train, loaded.recipe)


def drop_summary(report: Any) -> str:
    """The drop report's headline and its most common reason with an example, on one line."""
    return "; ".join(" ".join(line.split()) for line in report.lines()[:2])


def build_sets(plans: Sequence[SetPlan], tokenizer: Any, limit: int | None, note: Note = stderr_note) -> list[BuiltSet]:
    """Each plan's rows; a set without usable rows is an error."""
    from grail_rl.data.dataset import build_split

    built = []
    for plan in plans:
        dataset, report = build_split(
            plan.loaded.recipe, plan.loaded.plugins, "eval", tokenizer=tokenizer, limit=limit
        )
        if len(dataset) == 0:
            raise GrailError(f"{plan.source}: no usable rows ({drop_summary(report)})")
        if report.dropped:
            note(f"note: {plan.source}: {drop_summary(report)}")
        built.append(BuiltSet(plan, dataset, synthetic_ceiling(plan.loaded.recipe) if plan.ceiling else None))
    return built


# --- scoring one set -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scoring:
    """How a set is scored: the mode, the answer parser's leniency, and the settings a resume must match."""

    mode: str = "generate"
    allow_bare_numbers: bool = False
    settings: dict[str, Any] | None = None  # the model's identity and the decoding; the rows are added per set
    resume: bool = True

    def key(self, rows: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """The progress-log key of ``rows`` under these settings, and the settings recorded with it. The rows
        count with their whole prompt (system prompt included), gold and slate size."""
        hashes = [full_prompt_hash(row["prompt"]) for row in rows]
        golds = [(int(row["gold_index"]), int(row["n_options"])) for row in rows]
        full = {**(self.settings or {}), "mode": self.mode, "allow_bare_numbers": self.allow_bare_numbers,
                "rows": rows_digest(hashes, golds), "expected_rows": len(rows)}  # fmt: skip
        return settings_key(full), full


def evaluate_set(
    generator: Any,
    dataset: Any,
    *,
    name: str,
    out_dir: Path | None = None,
    scoring: Scoring | None = None,
    train_rows: FitRows | None = None,
    synthetic_ceiling: float | None = None,
    meta: dict[str, Any] | None = None,
    other_data: bool = False,
    discriminator: tuple[Any, str] | None = None,
    note: Note = stderr_note,
) -> EvalReport:
    """Score every row of ``dataset`` (columns prompt, gold_index, n_options, ...) with ``generator`` and
    report. With ``out_dir`` every finished chunk goes to the set's progress log first, rows an earlier run
    logged with the same settings are taken from it (``scoring.resume``), and the report is written there:
    complete, or marked partial when interrupted (the error is raised again). ``discriminator`` (a frozen
    runtime and where it came from) adds the Turing AUC of a complete run."""
    rows = [dict(r) for r in dataset]
    scoring = scoring or Scoring()
    if scoring.mode == "choice-logprob" and not hasattr(generator, "option_probabilities"):
        raise GrailError(f"--mode choice-logprob needs a model's logits; {generator.description} gives only text")
    key, settings = scoring.key(rows)
    log = ProgressLog(progress_path(out_dir, name, key), settings) if out_dir is not None else None
    done: dict[int, Prediction] = {}
    if log is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if scoring.resume:
            done = log.load([(prompt_hash(r["prompt"]), int(r["gold_index"]), int(r["n_options"])) for r in rows])
        elif log.path.exists():
            log.path.unlink()  # the caller owns this folder and asked for a fresh start (train's own eval)
    if done:
        note(f"resuming '{name}': {len(done):,} of {len(rows):,} rows come from an interrupted run ({log.path})")
    meta = {**_decoding(generator, scoring.mode), **(meta or {}), **({"resumed_rows": len(done)} if done else {})}
    predictions = dict(done)

    def report() -> EvalReport:
        ordered = [predictions[i] for i in sorted(predictions)]
        return build_report(
            name, ordered, expected_rows=len(rows), train_rows=train_rows, synthetic_ceiling=synthetic_ceiling,
            meta=meta, other_data=other_data, extra_baselines=leak_baseline([rows[i] for i in sorted(predictions)], train_rows),
        )  # fmt: skip

    todo = [i for i in range(len(rows)) if i not in done]
    if log is not None and todo:
        # The log (its header: these settings) exists before the first chunk, so a run stopped inside it
        # resumes with the same command instead of meeting its own partial report as another evaluation's.
        log.append([])
    try:
        for start in range(0, len(todo), generator.chunk_size):
            chunk = todo[start : start + generator.chunk_size]
            scored = _score_chunk(generator, [rows[i] for i in chunk], chunk, scoring)
            if log is not None:
                log.append(scored)
            predictions.update(zip(chunk, scored, strict=True))
    except BaseException:
        if out_dir is not None:
            report().write(out_dir)  # marked partial by its row count; the progress log stays for the resume
        raise
    result = report()
    if discriminator is not None:
        from grail_rl.evaluation.turing import turing_auc

        result.turing = turing_auc(rows, result.predictions, discriminator[0], source=discriminator[1])
    if out_dir is not None:
        result.write(out_dir)
        # Only now, with the complete report holding every row: the partial report and this log go; a caller
        # that does not resume owns the folder, and interrupted logs of other settings go too.
        logs = [log.path] if scoring.resume else progress_logs(out_dir, name)
        for path in (*report_files(out_dir, name, complete=False), *logs):
            path.unlink(missing_ok=True)
    return result


def _decoding(generator: Any, mode: str) -> dict[str, Any]:
    if mode == "choice-logprob":
        from grail_rl.evaluation.choice_logprob import ANSWER_PREFIX

        return {"decoding": "choice-logprob", "answer_prefix": ANSWER_PREFIX, "generator": generator.description}
    limit = getattr(generator, "max_new_tokens", None)
    return {"decoding": "greedy", "generator": generator.description} | ({"max_new_tokens": limit} if limit else {})


def _score_chunk(generator: Any, rows: list[dict[str, Any]], ids: list[int], scoring: Scoring) -> list[Prediction]:
    prompts = [row["prompt"] for row in rows]
    if scoring.mode == "choice-logprob":
        distributions = generator.option_probabilities(prompts, [int(row["n_options"]) for row in rows])
        return [
            row_prediction(row, 1 + max(range(len(p)), key=p.__getitem__), probabilities=p, row_id=i)
            for row, p, i in zip(rows, distributions, ids, strict=True)
        ]
    texts = generator.generate(prompts)
    if len(texts) != len(rows):
        raise GrailError(f"{generator.description} answered {len(texts)} of {len(rows)} prompts")
    return [
        prediction_for(row, text, scoring.allow_bare_numbers, row_id=i)
        for row, text, i in zip(rows, texts, ids, strict=True)
    ]


def leak_baseline(rows: Sequence[dict[str, Any]], fit: FitRows | None) -> dict[str, dict[str, Any]]:
    """The metadata-leak rule as one of the report's trivial baselines (when any row shows the leak), with the
    most frequent position of the fitting rows (else of these rows) as its fallback."""
    from collections import Counter

    from grail_rl.evaluation.learned_baselines import metadata_leak_entry

    golds = [gold for gold, _ in fit.rows] if fit is not None and fit.rows else [int(r["gold_index"]) for r in rows]
    if not golds or not rows:
        return {}
    entry = metadata_leak_entry(rows, Counter(golds).most_common(1)[0][0])
    return {"metadata_leak": entry} if entry is not None else {}


def evaluate_sets(
    generator: Any,
    sets: Sequence[BuiltSet],
    out: Path,
    *,
    fit: FitRows | None,
    scoring: Scoring,
    meta: dict[str, Any] | None = None,
    discriminator: tuple[Any, str] | None = None,
    note: Note = stderr_note,
    on_report: Callable[[EvalReport], None] | None = None,
) -> list[EvalReport]:
    """Evaluate each built set with ``generator`` into ``out/eval``; ``meta`` goes into every report."""
    reports = []
    for built in sets:
        report = evaluate_set(
            generator, built.dataset, name=built.name, out_dir=out / EVAL_DIR, scoring=scoring, train_rows=fit,
            synthetic_ceiling=built.ceiling, meta={**(meta or {}), "data": built.plan.source},
            other_data=not built.plan.ceiling, discriminator=discriminator, note=note,
        )  # fmt: skip
        if on_report is not None:
            on_report(report)
        reports.append(report)
    return reports


# --- grail-rl evaluate ---------------------------------------------------------------------------------


def device_for(recipe: Any) -> str:
    """The GPU when there is one and the recipe does not ask for the CPU, as training would use."""
    import torch

    return "cuda" if torch.cuda.is_available() and not recipe.trainer.use_cpu else "cpu"


def model_generator(loaded: Any, location: str, tokenizer: Any, backend: str) -> Any:
    """The generator for the model at ``location``: transformers (loaded onto the recipe's device) or vLLM."""
    recipe = loaded.recipe
    if backend == "vllm":
        from grail_rl.evaluation.generation import VLLMGenerator

        return VLLMGenerator(
            location, max_new_tokens=recipe.trainer.max_completion_length,
            chat_template_kwargs=recipe.trainer.chat_template_kwargs,
        )  # fmt: skip
    from grail_rl.evaluation.generation import TransformersGenerator
    from grail_rl.models.loading import load_model

    model = load_model(recipe.model, location).to(device_for(recipe))
    return TransformersGenerator(
        model, tokenizer, max_new_tokens=recipe.trainer.max_completion_length,
        batch_size=recipe.trainer.per_device_eval_batch_size, chat_template_kwargs=recipe.trainer.chat_template_kwargs,
    )  # fmt: skip


def model_settings(recipe: Any, location: str) -> dict[str, Any]:
    """What else decides the model's answers besides its files: how the recipe loads it (dtype, revision,
    attention, remote code, the chat template's text) and, for a LoRA adapter, its base model's files."""
    import hashlib

    from grail_rl.models.loading import chat_template_override

    block = recipe.model.model_dump(mode="json", exclude={"lora", "chat_template", "chat_template_file"})
    template = chat_template_override(recipe.model)
    out: dict[str, Any] = {"model_block": block,
                           "chat_template": hashlib.sha256(template.encode()).hexdigest()[:16] if template else None}  # fmt: skip
    adapter = Path(location) / "adapter_config.json"
    if adapter.is_file():
        try:
            base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError):
            base = None
        out["adapter_base"] = model_fingerprint(str(base)) if isinstance(base, str) else None
    return out


def run_evaluation(
    loaded: Any,
    choice: ModelChoice,
    plans: Sequence[SetPlan],
    stale: Sequence[Path] = (),
    *,
    mode: str = "generate",
    backend: str = "transformers",
    overwrite: bool = False,
    note: Note = stderr_note,
) -> list[EvalReport]:
    """Load the data, check what resumes, then load the model and evaluate every set; ``stale`` files (from
    :func:`refuse_existing`) are removed only once the new reports are written."""
    from grail_rl.models.loading import prompt_measure

    if choice.location.endswith(".gguf") and Path(choice.location).is_file():  # converted once, then cached
        from dataclasses import replace

        from grail_rl.models.gguf import convert_gguf

        choice = replace(choice, location=str(convert_gguf(Path(choice.location), note=note)))
    note(f"evaluating {choice.location}")
    # Data before the model: a file without usable rows stops before a large model is loaded. Prompts are
    # measured and limited as training measures them (the model's tokens; its context window by default).
    tokenizer, limit = prompt_measure(loaded.recipe, choice.location)
    built = build_sets(plans, tokenizer, limit, note)
    recipe = loaded.recipe
    settings = {
        "model": model_fingerprint(choice.location), "backend": backend,
        "max_new_tokens": recipe.trainer.max_completion_length, "chat_template_kwargs": recipe.trainer.chat_template_kwargs,
        **model_settings(recipe, choice.location),
    }  # fmt: skip
    scoring = Scoring(mode=mode, settings=settings)
    for one in built:  # an interrupted evaluation with other settings stops here, before the model loads
        resumable(choice.eval_dir, one.name, scoring.key(list(one.dataset))[0], overwrite)
    fit = fit_rows(loaded, tokenizer, limit, note)
    generator = model_generator(loaded, choice.location, tokenizer, backend)
    discriminator = saved_discriminator(recipe, choice.location)
    meta = {"model": choice.location, "model_label": choice.label, "recipe": str(loaded.path.resolve())}
    reports = evaluate_sets(
        generator, built, choice.out, fit=fit, scoring=scoring, meta=meta, discriminator=discriminator, note=note,
    )  # fmt: skip
    # Only now, with the new reports written: an older report of another completeness (a partial beside a
    # new complete one) would contradict them. An interrupted evaluation leaves the older ones as they were.
    remove_stale(stale, reports, choice.eval_dir)
    return reports


def served_choice(loaded: Any, endpoint: Any, out: Path | None) -> ModelChoice:
    """Where a served model's evaluation reports: ``evaluations/served-<model name>-<digest>``; the digest of the
    URL and the exact name keeps apart models whose names read alike in a folder name (``org/m``, ``org_m``)."""
    import hashlib
    import re

    digest = hashlib.sha256(f"{endpoint.base_url}\n{endpoint.model}".encode("utf-8", "surrogatepass")).hexdigest()[:8]
    label = f"served-{(re.sub(r'[^A-Za-z0-9._-]+', '_', endpoint.model).strip('._') or 'model')[:80]}-{digest}"
    return ModelChoice(f"{endpoint.model} at {endpoint.base_url}", label,
                       out or RunLayout(Path(loaded.recipe.output.dir)).evaluation_root(label))  # fmt: skip


def run_served_evaluation(
    loaded: Any,
    choice: ModelChoice,
    plans: Sequence[SetPlan],
    endpoint: Any,
    stale: Sequence[Path] = (),
    *,
    overwrite: bool = False,
    note: Note = stderr_note,
) -> list[EvalReport]:
    """Evaluate a model behind an OpenAI-compatible server exactly as a local one (generate mode): the same rows
    (built without a tokenizer: the server applies its own chat template), parser, metrics, progress log and
    resume. The server is checked with one short request before any row."""
    from grail_rl.evaluation.generation import ServedGenerator

    recipe = loaded.recipe
    built = build_sets(plans, None, None, note)
    kwargs = recipe.trainer.chat_template_kwargs or None
    settings = {"served": {"base_url": endpoint.base_url, "model": endpoint.model},
                "max_new_tokens": recipe.trainer.max_completion_length, "chat_template_kwargs": kwargs}  # fmt: skip
    scoring = Scoring(settings=settings)
    for one in built:
        resumable(choice.eval_dir, one.name, scoring.key(list(one.dataset))[0], overwrite)
    generator = ServedGenerator(endpoint, max_new_tokens=recipe.trainer.max_completion_length, chat_template_kwargs=kwargs)
    note(f"evaluating {endpoint.describe()}")
    generator.served.check()
    meta = {"model": choice.location, "model_label": choice.label, "recipe": str(loaded.path.resolve())}
    reports = evaluate_sets(generator, built, choice.out, fit=fit_rows(loaded, None, None, note), scoring=scoring,
                            meta=meta, note=note)  # fmt: skip
    if generator.refusals["rows"]:
        note(f"{generator.refusals['rows']:,} rows the server refused were scored as unanswered (wrong; their output "
             f"in the predictions says so); first: {generator.refusals['first']}")  # fmt: skip
    remove_stale(stale, reports, choice.eval_dir)
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
    loaded: Any,
    choice: ModelChoice,
    plans: Sequence[SetPlan],
    files: Sequence[Path],
    stale: Sequence[Path] = (),
    note: Note = stderr_note,
) -> list[EvalReport]:
    """Score the stored outputs of ``files`` (one per plan) on the rows the plans build; no model, no torch.

    The prompts are built without a tokenizer and without a prompt limit (every usable row is kept), so a row
    the model's evaluation dropped or truncated for its limit has no stored output and the report is partial.
    """
    from grail_rl.evaluation.predictions import match_outputs, read_predictions
    from grail_rl.files import check_readable_path

    for path in files:  # a missing or unreadable file stops before any work
        check_readable_path(path.expanduser(), "--predictions")
    built = build_sets(plans, None, None, note)
    sets_rows = [[dict(row) for row in one.dataset] for one in built]
    # Only the evaluated prompts' outputs are kept in memory, however large the files.
    stored = [read_predictions(path.expanduser(), {prompt_hash(row["prompt"]) for row in rows})
              for path, rows in zip(files, sets_rows, strict=True)]  # fmt: skip
    fit = fit_rows(loaded, None, None, note)
    reports = []
    for one, outputs_file, rows in zip(built, stored, sets_rows, strict=True):
        outputs = match_outputs(outputs_file, [row["prompt"] for row in rows], set_name=one.name)
        scored = [prediction_for(row, text, False, row_id=i)
                  for i, (row, text) in enumerate(zip(rows, outputs, strict=True)) if text is not None]  # fmt: skip
        missing = len(rows) - len(scored)
        if missing:
            note(f"note: {outputs_file.path} has no output for {missing:,} of the {len(rows):,} rows of "
                 f"'{one.name}': the report is partial")  # fmt: skip
        meta = {"model": f"stored outputs ({outputs_file.path})", "model_label": choice.label,
                "recipe": str(loaded.path.resolve()), "data": one.plan.source, "decoding": "as stored"}  # fmt: skip
        report = build_report(one.name, scored, expected_rows=len(rows), train_rows=fit,
                              synthetic_ceiling=one.ceiling, meta=meta, other_data=not one.plan.ceiling,
                              extra_baselines=leak_baseline([r for r, t in zip(rows, outputs, strict=True) if t is not None], fit))  # fmt: skip
        report.write(choice.eval_dir)
        reports.append(report)
    remove_stale(stale, reports, choice.eval_dir)
    return reports


# --- grail-rl evaluate --baseline ----------------------------------------------------------------------


def baseline_choice(loaded: Any, name: str, out: Path | None) -> ModelChoice:
    """Where baseline ``name`` reports: ``evaluations/baseline-NAME`` (or ``--out DIR/baseline-NAME``)."""
    label = f"baseline-{name}"
    root = out / label if out is not None else RunLayout(Path(loaded.recipe.output.dir)).evaluation_root(label)
    return ModelChoice(f"baseline {name}", label, root)


def run_baselines(
    loaded: Any,
    plans: Sequence[SetPlan],
    names: Sequence[str],
    choices: Sequence[ModelChoice],
    stale: Sequence[Path] = (),
    note: Note = stderr_note,
) -> list[EvalReport]:
    """Evaluate each baseline in ``names`` on every set, as a model would be: its answers, its distribution
    where it has one, every metric. Fitted on the recipe's train rows for its own eval split, cross-fitted
    (grouped by viewer) on the evaluated rows of a ``--data`` file. No torch."""
    from grail_rl.evaluation.learned_baselines import FOLDS, UNFITTED, cross_fitted, predict, row_view

    built = build_sets(plans, None, None, note)
    needs_train = any(one.plan.ceiling for one in built)
    train_views: list[Any] = []
    fit = None
    if needs_train:
        from grail_rl.data.dataset import build_split

        train, _ = build_split(loaded.recipe, loaded.plugins, "train")
        train_views = [row_view(dict(row)) for row in train]
        fit = train_rows(train, loaded.recipe)
    seed = loaded.recipe.data.seed
    reports = []
    for name, choice in zip(names, choices, strict=True):
        for one in built:
            rows = [dict(row) for row in one.dataset]
            views = [row_view(row) for row in rows]
            try:
                if one.plan.ceiling:
                    picks, fitted_on = predict(name, train_views, views, seed), f"{len(train_views):,} rows of the recipe's train split"
                else:
                    picks = cross_fitted(name, views, seed)
                    fitted_on = f"cross-fitted: {FOLDS} folds of these rows grouped by viewer, each predicted by a fit on the others"
            except GrailError as exc:
                if len(names) == 1:
                    raise
                note(f"note: baseline {name} left out on '{one.name}': {exc}")  # the others are still evaluated
                continue
            scored = [row_prediction(row, index, probabilities=probabilities, formatted=True, row_id=i)
                      for i, (row, index, probabilities) in enumerate(zip(rows, picks.index, picks.probabilities, strict=True))]  # fmt: skip
            meta = {"model": f"baseline {name}", "model_label": choice.label, "baseline": name, "decoding": "baseline",
                    "fitted_on": fitted_on if name not in UNFITTED else "nothing (a rule)",
                    "recipe": str(loaded.path.resolve()), "data": one.plan.source}  # fmt: skip
            report = build_report(one.name, scored, expected_rows=len(rows), train_rows=fit if one.plan.ceiling else None,
                                  extra_baselines=leak_baseline(rows, fit if one.plan.ceiling else None),
                                  synthetic_ceiling=one.ceiling, meta=meta, other_data=not one.plan.ceiling)  # fmt: skip
            report.write(choice.eval_dir)
            reports.append(report)
        remove_stale([path for path in stale if path.is_relative_to(choice.eval_dir)],
                     [r for r in reports if r.meta["model_label"] == choice.label], choice.eval_dir)  # fmt: skip
    return reports
