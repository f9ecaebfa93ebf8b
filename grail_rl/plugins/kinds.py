"""The one table of plugin kinds: everything that differs between rewards, prompt sections and discriminators.

The registry, the plugin manager, the hook specifications, the recipe schema's error messages, the recipe
reference and the listing commands all read this table, so a new kind of plugin is one more row here (plus
its base class in :mod:`grail_rl.plugins.base`). Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from grail_rl.grail.settings import DiscriminatorBlockKeys
from grail_rl.plugins.base import BlockKeys, Discriminator, PromptSection, RewardFunction, _Plugin


class RewardBlockKeys(BlockKeys):
    weight: float = Field(1.0, ge=0, description="Weight of this reward; weights are normalised to sum to 1.")
    on_fault: Literal["stop", "abstain"] = Field(
        "stop",
        description="When the reward raises or returns NaN/inf: stop training, or abstain on those rows.",
    )


@dataclass(frozen=True)
class PluginKind:
    """One kind of plugin and every name it goes by."""

    key: str  # "reward": the kind as registries, JSON output and PluginSpec.kind spell it
    label: str  # "reward": the kind in messages
    base: type[_Plugin]  # the class every plugin of this kind subclasses
    hook: str  # the pluggy hook a plugin implements to register classes of this kind
    attribute: str  # the Plugins attribute holding the registry ("rewards")
    recipe_path: tuple[str, ...]  # where the blocks of this kind live in a recipe
    many: bool  # a list of blocks (True) or a single block (False)
    list_command: str  # the CLI command listing the installed plugins of this kind
    block_keys: type[BlockKeys] = BlockKeys

    @property
    def reserved_keys(self) -> frozenset[str]:
        """Keys the recipe block owns: ``name`` and :attr:`block_keys`."""
        return frozenset({"name", *self.block_keys.model_fields})

    @property
    def recipe_label(self) -> str:
        """The recipe location as a user writes it (``rewards``, ``prompt.sections``, ``discriminator``)."""
        return ".".join(self.recipe_path)


KINDS: tuple[PluginKind, ...] = (
    PluginKind(
        key="reward",
        label="reward",
        base=RewardFunction,
        hook="register_rewards",
        attribute="rewards",
        recipe_path=("rewards",),
        many=True,
        list_command="list-rewards",
        block_keys=RewardBlockKeys,
    ),
    PluginKind(
        key="prompt_section",
        label="prompt section",
        base=PromptSection,
        hook="register_prompt_sections",
        attribute="prompt_sections",
        recipe_path=("prompt", "sections"),
        many=True,
        list_command="list-sections",
    ),
    PluginKind(
        key="discriminator",
        label="discriminator",
        base=Discriminator,
        hook="register_discriminators",
        attribute="discriminators",
        recipe_path=("discriminator",),
        many=False,
        list_command="list-discriminators",
        block_keys=DiscriminatorBlockKeys,
    ),
)

KIND_BY_KEY: dict[str, PluginKind] = {kind.key: kind for kind in KINDS}
KIND_BY_HOOK: dict[str, PluginKind] = {kind.hook: kind for kind in KINDS}


def kind_of(key: str) -> PluginKind:
    """The :class:`PluginKind` called ``key`` (a KeyError names the known kinds)."""
    try:
        return KIND_BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown plugin kind {key!r}; known: {', '.join(KIND_BY_KEY)}") from None
