"""The hooks a grail-rl plugin can implement.

There is one hook per kind of plugin (:data:`grail_rl.plugins.kinds.KINDS`): ``register_rewards``,
``register_prompt_sections`` and ``register_discriminators``. Every hook follows the ``register_X(register)`` style: grail-rl passes a callback, and the plugin calls it
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

from grail_rl.plugins.kinds import KINDS, PluginKind

PROJECT_NAME = "grail_rl"
ENTRY_POINT_GROUP = "grail_rl"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


def _registration_hook(kind: PluginKind) -> Callable[..., None]:
    """The hook specification through which plugins register classes of ``kind``."""

    def hook(register: Callable[[type], None]) -> None:
        pass

    hook.__name__ = hook.__qualname__ = kind.hook
    hook.__doc__ = (
        f"Register {kind.label} classes.\n\n"
        f":param register: call ``register(cls)`` once per :class:`grail_rl.plugins.{kind.base.__name__}` subclass."
    )
    return hookspec(hook)


# One hook per kind of plugin (register_rewards, register_prompt_sections, register_discriminators), made
# from the table of kinds so that a new kind needs no new code here.
for _kind in KINDS:
    globals()[_kind.hook] = _registration_hook(_kind)
del _kind
