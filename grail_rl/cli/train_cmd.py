"""``grail-rl train RECIPE [--set K=V ...] [--learning_rate 2e-6 ...] [--resume [PATH]]``.

Validates the recipe first (no torch imported until it is valid), then runs
:func:`grail_rl.training.run.run_training`. Under ``torchrun`` or ``accelerate launch`` every process runs
this command; only rank 0 prints the summary.
"""

from __future__ import annotations

import click

from grail_rl.cli.validate import recipe_options


def resume_option(command: click.Command) -> click.Command:
    return click.option(
        "--resume",
        "resume",
        is_flag=False,
        flag_value="latest",
        default=None,
        metavar="[PATH]",
        help="Resume from the newest complete checkpoint of output.dir, or from the checkpoint PATH.",
    )(command)


@recipe_options
@resume_option
@click.command("train")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--accept-recipe-changes",
    is_flag=True,
    help="With --resume: continue although the recipe or plugins differ from the checkpoint's (recorded in run.json).",
)
@click.option(
    "--fresh-discriminator",
    is_flag=True,
    help="With --resume: start a new, untrained discriminator instead of the checkpoint's (or where it has none).",
)
@click.option("--no-eval", is_flag=True, help="Skip the accuracy evaluation after training.")
@click.option(
    "--quiet", is_flag=True, help="No progress bar or per-step lines (the log files are still written)."
)
@click.pass_context
def train(
    ctx: click.Context,
    recipe: str,
    sets: tuple[str, ...],
    resume: str | None,
    accept_recipe_changes: bool,
    fresh_discriminator: bool,
    no_eval: bool,
    quiet: bool,
):
    """Train with GRPO as RECIPE says; write checkpoints, logs and an evaluation into output.dir.

    Trainer fields can be overridden TRL-style (--learning_rate 2e-6). Exits 2 on a recipe problem.
    """
    from grail_rl.errors import GrailError
    from grail_rl.recipe.loader import load_recipe

    if accept_recipe_changes and resume is None:
        raise GrailError("--accept-recipe-changes applies to --resume only; a new run uses the recipe as it is")
    if fresh_discriminator and resume is None:
        raise GrailError("--fresh-discriminator applies to --resume only; a new run starts a new discriminator")
    loaded = load_recipe(recipe, sets=sets, trainer_args=ctx.args)
    if fresh_discriminator and loaded.recipe.discriminator is None:
        raise GrailError(f"--fresh-discriminator: {recipe} has no discriminator block")
    from grail_rl.training.run import run_training
    from grail_rl.training.summary import print_summary

    try:
        result = run_training(
            loaded,
            resume=resume,
            accept_changes=accept_recipe_changes,
            console=not quiet,
            evaluate=not no_eval,
            fresh_state=("discriminator",) if fresh_discriminator else (),
        )
        print_summary(result)
        release_process_group(finished=True)
    finally:
        release_process_group()


def release_process_group(finished: bool = False) -> None:
    """End the distributed process group (torchrun / accelerate launch) before the interpreter exits: left to
    the interpreter's teardown, gloo's threads can abort the process ("terminate called without an active
    exception") after training has finished. ``finished``: every rank got here normally, so they first wait
    for each other (bounded), and none tears its connections down while a peer still uses them."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished and dist.get_backend() == "gloo":
        from datetime import timedelta

        try:
            dist.monitored_barrier(timeout=timedelta(seconds=120))
        except RuntimeError:  # a peer that died or hangs: tear down anyway
            pass
    dist.destroy_process_group()
