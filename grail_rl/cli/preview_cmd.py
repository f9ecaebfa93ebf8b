"""``grail-rl preview RECIPE``: the first prompts exactly as training will see them.

Prompts are measured and limited exactly as ``train`` measures and limits them
(:func:`grail_rl.models.loading.prompt_measure`): in tokens of the recipe's model, whose tokenizer is loaded
the way training loads it (the only reason this command imports transformers), against
``prompt.max_prompt_tokens`` or else the model's context window minus the completion length. Prompts over
the limit are shown truncated or counted as dropped, as ``prompt.long_prompts`` says.
"""

from __future__ import annotations

import click

from grail_rl.cli.output import echo_json, json_option
from grail_rl.cli.validate import recipe_options


@recipe_options
@click.command("preview")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=str))
@click.option("--n", "n", type=click.IntRange(min=1), default=3, show_default=True, help="Prompts to show.")
@click.option("--split", type=click.Choice(["train", "eval"]), default="train", show_default=True)
@json_option("Print the prompts and their lengths as JSON.")
@click.pass_context
def preview(ctx: click.Context, recipe: str, sets: tuple[str, ...], n: int, split: str, as_json: bool) -> None:
    """Show the first N prompts of RECIPE's split as training will see them, with their lengths."""
    from grail_rl.data.dataset import build_split
    from grail_rl.models.loading import model_location, prompt_measure
    from grail_rl.recipe.loader import load_recipe

    loaded = load_recipe(recipe, sets=sets, trainer_args=ctx.args)
    location = model_location(loaded.recipe.model, loaded.path.resolve().parent)
    tokenizer, limit = prompt_measure(loaded.recipe, location)
    mode = loaded.recipe.prompt.long_prompts
    dataset, report = build_split(loaded.recipe, loaded.plugins, split, tokenizer=tokenizer, limit=limit)
    dropped = report.counts.get("prompt_too_long", 0)
    over = dropped + report.truncated
    shown = [dataset[i] for i in range(min(n, len(dataset)))]
    if as_json:
        echo_json({
            "unit": "tokens", "limit": limit, "long_prompts": mode, "over_limit": over,
            "truncated": report.truncated, "dropped_too_long": dropped, "rows": len(dataset), "drops": report.as_dict(),
            "prompts": [{"messages": r["prompt"], "length": r["prompt_length"], "over_limit": r["prompt_truncated"],
                         "truncated": r["prompt_truncated"], "gold_index": r["gold_index"],
                         "n_options": r["n_options"]} for r in shown],
        }, ensure_ascii=False)  # fmt: skip
        return
    for i, row in enumerate(shown, 1):
        flag = f"  TRUNCATED to fit {limit}" if row["prompt_truncated"] else ""
        click.secho(f"=== prompt {i}: {row['prompt_length']} tokens, gold {row['gold_index']} of {row['n_options']}{flag}",
                    fg="red" if flag else "cyan", bold=True)  # fmt: skip
        for message in row["prompt"]:
            click.secho(f"--- {message['role']}", fg="cyan")
            click.echo(message["content"])
        click.echo()
    for line in report.lines():
        click.echo(line, err=True)
    if limit is not None:
        source = "prompt.max_prompt_tokens" if loaded.recipe.prompt.max_prompt_tokens else (
            "the model's context window minus trainer.max_completion_length")  # fmt: skip
        click.echo(
            f"{over} of {report.kept + dropped} prompts are longer than {limit} tokens ({source}): "
            f"{report.truncated} truncated, {dropped} dropped (long_prompts: {mode})",
            err=True,
        )
