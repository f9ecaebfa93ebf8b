"""How commands report: ``--json`` modes print only JSON on stdout, errors included.

A command's ``--json`` flag is declared with :func:`json_option`, which also marks the invocation as a
JSON one (in ``ctx.meta``, shared by every context of the invocation). The group's error handler then
prints a :class:`~grail_rl.errors.GrailError` as ``{"ok": false, "error": ..., "problems": [...]}`` on
stdout instead of ``error:`` lines on stderr, so a script reading stdout always gets JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

JSON_MODE = "grail_rl.json_mode"


def _remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_MODE] = True
    return value


def json_option(help_text: str) -> Callable[[Any], Any]:
    """The ``--json`` flag (bound to ``as_json``) of a command whose JSON mode prints only JSON."""
    return click.option("--json", "as_json", is_flag=True, help=help_text, callback=_remember)


def json_mode(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(JSON_MODE))


def error_document(message: str) -> str:
    """The JSON printed for an error in a JSON mode: every problem on its own, the first as ``error``."""
    problems = message.splitlines() or [message]
    return json.dumps({"ok": False, "error": problems[0], "problems": problems}, indent=2, ensure_ascii=False)
