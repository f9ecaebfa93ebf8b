"""``grail-rl new-plugin NAME --kind reward|section|discriminator [--dir DIR]``: a plugin package to start from
(:mod:`grail_rl.scaffold`). One error line and exit 2 for a bad name or an existing folder; nothing is
overwritten."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(["reward", "section", "discriminator"]), default="reward", show_default=True,
              help="What the plugin adds.")  # fmt: skip
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Create the package folder (grail-rl-NAME) here.")  # fmt: skip
def new_plugin(name: str, kind: str, parent: Path) -> None:
    """Create a plugin package NAME: pyproject with the entry point, the plugin class, tests and a README."""
    from grail_rl.scaffold import LISTINGS
    from grail_rl.scaffold import new_plugin as scaffold

    target = scaffold(name, kind, parent)
    click.echo(f"created {target}")
    click.echo(f"  pip install {target}    # then: grail-rl {LISTINGS[kind]}")
    click.echo(f"  pytest {target / 'tests'}")
