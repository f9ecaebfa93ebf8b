"""The text a discriminator reads for one choice: the chosen option first, then the viewer's context.

    CHOSEN: option <k> of <n>: <title> | CHANNEL: <channel>

    <the user prompt: viewer, current video, history, options, ...>

The original put the chosen title last, after the viewer profile, the prompt and the slate; its 512-token
limit often cut the choice off, so the discriminator judged a text without the choice in it. Here the choice
comes first and any truncation only cuts the tail of the context. The option's place on the slate is part
of the choice: people click the first options more often, and a human-like choice shows that bias too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CHOICE_END = "\n\n"  # separates the choice line from the context
UNTITLED = "(untitled)"


def choice_line(title: Any, channel: Any = None, position: tuple[int, int] | None = None) -> str:
    """The first line: the chosen option's place (k of n), title and channel (newlines folded: one line)."""
    title_text = " ".join(str(title).split()) if title else UNTITLED
    place = f"option {position[0]} of {position[1]}: " if position is not None else ""
    line = f"CHOSEN: {place}{title_text}"
    if channel:
        line += f" | CHANNEL: {' '.join(str(channel).split())}"
    return line


def prompt_context(prompt: Any) -> str:
    """The viewer's context from a prompt: the last user message of a chat, or the text itself."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        for message in reversed(prompt):
            if isinstance(message, dict) and message.get("role") == "user":
                return str(message.get("content") or "")
    return ""


def choice_text(title: Any, channel: Any, context: str, position: tuple[int, int] | None = None) -> str:
    """The discriminator's input for choosing (title, channel), option k of n, in ``context``."""
    return choice_line(title, channel, position) + CHOICE_END + context


def option_text(prompt: Any, titles: Sequence[Any], channels: Sequence[Any] | None, index: int) -> str:
    """The discriminator's input for option ``index`` (1-based) of a row's slate."""
    channel = channels[index - 1] if channels is not None and len(channels) >= index else None
    return choice_text(titles[index - 1], channel, prompt_context(prompt), (index, len(titles)))


def split_choice(text: str) -> tuple[str, str]:
    """(choice line, context) of a discriminator text."""
    choice, _, context = text.partition(CHOICE_END)
    return choice, context
