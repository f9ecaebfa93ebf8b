"""``{{ field }}`` text templates, shared by ``grail-rl generate --template`` and the ``llm_judge`` rubric.

A placeholder is ``{{ name }}`` (spaces inside the braces allowed); everything else is literal text, so a
template needs no escaping. Values are filled from a row: lists become one item per line, None is empty.
No imports beyond the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def template_fields(template: str) -> list[str]:
    """The field names a template's placeholders name, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def render_template(template: str, row: Mapping[str, Any]) -> str:
    """The template with every ``{{ field }}`` replaced by the row's value (lists joined by newlines)."""

    def value(match: re.Match[str]) -> str:
        item = row[match[1]]
        if isinstance(item, list | tuple):
            return "\n".join(str(v) for v in item)
        return "" if item is None else str(item)

    return PLACEHOLDER.sub(value, template)
