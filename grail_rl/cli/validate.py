"""``grail-rl validate RECIPE``: print the fully resolved recipe, or every problem with its location."""

from __future__ import annotations

import click
import yaml
from rich.console import Console

from grail_rl.cli.listing import warn_failures
from grail_rl.cli.output import echo_json, json_option
from grail_rl.plugins.manager import load_plugins
from grail_rl.recipe.loader import load_recipe


def recipe_options(command: click.Command) -> click.Command:
    """The options every recipe-taking command shares: ``--set`` and TRL-style trainer flags."""
    command = click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a recipe field by dotted path, e.g. --set trainer.learning_rate=2e-6 (repeatable).",
    )(command)
    command.context_settings.update(ignore_unknown_options=True, allow_extra_args=True)
    return command


@recipe_options
@click.command("validate")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=str))
@json_option("Print the resolved recipe as JSON instead of YAML (errors as JSON too).")
@click.pass_context
def validate(ctx: click.Context, recipe: str, sets: tuple[str, ...], as_json: bool) -> None:
    """Validate RECIPE (with overrides) and print it with every default filled in.

    Trainer fields can also be overridden TRL-style: --learning_rate 2e-6. Exits 2 on any problem.
    """
    plugins = load_plugins()
    warn_failures(plugins, Console(stderr=True))
    loaded = load_recipe(recipe, sets=sets, trainer_args=ctx.args, plugins=plugins)
    resolved = loaded.resolved()
    if as_json:
        echo_json(resolved)
        return
    click.echo(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), nl=False)
    click.secho(f"# {recipe}: valid", fg="green", err=True)
