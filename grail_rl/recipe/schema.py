"""The whole recipe model, built from the plugins that are installed, and its cross-field checks."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from grail_rl.plugins.manager import Plugins
from grail_rl.recipe.blocks import (
    HubBlock,
    LaunchBlock,
    LoggingBlock,
    ModelBlock,
    OutputBlock,
    RewardMixerBlock,
    TrainerBlock,
)
from grail_rl.recipe.consistency import generation_kwargs_problems, ignored_settings, scheduler_problems
from grail_rl.recipe.data_blocks import DataBlock, prompt_block
from grail_rl.recipe.fields import Block
from grail_rl.recipe.plugin_blocks import block_union
from grail_rl.recipe.yaml_loader import Loc

# The top-level sections, in the order the docs and `validate` show them.
SECTIONS = (
    "model", "data", "prompt", "rewards", "reward_mixer", "discriminator", "trainer", "launch", "logging", "hub",
    "output",
)  # fmt: skip


def build_recipe_model(plugins: Plugins) -> type[Block]:
    """The Recipe model for the installed plugins (reward, section and discriminator blocks vary)."""
    reward_type = block_union(plugins.rewards)
    section_type = block_union(plugins.prompt_sections)
    discriminator_type = block_union(plugins.discriminators)
    prompt_type = prompt_block(section_type)

    class Recipe(Block):
        """A grail-rl recipe."""

        model: ModelBlock = Field(description="The policy model.")
        data: DataBlock = Field(description="Training and evaluation data.")
        prompt: prompt_type = Field(  # type: ignore[valid-type]
            default_factory=prompt_type, description="How rows become chat prompts."
        )
        rewards: list[reward_type] = Field(  # type: ignore[valid-type]
            min_length=1, description="Reward plugins and their weights."
        )
        reward_mixer: RewardMixerBlock = Field(
            default_factory=RewardMixerBlock, description="How the rewards are mixed (by the weights above, by default)."
        )
        discriminator: discriminator_type | None = Field(  # type: ignore[valid-type]
            None, description="The GAIL-style discriminator (GRAIL); None = plain GRPO."
        )
        trainer: TrainerBlock = Field(default_factory=TrainerBlock, description="GRPO settings.")
        launch: LaunchBlock = Field(default_factory=LaunchBlock, description="The planned launch.")
        logging: LoggingBlock = Field(default_factory=LoggingBlock, description="Logging.")
        hub: HubBlock = Field(default_factory=HubBlock, description="Pushing to the hub.")
        output: OutputBlock = Field(description="The run's output folder and checkpoints.")

    return Recipe


def cross_field_problems(recipe: Any) -> list[tuple[Loc, str]]:
    """Checks that involve more than one field; each problem is (location, message)."""
    problems: list[tuple[Loc, str]] = []
    problems += _batch_rule(recipe)
    problems += scheduler_problems(recipe.trainer)
    problems += generation_kwargs_problems(recipe.trainer)
    problems += ignored_settings(recipe)
    if recipe.trainer.use_vllm and recipe.trainer.use_cpu:
        problems.append(
            (
                ("trainer", "use_vllm"),
                "vLLM generates on GPUs only but trainer.use_cpu is true; set trainer.use_vllm: false "
                "(or trainer.use_cpu: false on a GPU machine)",
            )
        )
    weights = [block.weight for block in recipe.rewards]
    if weights and all(w == 0 for w in weights):
        problems.append((("rewards",), "every reward has weight 0; give at least one reward a weight > 0"))
    first_index: dict[str, int] = {}
    for i, block in enumerate(recipe.rewards):
        if block.name in first_index:
            problems.append(
                (
                    ("rewards", i, "name"),
                    f"reward '{block.name}' is listed twice (rewards[{first_index[block.name]}] and rewards[{i}]); "
                    "TRL logs rewards by name, so keep one block per reward",
                )
            )
        first_index.setdefault(block.name, i)
        # A reward that models the generation limit must agree with the limit the trainer really uses.
        limit = getattr(block, "max_completion_length", None)
        if limit is not None and limit != recipe.trainer.max_completion_length:
            problems.append(
                (
                    ("rewards", i, "max_completion_length"),
                    f"{limit} differs from trainer.max_completion_length "
                    f"({recipe.trainer.max_completion_length}); set them equal",
                )
            )
        fields = block.declared_row_fields()
        if isinstance(fields, tuple) and all(isinstance(f, str) for f in fields):
            from grail_rl.data.dataset import OUTPUT_COLUMNS
            from grail_rl.data.row_fields import ROW_FIELDS, unknown_fields

            if "prompt" in fields:  # TRL takes it out of the columns and passes it as `prompts`
                problems.append(
                    (("rewards", i, "name"), f"reward '{block.name}' reads the row field 'prompt': TRL passes the prompts "
                     "to every reward as the `prompts` argument instead; remove it from row_fields")  # fmt: skip
                )
            for field in unknown_fields([f for f in fields if f != "prompt"], OUTPUT_COLUMNS):
                problems.append(
                    (
                        ("rewards", i, "name"),
                        f"reward '{block.name}' reads the row field '{field}', which the data schema does not have; "
                        f"row fields: {', '.join(ROW_FIELDS)} (and every split's columns: {', '.join(OUTPUT_COLUMNS)})",
                    )
                )
        else:
            problems.append(
                (("rewards", i, "name"), f"reward '{block.name}': row_fields must be a list of field names, got {fields!r}")
            )
        if block.plugin_spec.cls.requires_discriminator and recipe.discriminator is None:
            problems.append(
                (
                    ("rewards", i, "name"),
                    f"reward '{block.name}' needs a discriminator: add a 'discriminator:' block "
                    "(see 'grail-rl list-discriminators')",
                )
            )
    return problems


def _batch_rule(recipe: Any) -> list[tuple[Loc, str]]:
    """TRL's rule: completions per generation round must hold whole groups of num_generations."""
    t = recipe.trainer
    procs = recipe.launch.num_processes
    steps = t.steps_per_generation or t.gradient_accumulation_steps
    steps_name = "steps_per_generation" if t.steps_per_generation else "gradient_accumulation_steps"
    total = t.per_device_train_batch_size * procs * steps
    problems: list[tuple[Loc, str]] = []
    if total % t.num_generations:
        fit = _next_multiple(t.per_device_train_batch_size, t.num_generations, procs * steps)
        problems.append(
            (
                ("trainer", "per_device_train_batch_size"),
                f"per_device_train_batch_size ({t.per_device_train_batch_size}) x launch.num_processes ({procs}) x "
                f"{steps_name} ({steps}) = {total} completions per generation round, which is not divisible by "
                f"trainer.num_generations ({t.num_generations}); set per_device_train_batch_size to {fit}, "
                f"or num_generations to a divisor of {total} (>= 2)",
            )
        )
    if t.eval_strategy != "no":
        eval_gens = t.num_generations_eval or t.num_generations
        eval_total = t.per_device_eval_batch_size * procs
        if eval_total % eval_gens:
            fit = _next_multiple(t.per_device_eval_batch_size, eval_gens, procs)
            problems.append(
                (
                    ("trainer", "per_device_eval_batch_size"),
                    f"per_device_eval_batch_size ({t.per_device_eval_batch_size}) x launch.num_processes ({procs}) = "
                    f"{eval_total} is not divisible by the evaluation generations ({eval_gens}); set "
                    f"per_device_eval_batch_size to {fit} or num_generations_eval to a divisor of {eval_total}",
                )
            )
    return problems


def _next_multiple(batch: int, groups: int, factor: int) -> int:
    """The smallest batch >= ``batch`` for which batch * factor is divisible by ``groups``."""
    candidate = batch
    while (candidate * factor) % groups:
        candidate += 1
    return candidate
