"""``grail-rl report``: evaluations of runs and report files as Markdown and PNG figures, partial ones never
given a headline number, and one clear line for anything that is not an evaluation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grail_rl.evaluation.runner import evaluate_set
from tests.conftest_training import cli_env
from tests.test_eval_predictions import evaluate

PNG = b"\x89PNG\r\n\x1a\n"


def report(cwd: Path, *args) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grail_rl", "report", *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=240)  # fmt: skip


class HalfDone:
    description, chunk_size, calls = "a generator interrupted half-way", 4, 0

    def generate(self, prompts):
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt
        return ["<answer>1</answer>"] * len(prompts)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    """A recipe folder whose output has two complete baseline evaluations (one with a distribution) and a
    partial evaluation of a 'model' interrupted after 4 of 12 rows."""
    folder = tmp_path_factory.mktemp("report")
    proc = evaluate(folder, "--baseline", "always_last", "--baseline", "logreg_tfidf")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [{"prompt": f"viewer {i}", "gold_index": 1 + i % 3, "n_options": 3, "participant_study": "study1"}
            for i in range(12)]  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        evaluate_set(HalfDone(), rows, name="eval", out_dir=folder / "out/evaluations/halfway/eval",
                     meta={"model_label": "halfway"})  # fmt: skip
    return folder


def test_a_folder_of_evaluations_gives_markdown_and_figures(evaluated):
    proc = report(evaluated, "out", "--out", "rep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 PARTIAL (no accuracy given)" in proc.stdout
    markdown = (evaluated / "rep/report.md").read_text()
    assert "| baseline-logreg_tfidf | eval |" in markdown and "## Calibration" in markdown
    # The partial evaluation: labelled, no accuracy, and named as left out of the figures.
    assert "| halfway | eval | 12 | PARTIAL (4 of 12 rows) | | not reported | | |" in markdown
    assert "**1 of 3 evaluations are PARTIAL**" in markdown
    for figure in ("accuracy.png", "accuracy_by_study.png", "accuracy_by_gold_position.png", "positions.png",
                   "reliability.png"):  # fmt: skip
        data = (evaluated / "rep" / figure).read_bytes()
        assert data[:8] == PNG and len(data) > 5000
        assert f"({figure})" in markdown
    assert not (evaluated / "rep/rewards.png").exists()  # no training run here: no reward curves


def test_a_report_is_replaced_only_with_overwrite(evaluated):
    first = report(evaluated, "out", "--out", "again")
    assert first.returncode == 0
    second = report(evaluated, "out", "--out", "again")
    assert second.returncode == 2 and "already exists; pass --overwrite" in second.stderr
    single = evaluated / "out/evaluations/baseline-always_last/eval/eval-eval.json"
    third = report(evaluated, single, "--out", "again", "--overwrite")
    assert third.returncode == 0, third.stderr
    # The figures the new report does not draw (no distribution: no reliability diagram) are gone with it.
    assert not (evaluated / "again/reliability.png").exists() and (evaluated / "again/accuracy.png").exists()


def test_a_run_folder_reports_into_its_own_report_folder(tmp_path):
    proc = evaluate(tmp_path, "--baseline", "always_first")
    assert proc.returncode == 0, proc.stderr
    shown = report(tmp_path, "out")
    assert shown.returncode == 0, shown.stderr
    assert (tmp_path / "out/report/report.md").is_file()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "no such run folder or report"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "has no evaluation (no eval-*.json)"),
        (lambda p: (p / "eval-x.json").write_text("{]") and p / "eval-x.json", "not JSON"),
        (lambda p: (p / "eval-y.json").write_text('{"a": 1}') and p / "eval-y.json", "not a grail-rl evaluation report"),
        (lambda p: os.mkfifo(p / "eval-fifo.json") or p / "eval-fifo.json", "FIFO"),
    ],
)
def test_what_is_not_an_evaluation_is_one_line(tmp_path, make, message):
    proc = report(tmp_path, make(tmp_path), "--out", tmp_path / "rep")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "rep").exists()


def test_several_inputs_need_out(evaluated):
    proc = report(evaluated, "out", "out")
    assert proc.returncode == 2 and "give --out DIR" in proc.stderr


def test_a_users_own_files_in_out_are_not_replaced_without_overwrite(evaluated, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "accuracy.png").write_text("my own picture")
    proc = report(evaluated, "out", "--out", mine)
    assert proc.returncode == 2 and "accuracy.png already exists; pass --overwrite" in proc.stderr
    assert (mine / "accuracy.png").read_text() == "my own picture" and not (mine / "report.md").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["overall"]["accuracy"].update(value=float("nan")), "overall.accuracy.value: Input should be a finite"),
        (lambda d: d.update(complete="false"), "complete: Input should be a valid boolean"),
        (lambda d: d.update(evaluated_rows=d["expected_rows"] - 1), "says complete but covers"),
        (lambda d: d["calibration"].update(log_likelihood=None), "a calibration of rows needs"),
    ],
)
def test_a_damaged_report_is_one_line(evaluated, tmp_path, change, message):
    import json

    data = json.loads((evaluated / "out/evaluations/baseline-logreg_tfidf/eval/eval-eval.json").read_text())
    change(data)
    path = tmp_path / "eval-damaged.json"
    path.write_text(json.dumps(data))
    proc = report(tmp_path, path, "--out", tmp_path / "rep")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
