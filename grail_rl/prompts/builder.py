"""Turn a normalised row into the chat messages TRL trains on: the system prompt, then the user prompt
made of the recipe's sections, in order, joined by one blank line.

A recipe without ``prompt.sections`` gets :data:`DEFAULT_SECTION_NAMES`, built through the plugin
registry like any third-party section, so the core has no special case for the built-ins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError, describe_exception
from grail_rl.files import read_text_limited
from grail_rl.plugins.base import PromptSection
from grail_rl.prompts.sections import DEFAULT_SECTION_NAMES

Message = dict[str, str]


def default_system_prompt() -> str:
    """The built-in system prompt (think / answer / opinion format), a package resource."""
    return resources.files("grail_rl.prompts").joinpath("resources/system_prompt.txt").read_text(encoding="utf-8")


class PromptBuilder:
    """Renders rows with a fixed list of section instances and one system prompt."""

    def __init__(self, sections: Sequence[PromptSection], system_prompt: str | None = None):
        if not sections:
            raise GrailError("prompt.sections is empty; list at least one section (see 'grail-rl list-sections')")
        self.sections = list(sections)
        self.system_prompt = default_system_prompt() if system_prompt is None else system_prompt
        self._attach = [bool(getattr(s, "attach_to_previous", False)) for s in self.sections]

    def user_prompt(self, row: Mapping[str, Any]) -> str:
        blocks: list[str] = []
        for section, attach in zip(self.sections, self._attach, strict=True):
            try:
                text = section.render(row)
            except (GrailError, KeyboardInterrupt):
                raise
            except BaseException as exc:  # a third-party section's bug (sys.exit too): name it, do not hide it
                raise GrailError(f"prompt section '{section.name}' failed: {describe_exception(exc)}") from exc
            if text is not None and not isinstance(text, str):
                raise GrailError(
                    f"prompt section '{section.name}' returned a {type(text).__name__}; render() must return "
                    "text or None"
                )
            if not text:
                continue
            if attach and blocks:
                blocks[-1] = f"{blocks[-1]}\n{text}"
            else:
                blocks.append(text)
        return "\n\n".join(blocks)

    def messages(self, row: Mapping[str, Any]) -> list[Message]:
        """``[{"role": "system", ...}, {"role": "user", ...}]`` for ``row`` (no system message if empty)."""
        user = {"role": "user", "content": self.user_prompt(row)}
        if not self.system_prompt:
            return [user]
        return [{"role": "system", "content": self.system_prompt}, user]

    @classmethod
    def default(cls, plugins: Any = None, system_prompt: str | None = None) -> PromptBuilder:
        """The default sections from the plugin registry (loading the installed plugins if not given)."""
        if plugins is None:
            from grail_rl.plugins.manager import load_plugins

            plugins = load_plugins()
        sections = [plugins.prompt_sections.get(name).build() for name in DEFAULT_SECTION_NAMES]
        return cls(sections, system_prompt)

    @classmethod
    def from_recipe(cls, recipe: Any, plugins: Any = None) -> PromptBuilder:
        """The builder for a validated recipe's ``prompt:`` block."""
        block = recipe.prompt
        system = block.system_prompt
        if block.system_prompt_file is not None:
            system = read_system_prompt(block.system_prompt_file)
        if block.sections is None:
            return cls.default(plugins, system)
        return cls([section.build() for section in block.sections], system)


def read_system_prompt(path: Path) -> str:
    return read_text_limited(Path(path), "prompt.system_prompt_file")
