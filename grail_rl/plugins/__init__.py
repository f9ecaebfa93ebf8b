"""Plugin system: hook specifications, plugin base classes, registries and the plugin loader."""

from grail_rl.plugins.base import (
    Discriminator,
    GroupReward,
    PluginConfig,
    PluginContext,
    PromptSection,
    RewardFunction,
)
from grail_rl.plugins.hookspecs import hookimpl
from grail_rl.plugins.kinds import KINDS, PluginKind
from grail_rl.plugins.manager import PluginFailure, Plugins, load_plugins
from grail_rl.plugins.registry import PluginSpec, Registry

__all__ = [
    "KINDS",
    "Discriminator",
    "GroupReward",
    "PluginConfig",
    "PluginContext",
    "PluginFailure",
    "PluginKind",
    "PluginSpec",
    "Plugins",
    "PromptSection",
    "Registry",
    "RewardFunction",
    "hookimpl",
    "load_plugins",
]
