"""The drop report: every row left out of a split, counted by reason, with the first example of each.

Loading never stops on a bad row; it records it here. The report is printed by the CLI and saved as JSON
(``drop_report_<split>.json``) beside the run, so a researcher can see exactly what was lost and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grail_rl.data.schema import DROP_REASONS
from grail_rl.files import write_json_atomically


@dataclass
class DropExample:
    """Where the first row dropped for one reason came from, and what was wrong with it."""

    source: str
    row: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "row": self.row, "detail": self.detail}


@dataclass
class DropReport:
    """Counts of dropped rows per reason, one example each, and how many rows were read and kept."""

    split: str = ""
    read: int = 0
    kept: int = 0
    truncated: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, DropExample] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return sum(self.counts.values())

    def add(self, reason: str, source: str, row: int, detail: str) -> None:
        """Record one dropped row (``row`` is 1-based within ``source``)."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.examples.setdefault(reason, DropExample(source, row, detail[:300]))

    def merge(self, other: DropReport) -> None:
        self.read += other.read
        self.kept += other.kept
        self.truncated += other.truncated
        for reason, count in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + count
            if reason in other.examples:
                self.examples.setdefault(reason, other.examples[reason])

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "read": self.read,
            "kept": self.kept,
            "dropped": self.dropped,
            "truncated": self.truncated,
            "reasons": {
                reason: {
                    "count": count,
                    "meaning": DROP_REASONS.get(reason, reason),
                    "example": self.examples[reason].as_dict() if reason in self.examples else None,
                }
                for reason, count in sorted(self.counts.items(), key=lambda kv: -kv[1])
            },
        }

    def lines(self) -> list[str]:
        """A human summary: one headline, then one line per reason with its example."""
        label = f"{self.split}: " if self.split else ""
        head = f"{label}read {self.read} rows, kept {self.kept}, dropped {self.dropped}"
        valid = self.read - self.dropped
        if self.kept < valid:  # subsampled: a source's max_rows, data.max_eval_samples, a mixture's share
            head += f", {valid - self.kept} valid rows left out by sampling (max_rows, max_eval_samples or mixture)"
        elif self.kept > valid:
            head += f" (a weighted mixture repeats rows of a smaller source: {self.kept - valid} repeats)"
        if self.truncated:
            head += f", truncated {self.truncated} long prompts"
        out = [head]
        for reason, info in self.as_dict()["reasons"].items():
            ex = info["example"]
            where = f" (e.g. {ex['source']} row {ex['row']}: {ex['detail']})" if ex else ""
            out.append(f"  {info['count']:>7}  {reason}{where}")
        return out

    def write(self, directory: Path) -> Path:
        """Save the report as ``drop_report_<split>.json`` in ``directory``; returns the path."""
        path = directory / f"drop_report_{self.split or 'data'}.json"
        write_json_atomically(path, self.as_dict(), ensure_ascii=False)
        return path
