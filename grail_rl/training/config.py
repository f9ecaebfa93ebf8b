"""Build ``trl.GRPOConfig`` from a recipe by walking the fields the schema marks as TRL fields.

Every field marked with ``trl_field`` in the trainer, logging, hub and output sections is passed under its
GRPOConfig name, so no setting a researcher wrote is silently dropped (``tests/test_train_config.py``
proves each marked name is a real field of the installed GRPOConfig). The few values grail-rl decides
itself (the resolved ``bf16`` on a machine without a GPU, the reward weights, console/progress handling)
are listed in :data:`GRAIL_DECIDED` and recorded in the run metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grail_rl.recipe.blocks import HubBlock, LoggingBlock, OutputBlock, TrainerBlock
from grail_rl.recipe.fields import trl_name

# recipe section -> its block class; the order decides nothing (names are unique across sections).
TRL_SECTIONS: dict[str, type] = {
    "trainer": TrainerBlock,
    "logging": LoggingBlock,
    "hub": HubBlock,
    "output": OutputBlock,
}

# GRPOConfig fields grail-rl sets itself, and why (written to run.json so nothing is hidden).
GRAIL_DECIDED = {
    "reward_weights": "normalised weights of the recipe's reward blocks",
    "disable_tqdm": "grail-rl draws its own progress bar and per-step line",
    "log_completions": "grail-rl saves sampled completions itself (logging.save_completions)",
    "bf16": "only when the recipe leaves it unset: on when a GPU supports it, else off",
    "save_only_model": "false: checkpoints always hold optimizer, scheduler and RNG state for resume",
}


def trl_mapping() -> list[tuple[str, str, str]]:
    """Every (section, recipe field, GRPOConfig name) the schema marks."""
    rows = []
    for section, block in TRL_SECTIONS.items():
        for field in block.model_fields:
            name = trl_name(block, field)
            if name:
                rows.append((section, field, name))
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def grpo_kwargs(recipe: Any) -> dict[str, Any]:
    """The GRPOConfig keyword arguments the recipe sets (no trl import: cheap and testable)."""
    kwargs: dict[str, Any] = {}
    for section, field, name in trl_mapping():
        kwargs[name] = _plain(getattr(getattr(recipe, section), field))
    return kwargs


def _gpu_supports_bf16() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def build_grpo_config(recipe: Any, *, reward_weights: list[float] | None = None, **extra: Any):
    """A ``trl.GRPOConfig`` holding every TRL field of ``recipe`` plus ``extra`` grail-rl settings."""
    from trl import GRPOConfig

    kwargs = grpo_kwargs(recipe)
    if kwargs.get("bf16") is None and not kwargs.get("fp16"):
        # TRL turns an unset bf16 into True, which fails on a CPU-only machine; decide from the hardware.
        kwargs["bf16"] = _gpu_supports_bf16() and not kwargs.get("use_cpu")
    if reward_weights is not None:
        kwargs["reward_weights"] = list(reward_weights)
    kwargs.setdefault("disable_tqdm", True)
    kwargs["save_only_model"] = False
    kwargs.update(extra)
    try:
        return GRPOConfig(**kwargs)
    except ValueError as exc:
        from grail_rl.errors import GrailError

        # TRL's own consistency checks (e.g. vLLM settings) are user mistakes too: one line, no traceback.
        raise GrailError(f"trainer settings rejected by TRL: {str(exc).strip().splitlines()[0]}") from None
