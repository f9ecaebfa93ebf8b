"""Small plugins used as test doubles: each is a real module object with real @hookimpl functions."""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from grail_rl.plugins import PluginConfig, RewardFunction, hookimpl


class ConstantReward(RewardFunction):
    """Gives every completion the same score."""

    name = "constant"

    class Config(PluginConfig):
        value: float = Field(1.0, description="The score.")

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        return [self.config.value] * len(completions)


class NeedsDiscriminatorReward(ConstantReward):
    """Pretends to read a discriminator."""

    name = "needs_disc"
    requires_discriminator = True


def make_plugin(name: str, **hooks: Any) -> types.ModuleType:
    """A module named ``name`` whose attributes are the given hook functions, marked as hookimpls."""
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def reward_plugin(name: str, *classes: type) -> types.ModuleType:
    def register_rewards(register):
        for cls in classes:
            register(cls)

    return make_plugin(name, register_rewards=register_rewards)
