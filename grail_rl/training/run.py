"""One training run from a loaded recipe: output folder, data, rewards, model, GRPO, final save, evaluation.

:func:`run_training` is what ``grail-rl train`` calls (in every process of a distributed launch). Tests
may pass their own small datasets and reward callables; everything else (model loading, GRPOConfig,
checkpoints, logging, metadata) is the same code path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.training.checkpoints import STAGING, clear_staging, resolve_resume
from grail_rl.training.config import GRAIL_DECIDED, build_grpo_config
from grail_rl.training.preflight import check_optional_packages
from grail_rl.training.run_folder import prepare_output_dir, record_session, update_run

logger = logging.getLogger("grail_rl.training")
FINAL_DIR = "final"


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
    return build_reward_functions(entries, fault_dir=output_dir / "reward_faults")


def load_data(loaded: Any, output_dir: Path, tokenizer: Any) -> tuple[Any, Any, str | None]:
    """(train split, eval split or None, why there is no eval split)."""
    from grail_rl.data.dataset import build_split

    recipe = loaded.recipe
    train, _ = build_split(recipe, loaded.plugins, "train", report_dir=output_dir, tokenizer=tokenizer)
    has_eval = bool(recipe.data.eval) or getattr(recipe.data, "synthetic", None) is not None
    evals, reason = None, "the recipe has no eval split (data.eval or data.synthetic)"
    if has_eval:
        evals, _ = build_split(recipe, loaded.plugins, "eval", report_dir=output_dir, tokenizer=tokenizer)
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
    """Save the final model and tokenizer to ``OUTPUT/final`` through a staging folder (atomic rename)."""
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
            if final.exists():
                shutil.rmtree(final)
            os.replace(staged, final)
            shutil.rmtree(output_dir / STAGING, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise GrailError(f"could not save the final model to {final}: {exc.strerror or exc}") from None
    trainer.accelerator.wait_for_everyone()
    return final


def run_training(
    loaded: Any,
    *,
    resume: str | bool | None = None,
    train_dataset: Any = None,
    eval_dataset: Any = None,
    reward_funcs: list[Any] | None = None,
    reward_weights: list[float] | None = None,
    console: bool = True,
    evaluate: bool = True,
    callbacks: list[Any] | None = None,
) -> RunResult:
    """Train as the recipe says; see the module docstring."""
    from grail_rl.models.loading import load_policy
    from grail_rl.training.callbacks import RunLogCallback, attach_log_file, detach_log_file
    from grail_rl.training.hub import HubPusher
    from grail_rl.training.trainer import build_trainer

    recipe = loaded.recipe
    check_world_size(recipe)
    check_optional_packages(recipe)
    rank, _ = world()
    output_dir = Path(recipe.output.dir)
    resuming = resume not in (None, False)
    # Building the config first sets up the process group, so the ranks can wait for rank 0's folder checks.
    config = build_grpo_config(recipe, reward_weights=reward_weights)
    state = config.distributed_state
    if rank == 0:
        prepare_output_dir(output_dir, resume=resuming, overwrite=recipe.output.overwrite)
    state.wait_for_everyone()
    checkpoint = resolve_resume(output_dir, resume) if resuming else None
    if rank == 0:
        clear_staging(output_dir)

    model, tokenizer, peft_config = load_policy(recipe.model, loaded.path.resolve().parent)
    no_eval_reason = None if eval_dataset is not None else "no eval split was given"
    # transformers' own tqdm bars ("Writing model shards" at every save) would break into the run's progress
    # display and the per-step lines; the loading bar above stays, it is useful for big models.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if train_dataset is None:
        train_dataset, loaded_eval, no_eval_reason = load_data(loaded, output_dir, tokenizer)
        eval_dataset = eval_dataset if eval_dataset is not None else loaded_eval
    if reward_funcs is None:
        reward_funcs, reward_weights = reward_functions(loaded, output_dir)
        config = build_grpo_config(recipe, reward_weights=reward_weights)
    in_training_eval = (
        eval_dataset if recipe.trainer.eval_strategy != "no" or recipe.trainer.eval_on_start else None
    )

    handler = None
    if rank == 0:
        decided = {key: getattr(config, key, None) for key in GRAIL_DECIDED} | {"why": GRAIL_DECIDED}
        record_session(loaded, output_dir, resumed_from=checkpoint, decided=decided)
        handler = attach_log_file(output_dir)
    try:
        pusher = (
            HubPusher(recipe.hub.hub_model_id, private=recipe.hub.hub_private_repo)
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
            callbacks=[RunLogCallback(output_dir, console=console), *(callbacks or [])],
            save_completions=recipe.logging.save_completions,
            hub_pusher=pusher,
        )
        trainer._grail_card = (loaded.resolved(), {})
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # RunLogCallback prints the compact line instead
        started = time.perf_counter()
        if rank == 0:
            update_run(output_dir, status="running")
        out = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        final_dir = save_final(trainer, output_dir)
        # The ranks-agree check needs whole parameters on every rank: DDP and ZeRO-1/2, not FSDP or ZeRO-3.
        digests = (
            None
            if shards_parameters(trainer)
            else trainer.accelerator.gather_for_metrics(
                [weights_digest(trainer.model)], use_gather_object=True
            )
        )
        metrics = {**out.metrics, "train_wall_seconds": time.perf_counter() - started}
        result = RunResult(
            output_dir, trainer.state.global_step, metrics, final_dir, weights_sha256=digests and digests[0]
        )
        if rank == 0:
            if digests and len(set(digests)) > 1:
                logger.error("ranks ended with different weights: %s", digests)
            update_run(
                output_dir,
                status="trained",
                global_step=trainer.state.global_step,
                train_metrics=metrics,
                weights_sha256_per_rank=digests,
            )
        if not evaluate:
            result.no_eval_reason = "evaluation was turned off (--no-eval)"
        elif eval_dataset is None:
            result.no_eval_reason = no_eval_reason
        if evaluate and rank == 0 and eval_dataset is not None:
            from grail_rl.training.final_eval import evaluate_after_training

            result.eval_reports = evaluate_after_training(
                trainer,
                eval_dataset,
                output_dir,
                recipe,
                model=whole_model_for_eval(trainer, recipe, final_dir),
            )
            trainer._grail_card = (loaded.resolved(), {**metrics, **_card_metrics(result.eval_reports)})
        if rank == 0:
            update_run(output_dir, status="completed")
        if recipe.hub.push_to_hub:
            trainer.push_to_hub(
                commit_message=f"grail-rl: end of training (step {trainer.state.global_step})"
            )
        return result
    finally:
        if handler is not None:
            detach_log_file(handler)


def _card_metrics(reports: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for report in reports:
        data = report.as_dict()
        out[f"eval/{report.name}/accuracy"] = data["overall"]["accuracy"]["value"]
        out[f"eval/{report.name}/parsed_rate"] = data["overall"]["parsed_rate"]["value"]
    return out
