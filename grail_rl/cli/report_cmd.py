"""``grail-rl report RUN_OR_REPORT... [--out DIR] [--overwrite]``: evaluations as Markdown and PNG figures.

Reads what ``train`` and ``evaluate`` wrote (a run folder's reports through its
:class:`~grail_rl.run_layout.RunLayout`, an ``eval/`` folder, or ``eval-NAME.json`` files), several runs side by
side, and writes ``report.md`` and the figures (:mod:`grail_rl.evaluation.run_report`). For one run the default
output is ``RUN/report/``; for several inputs ``--out`` is required. An existing report is replaced only with
``--overwrite``. No torch.
"""

from __future__ import annotations

from pathlib import Path

import click

from grail_rl.errors import GrailError
from grail_rl.files import ensure_writable_folder
from grail_rl.run_layout import RunLayout


@click.command("report")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_OR_REPORT...")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.md and the figures here [default: RUN/report for one run folder].")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace a report an earlier run of this command wrote.")
def report(inputs: tuple[Path, ...], out: Path | None, overwrite: bool) -> None:
    """Markdown and PNG figures of the evaluations of one or several runs, or of report files."""
    from grail_rl.evaluation.run_report import collect, existing_outputs, write_report

    entries = collect(inputs)
    if out is None:
        if len(inputs) != 1 or not inputs[0].is_dir() or inputs[0].name == "eval":
            raise GrailError("several inputs (or a report file): give --out DIR for the report")
        out = RunLayout(inputs[0].expanduser()).report
    found = existing_outputs(out)
    if found and not overwrite:
        raise GrailError(f"{found[0]} already exists; pass --overwrite to replace it, or --out DIR")
    ensure_writable_folder(out, "--out")
    path, figures = write_report(entries, out)
    partial = sum(not e.complete for e in entries)
    click.echo(f"{len(entries)} evaluation(s)" + (f", {partial} PARTIAL (no accuracy given)" if partial else "") + f": {path}")
    for png in figures:
        click.echo(f"  {png}")
