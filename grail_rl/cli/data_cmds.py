"""``grail-rl data ...``: audit a dataset for leaks, import rendered-prompt files, generate synthetic viewers.

These commands import neither torch nor transformers, and ``datasets`` only to read a saved folder or a
hub id, so they start quickly.
"""

from __future__ import annotations

from pathlib import Path

import click

from grail_rl.cli.output import echo_json, json_option
from grail_rl.data.drops import DropReport
from grail_rl.errors import GrailError
from grail_rl.files import ensure_writable_folder, refuse_existing_output

_FORMATS = click.Choice(["auto", "jsonl", "parquet", "csv", "arrow", "rendered"])


def _echo_lines(lines: list[str], *, err: bool = False) -> None:
    for line in lines:
        color = "red" if line.startswith("LEAK") else "yellow" if line.startswith("SKEW") else None
        click.secho(line, fg=color, bold=line.startswith("LEAK"), err=err)


@click.group("data")
def data() -> None:
    """Inspect, import and generate viewer data."""


@data.command("audit")
@click.argument("data_path", metavar="DATA", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=_FORMATS, default="auto", show_default=True, help="How to read DATA.")
@click.option("--split", default=None, help="Split of a saved DatasetDict folder.")
@json_option("Print the audit and the drop report as JSON.")
@click.option("--fail-on-leak", is_flag=True, help="Exit with status 1 when a leak is found.")
def audit(data_path: Path, fmt: str, split: str | None, as_json: bool, fail_on_leak: bool) -> None:
    """Check DATA for answer leaks: gold position against uniform per slate size, metadata asymmetry
    between the gold and the other options, and the accuracy of trivial rules against random choice."""
    from grail_rl.data.audit import audit_rows
    from grail_rl.data.dataset import PathSource, read_source
    from grail_rl.data.sources import detect_format

    drops = DropReport(split="audit")
    source = PathSource(data_path, detect_format(data_path, fmt), split)
    rows = read_source(source, "audit", 0, drops)
    drops.kept = len(rows)
    report = audit_rows(rows.take(list(range(len(rows)))))
    if not report.rows:  # 0 % rates and "ok" would read as a clean audit
        if not as_json:
            _echo_lines(drops.lines(), err=True)
        raise GrailError(f"{data_path}: no valid rows to audit (read {drops.read}, dropped {drops.dropped}); "
                         "the drop reasons say why")  # fmt: skip
    if as_json:
        echo_json({"data": str(data_path), **report.as_dict(), "drops": drops.as_dict()})
    else:
        _echo_lines(drops.lines(), err=True)
        _echo_lines(report.lines())
    if fail_on_leak and any(level == "LEAK" for level, _ in report.findings()):
        click.get_current_context().exit(1)


@data.command("import-rendered")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Where to write the rows (JSONL). Default: ./<FILE stem>.rows.jsonl",
)  # fmt: skip
@click.option("--no-check", is_flag=True, help="Skip re-rendering the rows to compare with the original prompts.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file (never FILE itself).")
@json_option("Print the summary as JSON.")
def import_rendered_cmd(file: Path, out: Path | None, no_check: bool, overwrite: bool, as_json: bool) -> None:
    """Turn a rendered-prompt JSONL FILE (messages + gold_index ...) back into rows of the row schema,
    and report how many re-render to exactly the original user prompt with the default sections."""
    from grail_rl.data.rendered import import_rendered
    from grail_rl.data.sources import detect_format

    detect_format(file, "jsonl")  # a FIFO or a device is refused before anything is written
    out = out or Path.cwd() / f"{file.stem}.rows.jsonl"
    refuse_existing_output(out, "--out", overwrite=overwrite, inputs=(file,))
    ensure_writable_folder(out.parent, "--out")
    summary = import_rendered(file, out, check=not no_check)
    if as_json:
        echo_json(summary.as_dict(), ensure_ascii=False)
        return
    _echo_lines(summary.report.lines(), err=True)
    click.echo(f"wrote {summary.rows} rows to {out}")
    if summary.checked:
        click.echo(
            f"re-rendered with the default sections: {summary.matched}/{summary.checked} identical "
            f"({summary.match_rate:.2%})"
        )
        for miss in summary.mismatches[:5]:
            click.echo(f"  row {miss['row']} differs at char {miss['char']}: {miss['original']!r} vs {miss['rendered']!r}")


@data.command("synth")
@click.option("--n", "n", type=click.IntRange(min=10), default=2000, show_default=True, help="Rows to generate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Generator seed (same seed, same rows).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace a set an earlier run wrote into --out.")
@json_option("Print the summary as JSON.")
def synth(n: int, seed: int, out: Path, overwrite: bool, as_json: bool) -> None:
    """Generate synthetic viewers: train.jsonl, validation.jsonl and summary.json (with the accuracy of
    the ideal predictor, the choice model's own best guess, on the validation split)."""
    from grail_rl.data.synth import SET_FILES, generate

    if out.exists() and not out.is_dir():
        raise GrailError(f"--out: {out} is a file; give a folder")
    for name in SET_FILES:
        refuse_existing_output(out / name, "--out", overwrite=overwrite)
    ensure_writable_folder(out, "--out")
    summary = generate(n, seed, out)
    if as_json:
        echo_json(summary.as_dict())
        return
    click.echo(f"wrote {summary.train_rows} train and {summary.validation_rows} validation rows to {out}")
    click.echo(
        f"ideal predictor accuracy on validation: {summary.ideal_accuracy:.1%} "
        f"(random {summary.random_accuracy:.1%})"
    )
