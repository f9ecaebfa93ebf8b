"""One training run from a loaded recipe: output folder, data, rewards, model, GRPO, final save, evaluation.

:func:`run_training` is what ``grail-rl train`` calls (in every process of a distributed launch). Tests
may pass their own small datasets and reward callables; everything else (model loading, GRPOConfig,
checkpoints, logging, metadata) is the same code path.

The folder is claimed first (locked, checked, an earlier run set aside when it is being replaced; see
:mod:`grail_rl.training.output_claim`), a resume is checked against the checkpoint it continues
(:mod:`grail_rl.training.resume`), and the session is recorded in ``run.json`` before the model loads.
Once the trainer is built the claim is committed; a failure before that puts a replaced run back, a
failure after it (Ctrl-C and SIGTERM included) is recorded as ``failed`` or ``interrupted`` with the
way to resume.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError, describe_exception
from grail_rl.run_layout import FINAL_DIR
from grail_rl.training.checkpoints import STAGING, clear_staging
from grail_rl.training.config import GRAIL_DECIDED, build_grpo_config
from grail_rl.training.discriminator import check_discriminator_state, discriminator_runtime
from grail_rl.training.output_claim import OutputClaim, claim_output_dir
from grail_rl.training.preflight import check_generation_kwargs, check_optional_packages, check_precision
from grail_rl.training.resume import ResumePlan, checkpoint_identity, plan_resume, refuse_if_complete
from grail_rl.training.run_folder import read_run, record_session, update_run

logger = logging.getLogger("grail_rl.training")


@dataclass
class RunResult:
    output_dir: Path
    global_step: int
    train_metrics: dict[str, Any]
    final_dir: Path | None
    eval_reports: list[Any] = field(default_factory=list)
    weights_sha256: str | None = None
    # Why no evaluation ran, when none did (shown in the summary instead of accuracy lines).
    no_eval_reason: str | None = None
    # The starting model on the same eval split(s), when the caller measured it (the demo does).
    starting_reports: list[Any] = field(default_factory=list)


def world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def check_world_size(recipe: Any) -> None:
    _, size = world()
    if size != recipe.launch.num_processes:
        raise GrailError(
            f"launch.num_processes is {recipe.launch.num_processes} but this launch runs {size} process(es); "
            f"set --set launch.num_processes={size} (the batch rule is checked against it)"
        )


def reward_functions(loaded: Any, output_dir: Path) -> tuple[list[Any], list[float]]:
    from grail_rl.rewards.runtime import build_reward_functions

    entries = [
        (block.plugin_spec, block.plugin_options(), block.weight, block.on_fault)
        for block in loaded.recipe.rewards
    ]
    return build_reward_functions(
        entries, fault_dir=output_dir / "reward_faults", group_size=loaded.recipe.trainer.num_generations
    )


def plugin_context(trainer: Any, tokenizer: Any, output_dir: Path, recipe: Any, **extra: Any) -> Any:
    """The :class:`~grail_rl.plugins.PluginContext` this process gives its plugins."""
    from grail_rl.plugins.base import PluginContext

    state = trainer.accelerator.state
    return PluginContext(
        device=str(trainer.accelerator.device),
        rank=state.process_index,
        local_rank=state.local_process_index,
        world_size=state.num_processes,
        output_dir=output_dir,
        tokenizer=tokenizer,
        accelerator=trainer.accelerator,
        seed=recipe.trainer.seed,
        **extra,
    )


def setup_plugins(reward_funcs: list[Any], context: Any) -> None:
    """Call ``setup(context)`` on every reward that has one (a test's plain callables have none)."""
    for func in reward_funcs:
        setup = getattr(func, "setup", None)
        if callable(setup):
            setup(context)


def load_data(loaded: Any, output_dir: Path, tokenizer: Any, limit: int | None = None) -> tuple[Any, Any, str | None]:
    """(train split, eval split or None, why there is no eval split); each split's drop counts are said."""
    from grail_rl.data.dataset import build_split

    recipe = loaded.recipe
    train, report = build_split(
        recipe, loaded.plugins, "train", report_dir=output_dir, tokenizer=tokenizer, limit=limit
    )
    _say_drops(report, output_dir)
    has_eval = bool(recipe.data.eval) or getattr(recipe.data, "synthetic", None) is not None
    evals, reason = None, "the recipe has no eval split (data.eval or data.synthetic)"
    if has_eval:
        evals, report = build_split(
            recipe, loaded.plugins, "eval", report_dir=output_dir, tokenizer=tokenizer, limit=limit
        )
        _say_drops(report, output_dir)
    if len(train) == 0:
        raise GrailError(f"no training rows left after filtering (see {output_dir}/drop_report_train.json)")
    if evals is not None and len(evals) == 0:
        # A small synthetic set can put no viewer in validation; an empty split must not be reported as a
        # 0.000 accuracy, and TRL cannot evaluate on it during training.
        if recipe.trainer.eval_strategy != "no" or recipe.trainer.eval_on_start:
            raise GrailError(
                f"the eval split is empty (see {output_dir}/drop_report_eval.json) but trainer.eval_strategy "
                "asks for evaluation; give data.eval rows (or a bigger data.synthetic.n) or set "
                "trainer.eval_strategy: no"
            )
        reason = f"the eval split is empty (see {output_dir}/drop_report_eval.json)"
        logger.warning("%s: no evaluation after training", reason)
        evals = None
    return train, evals, reason


def _say_drops(report: Any, output_dir: Path) -> None:
    """The drop report's counts per reason, on the console and in train.log (rank 0 logs them)."""
    if world()[0] != 0:
        return
    head = report.lines()[0]
    if report.dropped or report.truncated:
        head += f" (details in {output_dir}/drop_report_{report.split}.json)"
    logger.info("data %s", head)
    for reason, info in report.as_dict()["reasons"].items():
        example = info["example"]
        where = f" (e.g. {example['source']} row {example['row']}: {example['detail']})" if example else ""
        logger.info("data %s:   %d dropped as %s%s", report.split, info["count"], reason, where)


def weights_digest(model: Any) -> str:
    """sha256 over every parameter (name, dtype, bytes): equal digests mean equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(t.dtype).encode())
        digest.update(t.view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes())
    return digest.hexdigest()


def shards_parameters(trainer: Any) -> bool:
    """True under FSDP or DeepSpeed ZeRO-3, where no rank holds the whole model in ``state_dict()``."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    if getattr(trainer, "is_deepspeed_enabled", False):
        plugin = trainer.accelerator.state.deepspeed_plugin
        return getattr(plugin, "zero_stage", None) == 3
    return False


def gather_full_weights_on_save(trainer: Any) -> None:
    """Make ``save_model`` write whole weights under FSDP.

    The shipped FSDP config keeps SHARDED_STATE_DICT so that checkpoints save and resume fast, but with it
    transformers' ``save_model`` writes no weights at all; the final model must be a folder that loads
    with ``from_pretrained``. (DeepSpeed ZeRO-3 gathers through ``zero3_save_16bit_model`` in its config.)
    """
    if getattr(trainer, "is_fsdp_enabled", False):
        plugin = trainer.accelerator.state.fsdp_plugin
        if "FULL_STATE_DICT" not in str(plugin.state_dict_type):
            plugin.set_state_dict_type("FULL_STATE_DICT")


def whole_model_for_eval(trainer: Any, recipe: Any, final_dir: Path) -> Any:
    """None (evaluate the trained model in memory), or the saved final model where parameters are sharded.

    Under FSDP or ZeRO-3 every forward pass needs all ranks, but the evaluation runs on rank 0 alone: it
    would wait forever. Rank 0 reloads the whole saved weights instead (one full copy of the model).
    """
    if not shards_parameters(trainer):
        return None
    from grail_rl.models.loading import load_model

    return load_model(recipe.model, str(final_dir)).to(trainer.accelerator.device)


def save_final(trainer: Any, output_dir: Path) -> Path:
    """Save the final model and tokenizer to ``OUTPUT/final`` through a staging folder (atomic rename).

    The folder gets the same marker and file digests as a checkpoint, so ``evaluate`` can tell a damaged
    copy from a good one, and the extra state (the discriminator) under ``grail_state/`` as a checkpoint does.
    A failed save (a full disk: torch raises a RuntimeError there) is one line and leaves neither a staging
    folder nor a half-written ``final/``.
    """
    from grail_rl.training.checkpoints import save_extra_state, save_failure, write_marker

    staged, final = output_dir / STAGING / FINAL_DIR, output_dir / FINAL_DIR
    gather_full_weights_on_save(trainer)
    main = trainer.args.should_save
    if main:
        shutil.rmtree(staged, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    try:
        # _internal_call: otherwise, with push_to_hub, save_model pushes the whole output folder while the
        # staging copy is in it; the end of run_training pushes the finished folder instead.
        trainer.save_model(str(staged), _internal_call=True)
        if main:
            # The discriminator (and the mixer) go with the final model: a run without checkpoints keeps it too,
            # and discriminator.init_from can start another run from it.
            save_extra_state(getattr(trainer, "_grail_state_savers", ()), staged)
            write_marker(staged, {"global_step": trainer.state.global_step, "saved_at": time.time(), "final": True})
            if final.exists():
                shutil.rmtree(final)
            os.replace(staged, final)
            shutil.rmtree(output_dir / STAGING, ignore_errors=True)
    except Exception as exc:
        shutil.rmtree(staged, ignore_errors=True)
        if main:
            try:
                (output_dir / STAGING).rmdir()
            except OSError:
                pass
        raise GrailError(f"could not save the final model to {final}: {save_failure(exc)}") from exc
    trainer.accelerator.wait_for_everyone()
    return final


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's preemption or time limit): stop like Ctrl-C, recorded as interrupted."""


@contextmanager
def sigterm_stops_the_run() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while training (main thread only), so the run records why it
    stopped and how to resume before the scheduler's final SIGKILL."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("terminated (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def decided_on_main(state: Any, decide: Callable[[], Any]) -> Any:
    """Run ``decide`` on rank 0 only and give every rank its result, or the same one-line error."""
    result, error = None, None
    if state.is_main_process:
        try:
            result = decide()
        except GrailError as exc:
            if state.num_processes == 1:
                raise
            error = (str(exc), exc.exit_code)
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        box = [result, error]
        broadcast_object_list(box, from_process=0)
        result, error = box
        if error is not None:
            failure = GrailError(error[0])
            failure.exit_code = error[1]
            raise failure
    return result


def run_training(
    loaded: Any,
    *,
    resume: str | bool | None = None,
    accept_changes: bool = False,
    train_dataset: Any = None,
    eval_dataset: Any = None,
    reward_funcs: list[Any] | None = None,
    reward_weights: list[float] | None = None,
    console: bool = True,
    evaluate: bool = True,
    callbacks: list[Any] | None = None,
    state_savers: list[Any] | None = None,
    fresh_state: tuple[str, ...] = (),
) -> RunResult:
    """Train as the recipe says; see the module docstring.

    ``resume``: ``"latest"`` (or True) or a checkpoint path; ``accept_changes``: resume even though the
    recipe or the plugins changed since the checkpoint (recorded in run.json). ``state_savers``: extra
    state saved in every checkpoint and restored on resume (see :class:`~grail_rl.training.checkpoints.
    StateSaver`), beside the run's own; ``fresh_state``: names of savers to start anew on a resume.
    """
    from grail_rl.training.callbacks import attach_log_file, detach_log_file

    recipe = loaded.recipe
    check_world_size(recipe)
    check_optional_packages(recipe)
    check_generation_kwargs(recipe)
    check_precision(recipe)
    rank, _ = world()
    output_dir = Path(recipe.output.dir)
    resuming = resume not in (None, False)
    if resuming and rank == 0:
        refuse_if_complete(output_dir, loaded, accept_changes=accept_changes)  # before touching anything
    # Building the config first sets up the process group, so the ranks can wait for rank 0's folder checks.
    config = build_grpo_config(recipe, reward_weights=reward_weights)
    state = config.distributed_state
    claim: OutputClaim | None = None

    def prepare() -> tuple[str | None, list[str], str | None]:
        nonlocal claim
        claim = claim_output_dir(output_dir, resume=resuming, overwrite=recipe.output.overwrite)
        try:
            plan = ResumePlan(None)
            if resuming and claim.fresh_start is None:
                plan = plan_resume(output_dir, resume, loaded, accept_changes=accept_changes)
            check_discriminator_state(recipe, plan.checkpoint, fresh_state)
            clear_staging(output_dir)
            record_session(loaded, output_dir, resumed_from=plan.checkpoint, changes=plan.accepted)
        except BaseException:
            claim.abandon()
            claim.release()
            claim = None
            raise
        return (str(plan.checkpoint) if plan.checkpoint else None), plan.accepted, claim.fresh_start

    checkpoint, accepted, fresh_start = decided_on_main(state, prepare)
    handlers = attach_log_file(output_dir) if rank == 0 else []
    progress: dict[str, Any] = {}  # the trainer, once built (its step is recorded if the run fails)
    try:
        with sigterm_stops_the_run():
            if fresh_start:
                logger.warning("--resume: %s", fresh_start)
            for change in accepted:
                logger.warning("--resume: accepted recipe change %s", change)
            return _train(
                loaded, output_dir, checkpoint, claim, progress, train_dataset, eval_dataset, reward_funcs,
                reward_weights, console, evaluate, callbacks, list(state_savers or []), fresh_state,
            )  # fmt: skip
    except BaseException as exc:
        if rank == 0:
            if claim is not None and claim.set_aside is not None:
                claim.abandon()  # not started: the run it was replacing is put back whole
            else:
                _record_end(output_dir, loaded, exc, progress.get("trainer"))
        raise
    finally:
        detach_log_file(handlers)
        if claim is not None:
            claim.release()


def _train(
    loaded: Any,
    output_dir: Path,
    checkpoint: str | None,
    claim: OutputClaim | None,
    progress: dict[str, Any],
    train_dataset: Any,
    eval_dataset: Any,
    reward_funcs: list[Any] | None,
    reward_weights: list[float] | None,
    console: bool,
    evaluate: bool,
    callbacks: list[Any] | None,
    state_savers: list[Any],
    fresh_state: tuple[str, ...],
) -> RunResult:
    """Load, build, set up the plugins, commit the folder, train, save, evaluate."""
    from grail_rl.data.dataset import prompt_limit
    from grail_rl.models.loading import context_window, load_policy
    from grail_rl.training.callbacks import RunLogCallback
    from grail_rl.training.hub import HubPusher, hidden_from_hub
    from grail_rl.training.trainer import build_trainer

    recipe = loaded.recipe
    rank, _ = world()
    model, tokenizer, peft_config = load_policy(recipe.model, loaded.path.resolve().parent)
    no_eval_reason = None if eval_dataset is not None else "no eval split was given"
    # transformers' own tqdm bars ("Writing model shards" at every save) would break into the run's progress
    # display and the per-step lines.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if train_dataset is None:
        limit = prompt_limit(recipe, context_window(model.config))
        train_dataset, loaded_eval, no_eval_reason = load_data(loaded, output_dir, tokenizer, limit)
        eval_dataset = eval_dataset if eval_dataset is not None else loaded_eval
    if reward_funcs is None:
        reward_funcs, reward_weights = reward_functions(loaded, output_dir)
    discriminator = discriminator_runtime(recipe)
    run_callbacks = [RunLogCallback(output_dir, console=console), *(callbacks or [])]
    if discriminator is not None:
        state_savers = [*state_savers, discriminator]
        run_callbacks.append(discriminator.callback(train_dataset))
    mixer = None
    if recipe.reward_mixer.learnable:
        from grail_rl.training.reward_mixer import LearnableRewardMixer

        names = [getattr(f, "__name__", f"reward_{i}") for i, f in enumerate(reward_funcs)]
        mixer = LearnableRewardMixer(names, reward_weights or [1.0 / len(names)] * len(names),
                                     recipe.reward_mixer.learning_rate)  # fmt: skip
        state_savers = [*state_savers, mixer]
    config = build_grpo_config(recipe, reward_weights=reward_weights)
    in_training_eval = (
        eval_dataset if recipe.trainer.eval_strategy != "no" or recipe.trainer.eval_on_start else None
    )
    pusher = (
        HubPusher(recipe.hub.hub_model_id, private=recipe.hub.hub_private_repo,
                  ignore=hidden_from_hub(recipe.hub.push_data_files))  # fmt: skip
        if (recipe.hub.revision_per_save and recipe.hub.hub_model_id)
        else None
    )
    trainer = build_trainer(
        model=model,
        tokenizer=tokenizer,
        config=config,
        reward_funcs=reward_funcs,
        train_dataset=train_dataset,
        eval_dataset=in_training_eval,
        peft_config=peft_config,
        callbacks=run_callbacks,
        save_completions=recipe.logging.save_completions,
        hub_pusher=pusher,
        checkpoint_info=checkpoint_identity(loaded),
        card=(loaded.resolved(), {}),
        push_data_files=recipe.hub.push_data_files,
        state_savers=state_savers,
        reward_mixer=mixer,
    )
    progress["trainer"] = trainer
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # RunLogCallback prints the compact line instead
    context = plugin_context(
        trainer, tokenizer, output_dir, recipe, discriminator=discriminator,
        in_training_step=lambda: bool(trainer.model.training),
    )  # fmt: skip
    if discriminator is not None:
        discriminator.setup(context, resuming=checkpoint is not None)
    setup_plugins(reward_funcs, context)
    if checkpoint is not None:
        from grail_rl.training.checkpoints import restore_extra_state

        for name in restore_extra_state(state_savers, Path(checkpoint), fresh=fresh_state):
            logger.warning("--resume: the %s starts afresh (its state in %s is not used)", name, checkpoint)
    if rank == 0:
        if claim is not None:
            claim.commit()  # the new run has everything it needs: only now is a replaced run deleted
        decided = {key: getattr(config, key, None) for key in GRAIL_DECIDED} | {"why": GRAIL_DECIDED}
        update_run(output_dir, status="running", training_started=True, session={"grail_rl_decided": decided})
    started = time.perf_counter()
    if checkpoint is not None and reached_last_step(Path(checkpoint), recipe):
        metrics_out = finish_from_last_checkpoint(trainer, Path(checkpoint))
    else:
        metrics_out = trainer.train(resume_from_checkpoint=checkpoint).metrics
    final_dir = save_final(trainer, output_dir)
    # The ranks-agree check needs whole parameters on every rank: DDP and ZeRO-1/2, not FSDP or ZeRO-3.
    digests = (
        None
        if shards_parameters(trainer)
        else trainer.accelerator.gather_for_metrics([weights_digest(trainer.model)], use_gather_object=True)
    )
    # One discriminator: every rank must hold the same one (gathered on every launch, checked on rank 0).
    disc_digests = (
        trainer.accelerator.gather_for_metrics([discriminator.digest()], use_gather_object=True)
        if discriminator is not None
        else None
    )
    metrics = {**metrics_out, "train_wall_seconds": time.perf_counter() - started}
    result = RunResult(output_dir, trainer.state.global_step, metrics, final_dir, weights_sha256=digests and digests[0])
    if rank == 0:
        if digests and len(set(digests)) > 1:
            logger.error("ranks ended with different weights: %s", digests)
        if disc_digests and len(set(disc_digests)) > 1:
            logger.error("ranks ended with different discriminators: %s", disc_digests)
        update_run(
            output_dir,
            status="trained",
            global_step=trainer.state.global_step,
            train_metrics=metrics,
            weights_sha256_per_rank=digests,
            **({"discriminator_sha256_per_rank": disc_digests} if disc_digests else {}),
        )
    if not evaluate:
        result.no_eval_reason = "evaluation was turned off (--no-eval)"
    elif eval_dataset is None:
        result.no_eval_reason = no_eval_reason
    if evaluate and rank == 0 and eval_dataset is not None:
        from grail_rl.training.final_eval import evaluate_after_training

        result.eval_reports = evaluate_after_training(
            trainer, eval_dataset, output_dir, recipe, model=whole_model_for_eval(trainer, recipe, final_dir),
            discriminator=discriminator,
        )
        trainer._grail_card = (loaded.resolved(), {**metrics, **_card_metrics(result.eval_reports)})
    if rank == 0:
        update_run(output_dir, status="completed")
    if recipe.hub.push_to_hub:
        trainer.push_to_hub(commit_message=f"grail-rl: end of training (step {trainer.state.global_step})")
    return result


def reached_last_step(checkpoint: Path, recipe: Any) -> bool:
    """The checkpoint is at (or past) the run's last step: there is nothing left to train."""
    from grail_rl.training.checkpoints import read_trainer_state

    state = read_trainer_state(checkpoint)
    target = recipe.trainer.max_steps if recipe.trainer.max_steps > 0 else state.get("max_steps")
    step = state.get("global_step")
    return isinstance(step, int) and isinstance(target, int) and target > 0 and step >= target


def finish_from_last_checkpoint(trainer: Any, checkpoint: Path) -> dict[str, Any]:
    """Take the weights and state of a checkpoint saved at the last step, without training.

    Resuming the Trainer from such a checkpoint trains one step past the end (and would then replace
    ``final/`` with that extra step's weights); a run killed after its last checkpoint but before ``final/``
    only needs the checkpoint's weights saved and evaluated.
    """
    from transformers.trainer_callback import TrainerState

    trainer._load_from_checkpoint(str(checkpoint))
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    logger.warning(
        "%s is the run's last step (%d): nothing left to train; saving final/ from it", checkpoint.name,
        trainer.state.global_step,
    )
    return {"finished_from": checkpoint.name}


def _record_end(output_dir: Path, loaded: Any, exc: BaseException, trainer: Any) -> None:
    """Record in run.json why the run stopped, and say how to go on (in the error itself when it is ours)."""
    from grail_rl.training.callbacks import FILE_ONLY
    from grail_rl.training.checkpoints import complete_checkpoints

    step = getattr(getattr(trainer, "state", None), "global_step", None)
    interrupted = isinstance(exc, KeyboardInterrupt)
    if interrupted:
        error = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
    else:
        error = describe_exception(exc).splitlines()[0][:500]
    found = complete_checkpoints(output_dir)
    record = read_run(output_dir) or {}
    began = trainer is not None and bool(record.get("training_started"))
    if record.get("status") == "trained" and (output_dir / "final").exists():
        # Stopped during the evaluation after training: the model is saved; only the evaluation is missing.
        hint = (
            f"training is complete and final/ is saved; evaluate it with: grail-rl evaluate {loaded.path} "
            "--overwrite (a partial report may be in the way)"
        )
    elif found:
        hint = f"resume from {found[-1].name} with: grail-rl train {loaded.path} --resume"
    elif not began:
        hint = f"training had not begun; fix the problem and run grail-rl train {loaded.path} again (the folder is reused)"
    else:
        hint = f"no checkpoint was saved; start again with: grail-rl train {loaded.path} --set output.overwrite=true"
    fields: dict[str, Any] = {"status": "interrupted" if interrupted else "failed", "error": error, "next": hint}
    if step is not None:
        fields["global_step"] = step
    try:
        update_run(output_dir, **fields, ended_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    except OSError as write_error:  # a full disk: the error being raised matters more
        logger.error("could not record the end of the run in run.json: %s", write_error)
    if interrupted:
        logger.warning("%s at step %s; %s", error, step if step is not None else "?", hint)
    elif not began:  # a bad model path, no rows left ...: the error line says it all, train.log keeps the rest
        logger.error("the run failed before training: %s (%s)", error, hint, exc_info=exc, extra=FILE_ONLY)
    else:
        logger.error("training failed at step %s: %s", step if step is not None else "?", error, exc_info=exc,
                     extra=FILE_ONLY)  # fmt: skip
        if isinstance(exc, GrailError) and exc.args:
            exc.args = (f"{exc.args[0]}\n{hint}", *exc.args[1:])
        else:
            logger.warning(hint)


def _card_metrics(reports: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for report in reports:
        data = report.as_dict()
        out[f"eval/{report.name}/accuracy"] = data["overall"]["accuracy"]["value"]
        out[f"eval/{report.name}/parsed_rate"] = data["overall"]["parsed_rate"]["value"]
    return out
