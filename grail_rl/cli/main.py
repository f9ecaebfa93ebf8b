"""Entry point of the ``grail-rl`` command: a click group whose subcommands are imported on first use.

Listing and validation commands must not import torch, trl or transformers; only ``train`` and the
commands that need a model do, inside their own modules.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from typing import Any

import click

from grail_rl import __version__
from grail_rl.cli.output import echo_error_json, json_mode
from grail_rl.errors import GrailError, describe_exception
from grail_rl.plugins.kinds import KINDS

DEBUG_ENV = "GRAIL_RL_DEBUG"

# command name -> "module:attribute" (or "module:attribute[key]" for a dict of commands); imported only when
# the command runs (or --help lists it).
LAZY_COMMANDS: dict[str, str] = {
    **{kind.list_command: f"grail_rl.cli.listing:LISTING_COMMANDS[{kind.list_command}]" for kind in KINDS},
    "plugins": "grail_rl.cli.listing:plugins_command",
    "validate": "grail_rl.cli.validate:validate",
    "data": "grail_rl.cli.data_cmds:data",
    "preview": "grail_rl.cli.preview_cmd:preview",
    "train": "grail_rl.cli.train_cmd:train",
    "evaluate": "grail_rl.cli.evaluate_cmd:evaluate",
    "report": "grail_rl.cli.report_cmd:report",
    "check-rewards": "grail_rl.cli.check_rewards_cmd:check_rewards",
    "new-plugin": "grail_rl.cli.new_plugin_cmd:new_plugin",
    "generate": "grail_rl.cli.generate_cmd:generate",
    "demo": "grail_rl.cli.demo_cmd:demo",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name].split(":")
            attr, _, key = attr.partition("[")
            found = getattr(importlib.import_module(module_name), attr)
            return found[key.rstrip("]")] if key else found
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GrailError as exc:
            # A user mistake: one clear message, no traceback (JSON on stdout in a --json mode).
            if json_mode(ctx):
                echo_error_json(ctx, str(exc))
            elif exc.exit_code == 0:  # nothing to do, and that is not a failure (e.g. resuming a complete run)
                click.echo(str(exc), err=True)
            else:
                for line in str(exc).splitlines() or [type(exc).__name__]:
                    click.secho(f"error: {line}", fg="red", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            terminated = type(exc).__name__ == "Terminated"  # SIGTERM during training (see training.run)
            click.secho("terminated" if terminated else "interrupted", fg="yellow", err=True)
            ctx.exit(143 if terminated else 130)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.ClickException as exc:  # a usage error: JSON too in a --json mode
            if json_mode(ctx):
                echo_error_json(ctx, exc.format_message())
                ctx.exit(exc.exit_code)
            raise
        except SystemExit as exc:
            # grail-rl's commands end through click, never sys.exit: this came from plugin code, and must not
            # pass for success.
            click.secho(f"error: the command was ended early by sys.exit({exc.code!r}), from plugin code?", fg="red",
                        err=True)  # fmt: skip
            ctx.exit(exc.code if isinstance(exc.code, int) and exc.code not in (0, 2) else 1)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                return self._unexpected(ctx, exc)
            # Not a bug: the disk (or the quota, or the file size limit) is full. What was written whole is kept.
            where = f" writing {exc.filename}" if exc.filename else ""
            message = f"no space left{where} ({exc.strerror or exc}); free some space or choose another output place"
            if json_mode(ctx):
                echo_error_json(ctx, message)
            else:
                click.secho(f"error: {message}", fg="red", err=True)
            ctx.exit(1)
        except Exception as exc:
            self._unexpected(ctx, exc)

    def _unexpected(self, ctx: click.Context, exc: Exception) -> None:
        """Not a user mistake: a bug here or in a plugin. One line (the traceback with GRAIL_RL_DEBUG=1; a
        training run also writes it to train.log), never a wall of text that hides the cause."""
        if os.environ.get(DEBUG_ENV):
            raise exc
        message = describe_exception(exc)
        if json_mode(ctx):
            echo_error_json(ctx, f"unexpected error: {message}")
        else:
            click.secho(f"error: unexpected {message}", fg="red", err=True)
            click.echo(f"(this is a bug in grail-rl or a plugin; rerun with {DEBUG_ENV}=1 for the traceback)", err=True)
        ctx.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="grail-rl")
def cli() -> None:
    """Train language models with GRPO to simulate how people choose what to watch next."""


def main() -> None:
    cli(prog_name="grail-rl")


if __name__ == "__main__":
    sys.exit(main())
