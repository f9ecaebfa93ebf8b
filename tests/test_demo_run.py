"""``grail-rl demo`` end to end, shortened: it builds and warms the tiny model in its own cache, trains,
evaluates the trained and the starting model on the synthetic eval split, and the real files when present."""

from __future__ import annotations

import json

import pytest

from tests.conftest import validation_data_dir
from tests.conftest_training import run_cli

VALIDATION_DIR = validation_data_dir()  # the real files, or None when they are not beside the repo


@pytest.mark.slow
def test_a_short_demo_prints_the_summary_with_the_starting_model(tmp_path):
    args = [
        "demo", "--quiet", "--cache", str(tmp_path / "cache"), "--real-rows", "8",
        "--set", f"output.dir={tmp_path / 'run'}", "--set", "data.synthetic.n=300",
        "--set", "trainer.max_steps=2", "--set", "data.max_eval_samples=16",
    ]  # fmt: skip
    if VALIDATION_DIR is not None:
        args += ["--real-validation", str(VALIDATION_DIR)]
    proc = run_cli(*args, cwd=tmp_path, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "run: " in out and "(step 2)" in out and "format-warmed before GRPO" in out
    assert "evaluation 'eval' (16 rows)" in out and "synthetic_ceiling" in out
    assert "before GRPO, the starting model on 'eval' (16 rows): accuracy " in out
    starting = json.loads((tmp_path / "run" / "evaluations" / "base" / "eval" / "eval-eval.json").read_text())
    assert starting["complete"] and starting["meta"]["model_label"] == "base"
    assert "Writing model shards" not in proc.stderr and "Loading weights" not in proc.stderr
    if VALIDATION_DIR is not None:
        for name in ("real-gun_study1", "real-wage_study2_study3"):
            assert f"evaluation '{name}' (8 rows)" in out
            report = json.loads((tmp_path / "run" / "eval" / f"eval-{name}.json").read_text())
            # The baseline is fitted on the synthetic TRAIN rows, never on the real rows it is compared on.
            assert "in-sample" not in report["baselines"]["most_frequent_position"]["note"]
    # The report reads the run as train and evaluate left it: the final and the starting model side by side,
    # with the reward curves from metrics.jsonl.
    shown = run_cli("report", str(tmp_path / "run"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-3000:]
    markdown = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "| run/final | eval | 16 |" in markdown and "| run/base | eval | 16 |" in markdown
    for figure in ("accuracy.png", "positions.png", "rewards.png"):
        assert (tmp_path / "run" / "report" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
