"""``grail-rl generate RECIPE --endpoint URL --served-model NAME --out FILE``: generations from a served model over
the recipe's rows, written incrementally and resumable (:mod:`grail_rl.serving.generate`)."""

from __future__ import annotations

from pathlib import Path

import click

from grail_rl.cli.validate import recipe_options
from grail_rl.errors import GrailError


@recipe_options
@click.command("generate")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=str))
@click.option("--endpoint", required=True, metavar="URL", help="The OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.")
@click.option("--served-model", required=True, metavar="NAME", help="The model name the server knows.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The JSONL to write (appended; a rerun resumes where it stopped).")  # fmt: skip
@click.option("--split", type=click.Choice(["train", "eval"]), default="train", show_default=True)
@click.option("--template", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A text file with {{ field }} placeholders filled from each row [default: the recipe's prompt].")  # fmt: skip
@click.option("--n", "n", type=click.IntRange(1, 64), default=1, show_default=True, help="Generations per row.")
@click.option("--temperature", type=click.FloatRange(0.0, 2.0), default=0.0, show_default=True)
@click.option("--max-tokens", type=click.IntRange(1, 1_000_000), default=256, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True, help="Requests in flight at once.")
@click.option("--timeout", type=click.FloatRange(1.0, 3600.0), default=120.0, show_default=True,
              help="Seconds per request before it is retried.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows.")
@click.pass_context
def generate(ctx: click.Context, recipe: str, sets: tuple[str, ...], endpoint: str, served_model: str, out: Path,
             split: str, template: Path | None, n: int, temperature: float, max_tokens: int, concurrency: int,
             timeout: float, limit: int | None) -> None:  # fmt: skip
    """Generate from a served model over RECIPE's rows into a JSONL, resumably."""
    import asyncio

    from grail_rl.data.dataset import build_split
    from grail_rl.evaluation.predictions import prompt_hash
    from grail_rl.files import check_readable_path, read_text_limited
    from grail_rl.recipe.loader import load_recipe
    from grail_rl.serving.client import Endpoint, ServedModel
    from grail_rl.serving.generate import generate_rows, read_done, render_template, template_fields

    if not endpoint.startswith(("http://", "https://")):
        raise GrailError(f"--endpoint {endpoint!r}: give an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
    if out.exists():
        check_readable_path(out, "--out")
    text = read_text_limited(template, "--template") if template is not None else None
    loaded = load_recipe(recipe, sets=list(sets), trainer_args=list(ctx.args))
    dataset, _ = build_split(loaded.recipe, loaded.plugins, split, limit=None)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    if len(dataset) == 0:
        raise GrailError(f"{recipe}: the {split} split has no usable rows")
    if text is not None:
        missing = [f for f in template_fields(text) if f not in dataset.column_names]
        if missing:
            raise GrailError(f"--template {template}: the rows have no field '{missing[0]}'; fields: {', '.join(dataset.column_names)}")
        prompts = [render_template(text, dict(row)) for row in dataset]
    else:
        prompts = list(dataset["prompt"])
    hashes = [prompt_hash(p) for p in prompts]
    done = read_done(out, hashes)
    todo = [i for i in range(len(prompts)) if i not in done]
    if done:
        click.echo(f"resuming: {len(done):,} of {len(prompts):,} rows are already in {out}", err=True)
    served = ServedModel(Endpoint(endpoint.rstrip("/"), served_model, timeout=timeout, concurrency=concurrency))
    served.check()
    out.parent.mkdir(parents=True, exist_ok=True)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[rate]}"))  # fmt: skip
    with Progress(*columns, transient=False, console=None) as progress:
        task = progress.add_task("rows", total=len(prompts), completed=len(done), rate="")

        def advance(_ok: bool) -> None:
            elapsed = progress.tasks[0].elapsed or 0.0
            finished = progress.tasks[0].completed + 1 - len(done)
            progress.update(task, advance=1, rate=f"{finished / elapsed:.1f} rows/s" if elapsed else "")

        written = asyncio.run(generate_rows(served, prompts, hashes, todo, out, n=n, max_tokens=max_tokens,
                                            temperature=temperature, on_row=advance))  # fmt: skip
    click.echo(f"{written:,} rows written, {len(done) + written:,} of {len(prompts):,} in {out}")
