"""Where everything of a run lives: one object that owns the layout of a run folder (``output.dir``).

``train`` writes the run, ``evaluate`` adds evaluations to it and ``report`` reads it back; all three ask a
:class:`RunLayout` for paths instead of joining names of their own, so a report finds exactly what the other
commands wrote::

    OUTPUT/
      run.json  recipe.resolved.json  train.log  metrics.jsonl
      checkpoint-N/ ...              the trainer's checkpoints
      final/                         the trained model
      eval/eval-NAME[.partial].json  the final model's evaluation (train, or evaluate on final/)
      evaluations/LABEL/eval/...     any other model's evaluation (a checkpoint, the base model, stored outputs)
      report/report.md  *.png        grail-rl report's Markdown and figures

No torch here: the listing and report commands stay fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUN_FILE = "run.json"
RECIPE_FILE = "recipe.resolved.json"
LOG_FILE = "train.log"
METRICS_FILE = "metrics.jsonl"
FINAL_DIR = "final"
EVAL_DIR = "eval"
EVALUATIONS_DIR = "evaluations"
REPORT_DIR = "report"  # grail-rl report's default output for one run
REPORT_GLOB = "eval-*.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder; nothing is created or read by building one."""

    root: Path

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    @property
    def recipe_file(self) -> Path:
        return self.root / RECIPE_FILE

    @property
    def log_file(self) -> Path:
        return self.root / LOG_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def final(self) -> Path:
        return self.root / FINAL_DIR

    @property
    def eval_dir(self) -> Path:
        """The reports of the run's own final model."""
        return self.root / EVAL_DIR

    @property
    def evaluations(self) -> Path:
        return self.root / EVALUATIONS_DIR

    @property
    def report(self) -> Path:
        return self.root / REPORT_DIR

    def evaluation_root(self, label: str) -> Path:
        """Where the evaluation of another model (``label``: a checkpoint's name, ``base``, ...) puts its
        ``eval/`` folder."""
        return self.evaluations / label

    def checkpoints(self) -> list[Path]:
        """The ``checkpoint-N`` folders, oldest first (complete or not: see training.checkpoints)."""
        if not self.root.is_dir():
            return []
        found = [
            (int(match.group(1)), child)
            for child in self.root.iterdir()
            if (match := _CHECKPOINT.match(child.name)) and child.is_dir()
        ]
        return [path for _, path in sorted(found)]

    def report_dirs(self) -> list[Path]:
        """Every ``eval/`` folder of the run that exists: the final model's first, then the others by label."""
        dirs = [self.eval_dir] if self.eval_dir.is_dir() else []
        if self.evaluations.is_dir():
            dirs += sorted(path / EVAL_DIR for path in self.evaluations.iterdir() if (path / EVAL_DIR).is_dir())
        return dirs

    def reports(self) -> list[Path]:
        """Every evaluation report (``eval-NAME[.partial].json``) in the run, in :meth:`report_dirs` order."""
        return [path for folder in self.report_dirs() for path in sorted(folder.glob(REPORT_GLOB))]
