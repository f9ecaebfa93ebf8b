"""``grail-rl report``: the evaluations of one or several runs (or report files) as Markdown and PNG figures.

Inputs are run folders (every report a :class:`~grail_rl.run_layout.RunLayout` finds: the final model's,
each checkpoint's, the base model's, each baseline's), ``eval/`` folders, or ``eval-NAME.json`` files. Each
report becomes one entry labelled by its run and model (``demo/final``, ``demo/baseline-knn_tfidf``).

A **partial** evaluation is never given a headline number: its table rows say ``PARTIAL (k of N rows)`` in
place of the accuracy, it is left out of every figure, and each figure says which partial evaluations it
left out. The figures are drawn by :mod:`grail_rl.evaluation.report_figures` (matplotlib, no display).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, model_validator

from grail_rl.errors import GrailError
from grail_rl.files import check_readable_path, write_text_atomically
from grail_rl.run_layout import EVAL_DIR, FINAL_DIR, REPORT_GLOB, RunLayout
from grail_rl.training.run_folder import read_run

MAX_REPORT_BYTES = 64 * 1024 * 1024
REPORT_FILE = "report.md"


@dataclass(frozen=True)
class Entry:
    """One evaluation report and where it came from."""

    label: str  # run/model, e.g. demo/final
    path: Path
    data: dict[str, Any]
    run: Path | None  # the run folder, for its reward curves

    @property
    def complete(self) -> bool:
        return bool(self.data.get("complete"))

    @property
    def set_name(self) -> str:
        return str(self.data.get("name"))

    @property
    def accuracy(self) -> dict[str, Any]:
        return self.data["overall"]["accuracy"]

    def partial_note(self) -> str:
        return f"PARTIAL ({self.data.get('evaluated_rows')} of {self.data.get('expected_rows')} rows)"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, strict=True)


Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Rate(_Open):
    n: NonNegativeInt
    value: Share
    ci95: Annotated[list[Share], Field(min_length=2, max_length=2)]


class _Overall(_Open):
    n: NonNegativeInt
    accuracy: _Rate


class _Part(_Open):
    n: NonNegativeInt
    accuracy: _Rate


class _Best(_Open):
    name: str
    value: Share


class _Degenerate(_Open):
    share: Share


class _Bin(_Open):
    rows: NonNegativeInt
    confidence: Share
    accuracy: Share


class _Calibration(_Open):
    n: NonNegativeInt
    log_likelihood: float | None = None
    uniform_log_likelihood: float | None = None
    brier: float | None = None
    ece: float | None = None
    reliability: list[_Bin] = []

    @model_validator(mode="after")
    def _numbers_with_rows(self) -> _Calibration:
        if self.n and None in (self.log_likelihood, self.uniform_log_likelihood, self.brier, self.ece):
            raise ValueError("a calibration of rows needs log_likelihood, uniform_log_likelihood, brier and ece")
        return self


class _Size(_Open):
    rows: NonNegativeInt
    human: list[Share]
    model: list[Share] | None = None
    jsd: float | None = None


class _Positions(_Open):
    overall: dict[str, Any] = {}
    by_slate_size: dict[str, _Size] = {}


class _Fidelity(_Open):
    positions: _Positions = _Positions()
    turing_auc: dict[str, Any] | None = None


class _Report(_Open):
    """The parts of an evaluation report that ``report`` reads, with the types and ranges it relies on."""

    name: str
    complete: bool
    expected_rows: NonNegativeInt
    evaluated_rows: NonNegativeInt
    overall: _Overall
    meta: dict[str, Any]
    breakdowns: dict[str, dict[str, _Part]]
    best_baseline: _Best | None = None
    degenerate: _Degenerate | None = None
    calibration: _Calibration = _Calibration(n=0)
    fidelity: _Fidelity = _Fidelity()


def read_report(path: Path) -> dict[str, Any]:
    """A grail-rl evaluation report, or one line saying why ``path`` is not one."""
    check_readable_path(path, "report")
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise GrailError(f"{path}: larger than {MAX_REPORT_BYTES // 2**20} MiB; not an evaluation report")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise GrailError(f"{path}: not JSON; give a run folder or an eval-NAME.json report") from None
    if not isinstance(data, dict) or not {"name", "complete", "overall", "meta"} <= data.keys():
        raise GrailError(f"{path}: not a grail-rl evaluation report (no name, complete, overall and meta)")
    try:
        checked = _Report.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise GrailError(f"{path}: not a valid grail-rl evaluation report: {where}: {first['msg']}") from None
    if checked.complete and checked.evaluated_rows != checked.expected_rows:
        raise GrailError(
            f"{path}: says complete but covers {checked.evaluated_rows} of {checked.expected_rows} rows; "
            "not a valid grail-rl evaluation report"
        )
    for size, part in checked.fidelity.positions.by_slate_size.items():
        if not size.isdigit() or len(part.human) != int(size) or (part.model is not None and len(part.model) != int(size)):
            raise GrailError(f"{path}: not a valid grail-rl evaluation report: the position distributions of slate size {size!r}")
    for position in checked.breakdowns.get("gold_position", {}):
        if not position.isdigit():
            raise GrailError(f"{path}: not a valid grail-rl evaluation report: gold position {position!r}")
    return data


def _label(path: Path, data: dict[str, Any], run: Path | None) -> str:
    own_eval = run is not None and path.parent == RunLayout(run).eval_dir  # reports of train's final evaluation
    model = data.get("meta", {}).get("model_label") or (FINAL_DIR if own_eval else path.parent.parent.name)
    return f"{run.name}/{model}" if run is not None else str(model)


def _run_of(report: Path) -> Path | None:
    """The run folder a report in ``RUN/eval`` or ``RUN/evaluations/LABEL/eval`` belongs to, if any."""
    eval_dir = report.parent
    for candidate in (eval_dir.parent, eval_dir.parent.parent.parent):
        if read_run(candidate) is not None:
            return candidate
    return None


def collect(inputs: Sequence[Path]) -> list[Entry]:
    """Every report the inputs name, in order; an input without any report is one clear error."""
    entries: list[Entry] = []
    for given in inputs:
        path = given.expanduser()
        if not path.exists():
            raise GrailError(f"{path}: no such run folder or report")
        if not path.is_dir():  # a report file (a FIFO or a device is refused when it is read)
            files = [path]
        elif path.name == EVAL_DIR or not RunLayout(path).report_dirs():
            files = sorted(path.glob(REPORT_GLOB))
        else:
            files = RunLayout(path).reports()
        if not files:
            what = "run" if read_run(path) is not None else "folder"
            raise GrailError(
                f"{path}: this {what} has no evaluation (no eval-*.json); run grail-rl train with evaluation, or "
                "grail-rl evaluate RECIPE, first"
            )
        for file in files:
            if any(e.path.resolve() == file.resolve() for e in entries):
                continue  # named twice (a folder and a file in it): one entry
            data = read_report(file)
            run = _run_of(file)
            entries.append(Entry(_label(file, data, run), file, data, run))
    labels = [(e.label, e.set_name) for e in entries]
    if len(set(labels)) != len(labels):  # two runs with the same folder name: tell them apart by path
        entries = [Entry(f"{e.label} ({e.path.parent})", e.path, e.data, e.run) for e in entries]
    return entries


def _pct(entry: dict[str, Any]) -> str:
    lo, hi = entry.get("ci95", (0.0, 1.0))
    return f"{entry['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def accuracy_cell(entry: Entry) -> str:
    return entry.partial_note() if not entry.complete else _pct(entry.accuracy)


def markdown(entries: Sequence[Entry], figures: Sequence[tuple[str, str]]) -> str:
    """The report: accuracy per model, baseline and set; breakdowns by study; fidelity; calibration; figures."""
    lines = ["# grail-rl evaluation report", ""]
    partial = [e for e in entries if not e.complete]
    if partial:
        lines += [
            f"**{len(partial)} of {len(entries)} evaluations are PARTIAL** (interrupted, or stored outputs that cover "
            "only some rows): they have no accuracy here and are left out of every figure. Rerun them to "
            "completion (`grail-rl evaluate` resumes).",
            "",
        ]
    lines += ["## Accuracy", "", "95 % Wilson intervals. `best trivial rule`: the strongest of random, most-frequent "
              "position, always first and always last on the same rows; skill means the interval lies above it.", ""]  # fmt: skip
    lines += ["| model | set | N | accuracy | best trivial rule | verdict | JSD to viewers | Turing AUC |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for e in entries:
        lines.append(_accuracy_row(e))
    studies = [(e, study, part) for e in entries if e.complete for study, part in e.data["breakdowns"]["study"].items()]
    if len({study for _, study, _ in studies}) > 1 or len(entries) > 1:
        lines += ["", "## By study", "", "| model | set | study | N | accuracy |", "|---|---|---|---|---|"]
        lines += [f"| {e.label} | {e.set_name} | {study} | {part['n']} | {_pct(part['accuracy'])} |" for e, study, part in studies]
    calibrated = [e for e in entries if e.complete and e.data.get("calibration", {}).get("n")]
    if calibrated:
        lines += ["", "## Calibration", "", "Where the model (choice-logprob) or the baseline gives a distribution.", "",
                  "| model | set | N | log-likelihood (uniform) | Brier | ECE |", "|---|---|---|---|---|---|"]  # fmt: skip
        for e in calibrated:
            cal = e.data["calibration"]
            lines.append(f"| {e.label} | {e.set_name} | {cal['n']} | {cal['log_likelihood']:.3f} "
                         f"({cal['uniform_log_likelihood']:.3f}) | {cal['brier']:.3f} | {cal['ece']:.3f} |")  # fmt: skip
    lines += ["", "## Figures", ""]
    for name, caption in figures:
        lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    lines += ["## Sources", ""] + [f"- {e.label} / {e.set_name}: `{e.path}`" for e in entries]
    return "\n".join(lines) + "\n"


def _accuracy_row(e: Entry) -> str:
    if not e.complete:
        return f"| {e.label} | {e.set_name} | {e.data.get('expected_rows')} | {e.partial_note()} | | not reported | | |"
    best = e.data.get("best_baseline")
    accuracy = e.accuracy
    verdict = ""
    if best:
        verdict = "beats it" if accuracy["ci95"][0] > best["value"] else "does not beat it"
    if e.data.get("degenerate"):  # a constant answer is a rule, whatever it scores
        verdict = "DEGENERATE: one answer on {:.0%} of rows, a rule, not skill".format(e.data["degenerate"]["share"])
    fidelity = e.data.get("fidelity", {})
    jsd = fidelity.get("positions", {}).get("overall", {}).get("jsd")
    turing = fidelity.get("turing_auc", {}) or {}
    best_cell = f"{best['name']} {best['value']:.3f}" if best else ""
    jsd_cell = "" if jsd is None else f"{jsd:.3f}"
    turing_cell = "" if "value" not in turing else "{:.3f}".format(turing["value"])
    return (f"| {e.label} | {e.set_name} | {accuracy['n']} | {_pct(accuracy)} | {best_cell} | {verdict} | "
            f"{jsd_cell} | {turing_cell} |")  # fmt: skip


def existing_outputs(out: Path) -> list[Path]:
    """The files of an earlier report in ``out`` (``report.md`` and the figures' names): replaced only with
    ``--overwrite``, a user's own file of the same name included."""
    from grail_rl.evaluation.report_figures import FIGURES

    return [out / name for name in (REPORT_FILE, *FIGURES) if (out / name).exists() or (out / name).is_symlink()]


def write_report(entries: Sequence[Entry], out: Path) -> tuple[Path, list[Path]]:
    """Draw the figures and write ``report.md`` into ``out``: everything is built in a staging folder first and
    moved into place only when all of it is ready, so a failure leaves the earlier report as it was. The earlier
    report's figures this one does not draw go with it. Returns the Markdown and the figures."""
    import shutil
    import tempfile

    from grail_rl.evaluation.report_figures import FIGURES, draw_all

    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".grail-report-", dir=out))
    try:
        figures = draw_all(entries, staging)
        write_text_atomically(staging / REPORT_FILE, markdown(entries, figures))
        drawn = {name for name, _ in figures}
        for name in (*drawn, REPORT_FILE):
            os.replace(staging / name, out / name)
        for name in FIGURES:  # only now: an earlier report's figure this one did not draw would contradict it
            if name not in drawn:
                (out / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / REPORT_FILE, [out / name for name, _ in figures]
