"""The hooks a grail-rl plugin can implement.

Every hook follows the ``register_X(register)`` style: grail-rl passes a callback, and the plugin calls it
once for each class it provides. The callback validates the class, rejects a duplicate name (naming both
plugins) and records which plugin registered what.

A plugin is any module or object with functions decorated by :data:`hookimpl`, published under the
``grail_rl`` entry-point group::

    [project.entry-points.grail_rl]
    my_rewards = "my_package.rewards"
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT_NAME = "grail_rl"
ENTRY_POINT_GROUP = "grail_rl"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_rewards(register: Callable[[type], None]) -> None:
    """Register reward classes.

    :param register: call ``register(cls)`` once per :class:`grail_rl.plugins.RewardFunction` subclass.
    """


@hookspec
def register_prompt_sections(register: Callable[[type], None]) -> None:
    """Register prompt section classes.

    :param register: call ``register(cls)`` once per :class:`grail_rl.plugins.PromptSection` subclass.
    """


@hookspec
def register_discriminators(register: Callable[[type], None]) -> None:
    """Register discriminator classes.

    :param register: call ``register(cls)`` once per :class:`grail_rl.plugins.Discriminator` subclass.
    """
