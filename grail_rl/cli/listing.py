"""``list-rewards``, ``list-sections``, ``list-discriminators`` and ``plugins``: what is installed.

These commands import no torch, trl or transformers (a test asserts it) and answer well under a second.
"""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.table import Table

from grail_rl.cli.output import echo_json, json_option
from grail_rl.plugins.kinds import KINDS, PluginKind
from grail_rl.plugins.manager import Plugins, load_plugins
from grail_rl.plugins.registry import PluginSpec


def spec_as_dict(spec: PluginSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "kind": spec.kind,
        "plugin": spec.source.plugin,
        "distribution": spec.source.distribution,
        "version": spec.source.version,
        "description": spec.description,
        "config": to_jsonable_python(spec.config_fields(), fallback=str),
    } | ({"row_fields": list(_row_fields(spec))} if spec.kind == "reward" else {})


def _row_fields(spec: PluginSpec) -> tuple[str, ...]:
    """The row fields a reward plugin reads by default (its class's; a Config ``row_fields`` option adds more)."""
    names = getattr(spec.cls, "row_fields", ())
    return tuple(names) if isinstance(names, list | tuple) else ()


def _options_text(spec: PluginSpec) -> str:
    parts = []
    for field in spec.config_fields():
        default = "required" if field["required"] else json.dumps(to_jsonable_python(field["default"], fallback=str))
        if len(default) > 60:  # a long default (a rubric, a prompt) is shown by its start; --json has it whole
            default = default[:57] + "..."
        parts.append(f"{field['name']}={default}")
    return "\n".join(parts) or "-"


def warn_failures(plugins: Plugins, console: Console) -> None:
    for failure in plugins.failures:
        console.print(f"[yellow]warning:[/] {failure.message()}", highlight=False, soft_wrap=True)


def _list(kind: str, as_json: bool) -> None:
    plugins = load_plugins()
    registry = plugins.registry(kind)
    err = Console(stderr=True)
    if as_json:
        echo_json([spec_as_dict(spec) for spec in registry])
        warn_failures(plugins, err)
        return
    # Every column wraps (folding long words) rather than vanishing on a narrow terminal; the name keeps
    # its line because it is what a recipe uses.
    table = Table(title=f"Installed {registry.label} plugins", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("plugin (distribution)", overflow="fold", ratio=2, min_width=8)
    table.add_column("description", overflow="fold", ratio=3, min_width=10)
    table.add_column("options (default)", overflow="fold", ratio=3, min_width=10)
    rewards = kind == "reward"
    if rewards:
        table.add_column("row fields read", overflow="fold", ratio=2, min_width=8)
    for spec in registry:
        dist = f"{spec.source.distribution or '-'} {spec.source.version or ''}".strip()
        cells = [spec.name, f"{spec.source.plugin} ({dist})", spec.description, _options_text(spec)]
        if rewards:
            configurable = "row_fields" in spec.config_class.model_fields
            cells.append(", ".join(_row_fields(spec)) + (" (+ row_fields option)" if configurable else "") or "-")
        table.add_row(*cells)
    out = Console()
    if len(registry):
        out.print(table)
    else:
        out.print(f"No {registry.label} plugins are installed.")
    warn_failures(plugins, err)


_json_option = json_option("Print JSON instead of a table.")


def _listing_command(kind: PluginKind) -> click.Command:
    @click.command(kind.list_command, help=f"List the installed {kind.label} plugins and their options.")
    @_json_option
    def command(as_json: bool) -> None:
        _list(kind.key, as_json)

    return command


# One command per kind of plugin (list-rewards, list-sections, list-discriminators), by command name.
LISTING_COMMANDS: dict[str, click.Command] = {kind.list_command: _listing_command(kind) for kind in KINDS}


@click.command("plugins")
@_json_option
def plugins_command(as_json: bool) -> None:
    """Show loaded plugins with their hooks and versions, and the ones that failed or were blocked."""
    plugins = load_plugins()
    if as_json:
        echo_json(
            {
                "loaded": [p.as_dict() for p in plugins.loaded],
                "failed": [f.__dict__ for f in plugins.failures],
                "blocked": plugins.blocked,
            }
        )
        return
    console = Console()
    table = Table(title="Loaded plugins", title_justify="left")
    for column in ("plugin", "distribution", "hooks", "registers"):
        table.add_column(column, overflow="fold")
    for p in plugins.loaded:
        registers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in p.registered.items())
        table.add_row(p.name, f"{p.distribution or '-'} {p.version or ''}".strip(), ", ".join(p.hooks), registers)
    console.print(table)
    for failure in plugins.failures:
        console.print(f"[red]failed:[/] {failure.message()}", highlight=False, soft_wrap=True)
    for name in plugins.blocked:
        console.print(f"[yellow]blocked:[/] {name} (GRAIL_RL_BLOCK_PLUGINS)", highlight=False, soft_wrap=True)
