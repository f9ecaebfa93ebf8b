"""``grail-rl check-rewards RECIPE [--n N] [--json]``: every reward of a recipe against replies of known quality.

On N rows of the recipe's training data (:mod:`grail_rl.rewards.gold_check`): the ideal reply, near misses
and garbage, scored by every reward block as the recipe configures it, through the training runtime wrapper.
Exit 2 when a reward ranks a wrong reply above the ideal one or raises (the rows and replies are printed);
the other rewards are still checked. No model, no torch.
"""

from __future__ import annotations

from typing import Any

import click

from grail_rl.cli.output import echo_json, json_option
from grail_rl.cli.validate import recipe_options
from grail_rl.errors import GrailError


class RewardCheckFailed(GrailError):
    """A reward ranked a wrong reply above the ideal one, or raised."""


@recipe_options
@click.command("check-rewards")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=str))
@click.option("--n", "n_rows", type=click.IntRange(min=1, max=10_000), default=50, show_default=True,
              help="Check on the first N rows of the recipe's training split.")  # fmt: skip
@json_option("Print the results as JSON.")
@click.pass_context
def check_rewards(ctx: click.Context, recipe: str, sets: tuple[str, ...], n_rows: int, as_json: bool) -> None:
    """Score ideal replies, near misses and garbage with every reward of RECIPE; exit 2 on a wrong ranking."""
    from grail_rl.data.dataset import build_split
    from grail_rl.recipe.loader import load_recipe
    from grail_rl.rewards.gold_check import check_reward, row_columns
    from grail_rl.rewards.runtime import build_reward_functions, entries_from_blocks

    loaded = load_recipe(recipe, sets=list(sets), trainer_args=list(ctx.args))
    split, _ = build_split(loaded.recipe, loaded.plugins, "train", limit=None)
    if len(split) == 0:
        raise GrailError(f"{recipe}: the training split has no usable rows to check the rewards on")
    rows = [dict(row) for row in split.select(range(min(n_rows, len(split))))]
    funcs, _ = build_reward_functions(entries_from_blocks(loaded.recipe.rewards))
    for func in funcs:
        # Each kind of reply is scored on its own: no training batch, so no diagnostics (which would take a
        # kind every reward abstains on for a batch without signal, and stop).
        func.diagnostics = None
    notes = setup_rewards(funcs, loaded.recipe)
    checks = []
    for func in funcs:
        check = check_reward(func, rows, row_columns(rows), func.__name__)
        check.note = notes.get(func.__name__, "")
        check.must_score = getattr(func.reward, "score_group", None) is None
        checks.append(check)
    failed = [c.name for c in checks if not c.ok]
    if as_json:  # one JSON document, failures included; the exit status says whether it passed
        echo_json({"rows": len(rows), "ok": not failed, "failed": failed, "rewards": [c.as_dict() for c in checks]})
        if failed:
            ctx.exit(2)
        return
    print_checks(checks, len(rows))
    if failed:
        raise RewardCheckFailed(
            f"check-rewards: {', '.join(failed)} ranked a wrong reply above the ideal one, raised, or abstained on "
            "every ideal reply (see above); fix the reward or its options before training"
        )


def setup_rewards(funcs: list[Any], recipe: Any) -> dict[str, str]:
    """Give rewards that read the discriminator an untrained, frozen one of the recipe's kind (what a run's first
    step sees); a note says so."""
    notes: dict[str, str] = {}
    readers = [f for f in funcs if getattr(f.reward, "requires_discriminator", False)]
    if readers and recipe.discriminator is not None:
        from grail_rl.testing import discriminator_context

        block = recipe.discriminator  # the recipe's own discriminator options, untrained and frozen
        context = discriminator_context(block.name, train=False, options=dict(block.plugin_options()))
        for func in readers:
            func.setup(context)
            notes[func.__name__] = "scored by an untrained discriminator (what the first training step sees)"
    for func in funcs:
        check_server = getattr(func.reward, "check_server", None)
        if callable(check_server):  # a reward behind a server (llm_judge): unreachable or a wrong model is one line
            try:
                check_server()
            except GrailError as exc:
                raise GrailError(f"reward '{func.__name__}': {exc}") from None
            notes[func.__name__] = "scored by its server"
        if getattr(func.reward, "score_group", None) is not None:
            notes.setdefault(func.__name__, "a group reward: each row is its own group here (one reply per kind)")
    return notes


def _cell(value: float | None) -> str:
    return "abstains" if value is None else f"{value:.3f}"


def print_checks(checks: list[Any], rows: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Rewards against replies of known quality ({rows} rows)", title_justify="left")
    for column in ("reward", "ideal", "right option, bad format", "wrong option", "garbage", "wrong > ideal",
                   "garbage at bottom", "raised", "µs/reply"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for c in checks:
        near = [c.means.get(k) for k in ("right_option_bare_number", "right_option_prose", "right_option_unclosed_tag")]
        garbage = [c.means.get(k) for k in c.means if k.startswith("garbage")]
        near_text = " / ".join(_cell(v) for v in near)
        garbage_values = [v for v in garbage if v is not None]
        garbage_text = f"max {max(garbage_values):.3f}" if garbage_values else "abstains"
        speed = c.microseconds_per_completion
        table.add_row(c.name, _cell(c.means.get("ideal")), near_text, _cell(c.means.get("wrong_option")), garbage_text,
                      str(len(c.violations)) if c.violations else "none", "yes" if not c.garbage_above else "NO",
                      "; ".join(f"{k}: {v}" for k, v in c.errors.items()) or "-",
                      f"{speed:.1f}" if speed is not None else "-")  # fmt: skip
    console = Console()
    console.print(table)
    for c in checks:
        if c.note:
            console.print(f"note: {c.name}: {c.note}", highlight=False)
        if c.must_score and c.never_scored:
            console.print(f"NEVER SCORED: reward '{c.name}' abstained on all {c.ideal_rows} ideal replies: it would "
                          "give training nothing (a judge whose replies hold no score? a rubric or score_pattern "
                          "that does not match?)", highlight=False, markup=False)  # fmt: skip
        for v in c.violations[:3]:
            console.print(
                f"WRONG RANKING: reward '{v.reward}' gives the {v.kind} reply {v.score:.3f} and the ideal reply {v.ideal:.3f} "
                f"on row {v.row}\n  ideal: {v.ideal_reply[:200]!r}\n  {v.kind}: {v.reply[:200]!r}",
                highlight=False, markup=False,
            )  # fmt: skip
        if len(c.violations) > 3:
            console.print(f"  ... {len(c.violations) - 3} more for '{c.name}' (--json lists 20)", highlight=False)
