"""``{{ field }}`` text templates, shared by ``grail-rl generate --template`` and the ``llm_judge`` rubric.

A placeholder is ``{{ name }}`` (spaces inside the braces allowed); everything else is literal text, so a
template needs no escaping. Values are filled from a row: lists become one item per line, None is empty.
No imports beyond the standard library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
BRACES = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def template_fields(template: str) -> list[str]:
    """The field names a template's placeholders name, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def malformed_placeholders(template: str) -> list[str]:
    """``{{ ... }}`` pieces that are not placeholders (``{{ gold title }}``, ``{{ 1x }}``): they would be sent as
    literal text, so the checks refuse them."""
    return [piece for piece in BRACES.findall(template) if not PLACEHOLDER.fullmatch(piece)]


def render_template(template: str, row: Mapping[str, Any]) -> str:
    """The template with every ``{{ field }}`` replaced by the row's value: a chat prompt by its user message's
    text, a mapping (the survey) as JSON, a list one item per line, None as nothing."""

    def value(match: re.Match[str]) -> str:
        item = row[match[1]]
        if isinstance(item, list | tuple) and item and all(isinstance(m, Mapping) and "content" in m for m in item):
            users = [m for m in item if m.get("role") == "user"] or list(item)
            return str(users[-1].get("content") or "")
        if isinstance(item, Mapping):
            return json.dumps(item, ensure_ascii=False, sort_keys=True)
        if isinstance(item, list | tuple):
            return "\n".join(str(v) for v in item)
        return "" if item is None else str(item)

    return PLACEHOLDER.sub(value, template)
