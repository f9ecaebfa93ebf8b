"""Built-in prompt sections, registered through the same hook a third-party section plugin uses.

The implementations live in :mod:`grail_rl.prompts.sections`; this module only publishes them
(``builtin_sections`` in :data:`grail_rl.builtin.BUILTIN_PLUGINS`).
"""

from __future__ import annotations

from collections.abc import Callable

from grail_rl.plugins.hookspecs import hookimpl
from grail_rl.prompts.sections import BUILTIN_SECTIONS


@hookimpl
def register_prompt_sections(register: Callable[[type], None]) -> None:
    for cls in BUILTIN_SECTIONS:
        register(cls)
