"""``grail-rl preview RECIPE``: the first prompts exactly as training will see them.

Lengths are in tokens when the recipe's model folder exists locally (its tokenizer is loaded lazily, the
only reason this command may import transformers), in characters otherwise. Prompts longer than
``prompt.max_prompt_tokens`` are flagged with what the recipe will do to them (drop or truncate).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from grail_rl.cli.validate import recipe_options

_DONE = {"drop": "dropped", "truncate": "truncated"}


def local_tokenizer(recipe: Any, base: Path) -> Any:
    """The recipe's tokenizer when its model is a local folder, else None."""
    folder = Path(recipe.model.name_or_path).expanduser()
    if not folder.is_absolute():
        folder = base / folder
    if not (folder / "tokenizer_config.json").is_file():
        return None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=recipe.model.trust_remote_code)
    if recipe.model.chat_template is not None:
        tokenizer.chat_template = recipe.model.chat_template
    elif recipe.model.chat_template_file is not None:
        tokenizer.chat_template = Path(recipe.model.chat_template_file).read_text(encoding="utf-8")
    return tokenizer


@recipe_options
@click.command("preview")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=str))
@click.option("--n", "n", type=click.IntRange(min=1), default=3, show_default=True, help="Prompts to show.")
@click.option("--split", type=click.Choice(["train", "eval"]), default="train", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the prompts and their lengths as JSON.")
@click.pass_context
def preview(ctx: click.Context, recipe: str, sets: tuple[str, ...], n: int, split: str, as_json: bool) -> None:
    """Show the first N prompts of RECIPE's split as training will see them, with their lengths."""
    from grail_rl.data.dataset import build_split
    from grail_rl.recipe.loader import load_recipe

    loaded = load_recipe(recipe, sets=sets, trainer_args=ctx.args)
    tokenizer = local_tokenizer(loaded.recipe, loaded.path.resolve().parent)
    unit = "tokens" if tokenizer is not None else "characters"
    limit = loaded.recipe.prompt.max_prompt_tokens
    # Build the split without the length limit, so over-long prompts can be shown and flagged.
    unlimited = loaded.recipe.model_copy(update={"prompt": loaded.recipe.prompt.model_copy(update={"max_prompt_tokens": None})})
    dataset, report = build_split(unlimited, loaded.plugins, split, tokenizer=tokenizer)  # type: ignore[arg-type]
    over = sum(1 for length in dataset["prompt_length"] if limit is not None and length > limit)
    shown = [dataset[i] for i in range(min(n, len(dataset)))]
    if as_json:
        click.echo(json.dumps({
            "unit": unit, "limit": limit, "long_prompts": loaded.recipe.prompt.long_prompts, "over_limit": over,
            "rows": len(dataset), "drops": report.as_dict(),
            "prompts": [{"messages": r["prompt"], "length": r["prompt_length"],
                         "over_limit": limit is not None and r["prompt_length"] > limit,
                         "gold_index": r["gold_index"], "n_options": r["n_options"]} for r in shown],
        }, indent=2, ensure_ascii=False))  # fmt: skip
        return
    for i, row in enumerate(shown, 1):
        length = row["prompt_length"]
        flag = f"  OVER LIMIT {limit}: will be {_DONE[loaded.recipe.prompt.long_prompts]}" if limit and length > limit else ""
        click.secho(f"=== prompt {i}: {length} {unit}, gold {row['gold_index']} of {row['n_options']}{flag}",
                    fg="red" if flag else "cyan", bold=True)  # fmt: skip
        for message in row["prompt"]:
            click.secho(f"--- {message['role']}", fg="cyan")
            click.echo(message["content"])
        click.echo()
    for line in report.lines():
        click.echo(line, err=True)
    if limit is not None:
        done = _DONE[loaded.recipe.prompt.long_prompts]
        click.echo(f"{over} of {len(dataset)} prompts are longer than {limit} {unit} and will be {done}", err=True)
