"""The run's discriminator: built from the recipe's ``discriminator:`` block, and the checks a resume or a
start from ``init_from`` needs before any model loads (see docs/grail.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError


def discriminator_runtime(recipe: Any, **keys: Any) -> Any:
    """The recipe's discriminator (:class:`~grail_rl.grail.runtime.DiscriminatorRuntime`), or None; ``keys``
    override the block's own (``train=False`` for a frozen one)."""
    block = recipe.discriminator
    if block is None:
        return None
    from grail_rl.grail.runtime import DiscriminatorRuntime

    settings = block.block_keys().model_copy(update=keys) if keys else block.block_keys()
    return DiscriminatorRuntime(block.build(), settings, plugin_name=block.plugin_spec.source.plugin)


def check_discriminator_state(recipe: Any, checkpoint: Path | None, fresh_state: tuple[str, ...]) -> None:
    """Refuse to resume a GRAIL run from a checkpoint without discriminator state, unless told to start anew."""
    from grail_rl.grail.settings import STATE_NAME
    from grail_rl.training.checkpoints import missing_state

    if STATE_NAME in fresh_state and recipe.discriminator is None:
        raise GrailError("--fresh-discriminator: the recipe has no discriminator block")
    if checkpoint is None:
        if STATE_NAME in fresh_state:
            raise GrailError(
                "--fresh-discriminator: there is no checkpoint to resume from, so the discriminator starts new "
                "anyway; drop the flag"
            )
        source = recipe.discriminator.init_from if recipe.discriminator is not None else None
        if source is not None:
            from grail_rl.grail.settings import no_state_message, state_folder

            if state_folder(source) is None:  # gone since validation, or never there
                raise GrailError(f"discriminator.init_from: {no_state_message(source)}")
        return
    if recipe.discriminator is None or STATE_NAME in fresh_state:
        return
    if missing_state(checkpoint, [STATE_NAME]):
        raise GrailError(
            f"{checkpoint} holds no discriminator state (it was saved by a run without a discriminator block, or by "
            "an older grail-rl); pass --fresh-discriminator to resume with a new, untrained discriminator"
        )
    from grail_rl.grail.settings import saved_plugin
    from grail_rl.training.checkpoints import STATE_DIR

    try:
        saved = saved_plugin(checkpoint / STATE_DIR / STATE_NAME)
    except (OSError, ValueError):
        saved = None
    if saved != recipe.discriminator.name:
        raise GrailError(
            f"{checkpoint} holds a '{saved}' discriminator but the recipe's is '{recipe.discriminator.name}'; resume "
            "with the same discriminator, or pass --fresh-discriminator to start a new, untrained one"
        )
