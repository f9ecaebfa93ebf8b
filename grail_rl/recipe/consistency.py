"""Settings that would be silently ignored, and values TRL or transformers would reject only after loading.

Every setting a user writes must take effect or be an error. Some fields only act together with another
one (``trainer.eval_steps`` without ``eval_strategy: steps`` does nothing); a field counts as written when
it is in the block's ``model_fields_set`` (the file or an override set it), so defaults never trip these
checks. The learning-rate schedule's extra arguments are checked against the schedule transformers builds
(a test compares :data:`SCHEDULER_ARGUMENTS` with the installed transformers' functions), because a wrong
one would otherwise fail with a TypeError after the model has loaded, or, for ``constant``, be ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grail_rl.recipe.yaml_loader import Loc

# schedule -> the keyword arguments its transformers function takes besides the optimizer, the step counts
# and last_epoch (which the Trainer passes itself).
SCHEDULER_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "linear": (),
    "cosine": ("num_cycles",),
    "cosine_with_restarts": ("num_cycles",),
    "polynomial": ("lr_end", "power"),
    "constant": (),
    "constant_with_warmup": (),
    "inverse_sqrt": ("timescale",),
    "cosine_with_min_lr": ("num_cycles", "min_lr", "min_lr_rate"),
    "warmup_stable_decay": (
        "num_decay_steps", "num_stable_steps", "warmup_type", "decay_type", "min_lr_ratio", "num_cycles",
    ),
}  # fmt: skip
# Arguments a schedule cannot do without: (schedule, names of which one must be given).
SCHEDULER_REQUIRED: dict[str, tuple[str, ...]] = {
    "cosine_with_min_lr": ("min_lr", "min_lr_rate"),
    "warmup_stable_decay": ("num_decay_steps",),
}
# Sampling settings that have their own trainer field: the same key in generation_kwargs would override it.
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")
GENERATION_LIMIT_KEYS = ("max_new_tokens", "max_length")


@dataclass(frozen=True)
class Dependency:
    """``field`` only takes effect when ``active(recipe)`` holds; ``needs`` says what to set for that."""

    field: Loc
    active: Callable[[Any], bool]
    needs: str


def _vllm(recipe: Any) -> bool:
    return bool(recipe.trainer.use_vllm)


def _colocate(recipe: Any) -> bool:
    return bool(recipe.trainer.use_vllm) and recipe.trainer.vllm_mode == "colocate"


def _server(recipe: Any) -> bool:
    return bool(recipe.trainer.use_vllm) and recipe.trainer.vllm_mode == "server"


def _evaluates_during_training(recipe: Any) -> bool:
    return recipe.trainer.eval_strategy != "no" or bool(recipe.trainer.eval_on_start)


DEPENDENCIES: tuple[Dependency, ...] = (
    Dependency(("trainer", "eval_steps"), lambda r: r.trainer.eval_strategy == "steps", "trainer.eval_strategy: steps"),
    Dependency(("trainer", "num_generations_eval"), _evaluates_during_training,
               "trainer.eval_strategy: steps or epoch (evaluation during training)"),
    Dependency(("output", "save_steps"), lambda r: r.output.save_strategy == "steps", "output.save_strategy: steps"),
    Dependency(("output", "save_total_limit"), lambda r: r.output.save_strategy != "no",
               "output.save_strategy: steps or epoch"),
    Dependency(("trainer", "vllm_mode"), _vllm, "trainer.use_vllm: true"),
    Dependency(("trainer", "vllm_server_base_url"), _server, "trainer.use_vllm: true and vllm_mode: server"),
    Dependency(("trainer", "vllm_server_host"), _server, "trainer.use_vllm: true and vllm_mode: server"),
    Dependency(("trainer", "vllm_server_port"), _server, "trainer.use_vllm: true and vllm_mode: server"),
    Dependency(("trainer", "vllm_gpu_memory_utilization"), _colocate, "trainer.use_vllm: true and vllm_mode: colocate"),
    Dependency(("trainer", "vllm_tensor_parallel_size"), _colocate, "trainer.use_vllm: true and vllm_mode: colocate"),
    Dependency(("trainer", "vllm_max_model_length"), _colocate, "trainer.use_vllm: true and vllm_mode: colocate"),
    Dependency(("trainer", "vllm_enable_sleep_mode"), _colocate, "trainer.use_vllm: true and vllm_mode: colocate"),
    Dependency(("logging", "num_completions_to_print"), lambda r: bool(r.logging.log_completions),
               "logging.log_completions: true"),
    Dependency(("hub", "hub_strategy"), lambda r: bool(r.hub.push_to_hub), "hub.push_to_hub: true"),
    Dependency(("hub", "hub_private_repo"), lambda r: bool(r.hub.push_to_hub or r.hub.revision_per_save),
               "hub.push_to_hub: true or hub.revision_per_save: true"),
    Dependency(("hub", "hub_model_id"), lambda r: bool(r.hub.push_to_hub or r.hub.revision_per_save),
               "hub.push_to_hub: true or hub.revision_per_save: true"),
    Dependency(("hub", "revision_per_save"), lambda r: r.hub.hub_model_id is not None, "hub.hub_model_id"),
    Dependency(("hub", "push_data_files"), lambda r: bool(r.hub.push_to_hub), "hub.push_to_hub: true"),
    Dependency(("data", "train_rows"), lambda r: any(s.weight is not None for s in r.data.train),
               "a weight on every data.train source (train_rows is the size of a weighted mixture)"),
    Dependency(("data", "synthetic"), lambda r: not (r.data.train and r.data.eval),
               "data.train or data.eval left empty (the synthetic set fills an empty split only)"),
    Dependency(("data", "max_eval_samples"), lambda r: bool(r.data.eval) or r.data.synthetic is not None,
               "an eval split (data.eval, or data.synthetic)"),
    Dependency(("logging", "run_name"), lambda r: any(t != "none" for t in r.logging.report_to),
               "a tracker in logging.report_to (the name is shown by trackers only)"),
    Dependency(("logging", "project"), lambda r: "trackio" in r.logging.report_to,
               "trackio in logging.report_to (the project is Trackio's)"),
    Dependency(("reward_mixer", "learning_rate"), lambda r: r.reward_mixer.learnable,
               "reward_mixer.learnable: true (the fixed weights are not learned)"),
)  # fmt: skip


def _was_set(recipe: Any, loc: Loc) -> bool:
    """The recipe (file or override) gave the field a value; writing ``null`` asks for nothing."""
    block: Any = recipe
    for part in loc[:-1]:
        block = getattr(block, str(part))
    return loc[-1] in block.model_fields_set and getattr(block, str(loc[-1])) is not None


def ignored_settings(recipe: Any) -> list[tuple[Loc, str]]:
    """Fields the recipe sets that would have no effect with the rest of the recipe."""
    problems = []
    for dep in DEPENDENCIES:
        if _was_set(recipe, dep.field) and not dep.active(recipe):
            name = ".".join(str(p) for p in dep.field)
            problems.append((dep.field, f"takes effect only with {dep.needs}; set that, or remove {name}"))
    problems += discriminator_problems(recipe)
    t = recipe.trainer
    if t.fp16 and t.use_cpu:
        problems.append((("trainer", "fp16"), "fp16 mixed precision needs a GPU, but trainer.use_cpu is true; "
                         "remove fp16 (or use bf16, which the CPU supports)"))  # fmt: skip
    if t.max_steps > 0 and "num_train_epochs" in t.model_fields_set:
        problems.append((
            ("trainer", "num_train_epochs"),
            f"trainer.max_steps ({t.max_steps}) overrides num_train_epochs; set one of them",
        ))  # fmt: skip
    return problems


# Discriminator keys that only matter while it trains (``train: true``), plugin options included.
_TRAINING_ONLY = (
    "updates_per_step", "minibatch_size", "extra_negatives", "replay_size", "warmup_steps", "learning_rate",
    "weight_decay", "max_grad_norm",
)  # fmt: skip


def discriminator_problems(recipe: Any) -> list[tuple[Loc, str]]:
    """A discriminator block that nothing reads, and discriminator keys that would do nothing."""
    block = getattr(recipe, "discriminator", None)
    if block is None:
        return []
    problems: list[tuple[Loc, str]] = []
    readers = [r for r in recipe.rewards if r.plugin_spec.cls.requires_discriminator]
    if not readers:
        problems.append((
            ("discriminator",),
            "no reward reads the discriminator, so it would be trained for nothing; add a reward that uses it "
            "(- name: gail) or remove the block",
        ))  # fmt: skip
    elif all(r.weight == 0 for r in readers):
        i = next(i for i, r in enumerate(recipe.rewards) if r.plugin_spec.cls.requires_discriminator)
        problems.append((
            ("rewards", i, "weight"),
            f"reward '{recipe.rewards[i].name}' has weight 0, so the discriminator would be trained for nothing "
            "the policy learns from; give it a weight > 0 or remove it and the discriminator block",
        ))  # fmt: skip
    problems += _init_from_problems(recipe, block)
    if not block.train and block.init_from is None:
        problems.append((
            ("discriminator", "train"),
            "a discriminator that does not train must start from a trained one, or every choice scores the same; "
            "set discriminator.init_from to a checkpoint of a GRAIL run, or train: true",
        ))  # fmt: skip
    if recipe.launch.num_processes > 1 and block.device.startswith("cuda:"):
        problems.append((
            ("discriminator", "device"),
            f"{block.device} puts every process's copy of the discriminator on one GPU "
            f"({recipe.launch.num_processes} processes); use auto or cuda (each process's own GPU)",
        ))  # fmt: skip
    if not block.train:
        for key in _TRAINING_ONLY:
            if key in block.model_fields_set:
                problems.append((
                    ("discriminator", key),
                    f"takes effect only while the discriminator trains, but discriminator.train is false; "
                    f"remove {key} (or set train: true)",
                ))  # fmt: skip
    if block.heldout_share == 0 and "collapse_patience" in block.model_fields_set:
        problems.append((
            ("discriminator", "collapse_patience"),
            "the collapse warning watches the held-out AUC, which heldout_share: 0 turns off; remove "
            "collapse_patience or give heldout_share a value above 0",
        ))  # fmt: skip
    return problems


def _init_from_problems(recipe: Any, block: Any) -> list[tuple[Loc, str]]:
    """``init_from`` that names another discriminator, or that replacing the run would move away."""
    from grail_rl.grail.settings import STATE_FILE, saved_plugin

    source = block.init_from
    if source is None:
        return []
    loc = ("discriminator", "init_from")
    out = Path(recipe.output.dir)
    if recipe.output.overwrite and (source == out or out in source.parents):
        return [(loc, f"{source} is inside output.dir, which output.overwrite sets aside before the run starts; copy "
                      "it elsewhere first")]  # fmt: skip
    if not (source / STATE_FILE).is_file():
        return []  # gone: checked when a run starts (a resume does not need it)
    try:
        saved = saved_plugin(source)
    except (OSError, ValueError) as exc:
        return [(loc, f"{source / STATE_FILE} cannot be read ({type(exc).__name__}); give another GRAIL run's state")]
    if saved != block.name:
        return [(loc, f"{source} holds a '{saved}' discriminator, but this block's is '{block.name}'; start from a "
                      f"run of the same discriminator")]  # fmt: skip
    return []


def scheduler_problems(trainer: Any) -> list[tuple[Loc, str]]:
    """lr_scheduler_kwargs and warmup_steps against what the chosen schedule accepts."""
    schedule = trainer.lr_scheduler_type
    allowed = SCHEDULER_ARGUMENTS[schedule]
    given = dict(trainer.lr_scheduler_kwargs or {})
    problems: list[tuple[Loc, str]] = []
    for key in given:
        if key not in allowed:
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no extra arguments"
            problems.append((
                ("trainer", "lr_scheduler_kwargs", key),
                f"'{key}' is not an argument of the {schedule} schedule, which {takes}",
            ))  # fmt: skip
    required = SCHEDULER_REQUIRED.get(schedule, ())
    if required and not any(key in given for key in required):
        problems.append((
            ("trainer", "lr_scheduler_kwargs"),
            f"the {schedule} schedule needs {' or '.join(required)} in trainer.lr_scheduler_kwargs",
        ))  # fmt: skip
    if schedule == "constant" and trainer.warmup_steps:
        problems.append((
            ("trainer", "warmup_steps"),
            "the constant schedule has no warmup, so warmup_steps would be ignored; use lr_scheduler_type: "
            "constant_with_warmup, or set warmup_steps: 0",
        ))  # fmt: skip
    return problems


def generation_kwargs_problems(trainer: Any) -> list[tuple[Loc, str]]:
    """generation_kwargs keys that would silently override a trainer field."""
    problems: list[tuple[Loc, str]] = []
    for key in trainer.generation_kwargs or {}:
        if key in SAMPLING_FIELDS:
            problems.append((
                ("trainer", "generation_kwargs", key),
                f"would override trainer.{key}; set trainer.{key} instead",
            ))  # fmt: skip
        elif key in GENERATION_LIMIT_KEYS:
            problems.append((
                ("trainer", "generation_kwargs", key),
                "would override trainer.max_completion_length; set that instead (rewards such as "
                "soft_overlong read it)",
            ))  # fmt: skip
    return problems
