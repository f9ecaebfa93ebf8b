"""The keys every ``discriminator:`` block has besides the plugin's own options: how it is trained online.

They are the same for every discriminator plugin, because the online training around the plugin (what is a
positive and a negative, the replay buffer, minibatches, warmup, health checks) is grail-rl's, not the
plugin's: a plugin only scores texts and takes one step on a minibatch (see docs/grail.md).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from grail_rl.plugins.base import BlockKeys
from grail_rl.recipe.fields import RecipePath

STATE_NAME = "discriminator"  # its folder inside a checkpoint's grail_state/
STATE_FILE = "runtime.json"
TEXTS_FILE = "texts.json"  # the replay buffer and held-out texts: viewers' data, kept off the hub by default

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


class DiscriminatorBlockKeys(BlockKeys):
    train: bool = Field(
        True, description="Update the discriminator during training; false keeps it as loaded from init_from (frozen)."
    )
    init_from: RecipePath | None = Field(
        None,
        description="Start from a trained discriminator: a checkpoint or final/ folder of an earlier GRAIL run, or "
        "its grail_state/discriminator folder (its weights and update count; checked when a run starts, a resume "
        "takes the checkpoint's state instead). Needed with train: false.",
    )
    device: str = Field(
        "auto",
        description="Where the discriminator runs: 'auto' (cuda:LOCAL_RANK when the run uses a GPU, else cpu), "
        "'cpu', 'cuda', 'cuda:N' or 'mps'.",
    )
    updates_per_step: int = Field(
        1, ge=1, le=1000, description="Discriminator minibatch updates after each batch of policy completions."
    )
    minibatch_size: int = Field(
        16, ge=2, le=65536, description="Texts per discriminator update: half real, half fake (the odd one real)."
    )
    extra_negatives: int = Field(
        0,
        ge=0,
        le=64,
        description="Other in-slate options per prompt added as negatives beside the policy's wrong choices.",
    )
    replay_size: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Past negatives kept and mixed into later updates (0: only the current batch's).",
    )
    warmup_steps: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Updates on gold choices against random in-slate options before the policy's first update.",
    )
    heldout_share: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Share of prompts (by a hash of the prompt) never trained on; their (gold, policy) pairs give "
        "the held-out AUC. 0 turns the AUC off.",
    )
    heldout_window: int = Field(
        256,
        ge=8,
        le=100_000,
        description="Held-out texts of each class (gold, policy) kept for the AUC; all are re-scored by the current "
        "discriminator at every step.",
    )
    collapse_patience: int = Field(
        20,
        ge=1,
        description="Logging steps the held-out AUC may stay near 1.0 or near 0.5 before a warning.",
    )

    @field_validator("init_from")
    @classmethod
    def _state_folder(cls, value: Path | None) -> Path | None:
        # A path that is gone is left to the start of a run: resuming a run that was started from it needs only
        # its own checkpoint.
        if value is None or not value.exists():
            return value
        folder = state_folder(value)
        if folder is None:
            raise ValueError(no_state_message(value))
        return folder

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE_RE.match(value):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {value!r}")
        return value


def state_folder(path: Path) -> Path | None:
    """The discriminator state folder ``path`` names: itself, ``path/grail_state/discriminator``, or the folder of
    a ``runtime.json`` given itself."""
    if path.name == STATE_FILE and path.is_file():
        return path.parent
    for candidate in (path, path / "grail_state" / STATE_NAME):
        if (candidate / STATE_FILE).is_file():
            return candidate
    return None


def no_state_message(path: Path) -> str:
    return (
        f"{path} holds no discriminator state (no {STATE_FILE} in it or in grail_state/{STATE_NAME}/): give a "
        "checkpoint or final/ folder of a GRAIL run"
    )


def saved_plugin(folder: Path) -> str | None:
    """The discriminator plugin whose state ``folder`` holds (its ``runtime.json``'s ``plugin``).

    :raises OSError, ValueError: when the file cannot be read or is not a JSON object.
    """
    import json

    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    if not isinstance(state, dict):
        raise ValueError("not a JSON object")
    plugin = state.get("plugin")
    return plugin if isinstance(plugin, str) else None
