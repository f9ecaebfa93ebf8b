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
@click.option("--dataset-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also save every row, with the split's columns, as a `datasets` folder once all rows are done.")  # fmt: skip
@click.option("--split", type=click.Choice(["train", "eval"]), default=None, help="The recipe's split  [default: train]")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None,
              help="Generate over this data file instead (any source format; the recipe's schema and prompt sections).")  # fmt: skip
@click.option("--template", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A text file with {{ field }} placeholders filled from each row [default: the recipe's prompt].")  # fmt: skip
@click.option("--n", "n", type=click.IntRange(1, 64), default=1, show_default=True, help="Generations per row.")
@click.option("--temperature", type=click.FloatRange(0.0, 2.0), default=0.0, show_default=True)
@click.option("--max-tokens", type=click.IntRange(1, 1_000_000), default=256, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True, help="Requests in flight at once.")
@click.option("--timeout", type=click.FloatRange(1.0, 3600.0), default=120.0, show_default=True,
              help="Seconds per request before it is retried.")  # fmt: skip
@click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True,
              help="Retries per request (refused connections, timeouts, 429, 5xx), with backoff.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows.")
@click.pass_context
def generate(ctx: click.Context, recipe: str, sets: tuple[str, ...], endpoint: str, served_model: str, out: Path,
             dataset_dir: Path | None, split: str | None, data: Path | None, template: Path | None, n: int, temperature: float, max_tokens: int,
             concurrency: int, timeout: float, retries: int, limit: int | None) -> None:  # fmt: skip
    """Generate from a served model over RECIPE's rows into a JSONL, resumably."""
    from grail_rl.evaluation.predictions import full_prompt_hash
    from grail_rl.serving.client import Endpoint, ServedModel, check_url
    from grail_rl.serving.generate import (
        GenerationSettings,
        GenerationStopped,
        lock_output,
        read_done,
    )
    from grail_rl.serving.rows import generation_rows

    endpoint = check_url(endpoint, "--endpoint")
    if ctx.args:  # trainer options shape training and evaluation, never what generate sends
        raise GrailError(f"generate takes no trainer options ({ctx.args[0]}); its own are --max-tokens, --temperature, "
                         "--n and --set for the recipe's data and prompt")  # fmt: skip
    check_output_places(out, dataset_dir)
    if data is not None and split is not None:
        raise GrailError("--data and --split exclude each other: --data generates over every row of the file")
    rows = generation_rows(recipe, split=split or "train", data=data, template=template, limit=limit, sets=sets)
    dataset, prompts = rows.dataset, rows.prompts
    hashes = [full_prompt_hash(p) for p in prompts]
    settings = GenerationSettings(model=served_model, n=n, temperature=temperature, max_tokens=max_tokens)

    existed = out.exists()
    if not existed:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GrailError(f"--out {out}: cannot make its folder: {exc.strerror or exc}") from None
    handle = lock_output(out)
    try:
        done = read_done(out, hashes, settings)
        todo = [i for i in range(len(prompts)) if i not in done]
        if done:
            click.echo(f"resuming: {len(done):,} of {len(prompts):,} rows are already in {out}", err=True)
        if todo:
            served = ServedModel(Endpoint(endpoint, served_model, timeout=timeout, max_retries=retries,
                                          concurrency=concurrency))  # fmt: skip
            try:
                served.check()
            except BaseException:
                if not existed and out.stat().st_size == 0:
                    out.unlink()  # ours, and empty: leave no trace of a run that never started
                raise
            tally = _run_with_progress(served, prompts, hashes, todo, handle, settings, done=len(done))
            total = len(done) + tally.written
            click.echo(f"{tally.written:,} rows written, {total:,} of {len(prompts):,} in {out}")
            if tally.failed:
                first_row, first_error = min(tally.failed.items())
                why = f"stopped early: {tally.stopped}" if tally.stopped else f"row {first_row}: {first_error}"
                raise GenerationStopped(f"{len(prompts) - total:,} rows are missing from {out} ({why}); the rows "
                                        "written are kept: rerun the same command to resume")  # fmt: skip
        else:
            click.echo(f"nothing to generate: all {len(prompts):,} rows are in {out}")
    finally:
        handle.close()
    if dataset_dir is not None:
        from grail_rl.serving.generate import save_dataset

        save_dataset(out, dataset, prompts if rows.templated else None, dataset_dir)
        click.echo(f"saved {len(prompts):,} rows as a datasets folder: {dataset_dir}")


def check_output_places(out: Path, dataset_dir: Path | None) -> None:
    """Before any request: --out can be written where it is, and --dataset-dir is a new folder that cannot
    collide with --out (else one line; nothing is written)."""
    from grail_rl.files import check_readable_path

    if out.exists() or out.is_symlink():
        check_readable_path(out, "--out")
    for parent in (out.parent, *(out.parent.parents)):
        if parent.exists():
            if not parent.is_dir():
                raise GrailError(f"--out {out}: {parent} is a file, not a folder")
            break
    if dataset_dir is None:
        return
    if dataset_dir.exists() or dataset_dir.is_symlink():
        raise GrailError(f"--dataset-dir {dataset_dir} exists; nothing is replaced: choose a new folder")
    target, written = dataset_dir.resolve(), out.resolve()
    if target == written or target in written.parents:
        raise GrailError(f"--dataset-dir {dataset_dir} would hold --out {out}: choose a folder apart from it")
    for parent in dataset_dir.resolve().parents:
        if parent.exists():
            if not parent.is_dir():
                raise GrailError(f"--dataset-dir {dataset_dir}: {parent} is a file, not a folder")
            break


def _run_with_progress(served, prompts, hashes, todo, handle, settings, *, done: int):  # type: ignore[no-untyped-def]
    """The rows generated under a rich progress bar with rows/s, failed rows and failed attempts (retried)."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from grail_rl.serving.generate import generate_rows

    columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[rate]}"), TextColumn("errors {task.fields[errors]}"),
               TextColumn("retried {task.fields[retried]}"))  # fmt: skip
    with Progress(*columns, transient=False, console=None) as progress:
        task = progress.add_task("rows", total=len(prompts), completed=done, rate="", errors=0, retried=0)
        errors = 0

        def on_row(ok: bool) -> None:
            nonlocal errors
            errors += not ok
            state = progress.tasks[0]
            elapsed = state.elapsed or 0.0
            finished = state.completed + ok - done
            progress.update(task, advance=int(ok), errors=errors, retried=served.stats.failed_attempts,
                            rate=f"{finished / elapsed:.1f} rows/s" if elapsed else "")  # fmt: skip

        return asyncio.run(generate_rows(served, prompts, hashes, todo, handle, settings, on_row=on_row))
