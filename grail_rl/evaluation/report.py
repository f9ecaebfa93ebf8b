"""An evaluation report that knows whether it is complete, and refuses to pass a partial run off as one.

The original project reported wage accuracy from partial evaluation runs whose row counts disagreed
(DOMAIN.md section 6). A report here records how many rows were expected and how many were evaluated;
:meth:`EvalReport.require_complete` raises unless they agree, and the summary of a partial report says
PARTIAL in its title. Reports are written as ``eval-NAME.json`` (or ``eval-NAME.partial.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.evaluation.baselines import baselines, rows_of
from grail_rl.evaluation.metrics import Prediction, breakdowns, summarise


class IncompleteEvaluationError(GrailError):
    """An evaluation covered fewer rows than its split holds."""


@dataclass
class EvalReport:
    name: str
    expected_rows: int
    predictions: list[Prediction]
    baselines: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.predictions) == self.expected_rows

    def require_complete(self) -> EvalReport:
        if not self.complete:
            raise IncompleteEvaluationError(
                f"evaluation '{self.name}' covered {len(self.predictions)} of {self.expected_rows} rows; "
                "a partial run is not reported as a result (rerun it to completion)"
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "complete": self.complete,
            "expected_rows": self.expected_rows,
            "evaluated_rows": len(self.predictions),
            "overall": summarise(self.predictions),
            "breakdowns": breakdowns(self.predictions),
            "baselines": self.baselines,
            "meta": self.meta,
        }

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path, preds = report_files(folder, self.name, complete=self.complete)
        tmp = folder / f".{path.name}.tmp"
        tmp.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        with preds.open("w", encoding="utf-8") as fh:
            for pred in self.predictions:
                fh.write(json.dumps(pred.as_dict()) + "\n")
        return path


def report_files(folder: Path, name: str, *, complete: bool) -> tuple[Path, Path]:
    """The report ``eval-NAME[.partial].json`` and its ``eval-NAME[.partial].predictions.jsonl``."""
    stem = f"eval-{name}" + ("" if complete else ".partial")
    return folder / f"{stem}.json", folder / f"{stem}.predictions.jsonl"


def build_report(
    name: str,
    predictions: list[Prediction],
    *,
    expected_rows: int,
    train_rows: list[tuple[int, int]] | None = None,
    synthetic_ceiling: float | None = None,
    meta: dict[str, Any] | None = None,
) -> EvalReport:
    base = baselines(rows_of(predictions), train_rows=train_rows, synthetic_ceiling=synthetic_ceiling)
    return EvalReport(name, expected_rows, predictions, base, dict(meta or {}))


def _pct(entry: dict[str, Any]) -> str:
    value = entry.get("value", 0.0)
    ci = entry.get("ci95")
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def summary_lines(report: EvalReport) -> list[str]:
    """A plain-text summary: model accuracy with its interval against every baseline."""
    data = report.as_dict()
    overall = data["overall"]
    state = "" if report.complete else f"  PARTIAL: {len(report.predictions)} of {report.expected_rows} rows"
    lines = [f"evaluation '{report.name}' ({overall['n']} rows){state}"]
    lines.append(f"  model accuracy         {_pct(overall['accuracy'])}")
    lines.append(f"  parsed rate            {_pct(overall['parsed_rate'])}")
    lines.append(f"  format rate            {_pct(overall['format_rate'])}")
    for key, entry in data["baselines"].items():
        lines.append(f"  {key:<22} {_pct(entry)}  ({entry.get('note', '')})")
    by_issue = data["breakdowns"]["issue"]
    if len(by_issue) > 1:
        for issue, entry in by_issue.items():
            lines.append(f"  issue {issue:<16} {_pct(entry['accuracy'])}  (n={entry['n']})")
    return lines
