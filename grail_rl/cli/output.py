"""How commands report: ``--json`` modes print only JSON on stdout, errors included.

A command's ``--json`` flag is declared with :func:`json_option`. The flag is processed first (eager) and
marks the invocation as a JSON one (in ``ctx.meta``, shared by every context of the invocation); from then
on, for the rest of the command, anything printed to stdout (a plugin's ``print``, a library's chatter)
goes to stderr, and only :func:`echo_json` writes to the real stdout. The group's error handler prints a
:class:`~grail_rl.errors.GrailError` or a usage error as ``{"ok": false, "error": ..., "problems": [...]}`` on
stdout instead of ``error:`` lines on stderr, so a script reading stdout always gets JSON.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

import click

JSON_MODE = "grail_rl.json_mode"
REAL_STDOUT = "grail_rl.stdout"


def _remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_MODE] = True
        ctx.meta[REAL_STDOUT] = sys.stdout
        ctx.with_resource(contextlib.redirect_stdout(sys.stderr))  # undone when the command's context closes
    return value


def json_option(help_text: str) -> Callable[[Any], Any]:
    """The ``--json`` flag (bound to ``as_json``) of a command whose JSON mode prints only JSON."""
    return click.option("--json", "as_json", is_flag=True, help=help_text, callback=_remember, is_eager=True)


def echo_json(data: Any, **dumps: Any) -> None:
    """Print ``data`` as indented JSON on the command's real stdout."""
    ctx = click.get_current_context(silent=True)
    out = ctx.meta.get(REAL_STDOUT) if ctx is not None else None
    click.echo(json.dumps(data, **{"indent": 2, **dumps}), file=out)


def json_mode(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(JSON_MODE))


def error_document(message: str) -> str:
    """The JSON printed for an error in a JSON mode: every problem on its own, the first as ``error``."""
    problems = message.splitlines() or [message]
    return json.dumps({"ok": False, "error": problems[0], "problems": problems}, indent=2, ensure_ascii=False)


def echo_error_json(ctx: click.Context, message: str) -> None:
    """The error document on the real stdout (a usage error can leave stdout redirected: click does not close
    a command's context when its arguments fail to parse)."""
    click.echo(error_document(message), file=ctx.meta.get(REAL_STDOUT))
