"""``grail-rl train`` as a real subprocess: a full run on synthetic data, resume, and one-line refusals."""

from __future__ import annotations

import json

import pytest

from tests.conftest_training import run_cli, tiny_model, write_recipe  # noqa: F401  (fixture)


def test_missing_model_path_is_one_line_and_exit_2(tmp_path):
    path = write_recipe(tmp_path, tmp_path / "no-such-model")
    proc = run_cli("train", str(path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: model.name_or_path: {tmp_path / 'no-such-model'}: no such folder (and not a hub model id)"]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_train_on_synthetic_data_then_refuse_then_resume(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(tmp_path, tiny_model, output={"save_steps": 2})
    first = run_cli("train", str(path), "--max_steps", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "step 2/2" in first.stdout and "model accuracy" in first.stdout and "random" in first.stdout
    out = tmp_path / "out"
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    assert (out / "drop_report_train.json").is_file()

    again = run_cli("train", str(path), cwd=tmp_path)
    assert again.returncode == 2 and "already holds a run; pass --resume" in again.stderr

    extend = ["--resume", "--max_steps", "4", "--no-eval", "--quiet"]
    refused = run_cli("train", str(path), *extend, cwd=tmp_path)  # complete, and the recipe changed
    assert refused.returncode == 0 and "holds a complete run (step 2); --resume changed nothing" in refused.stderr
    resumed = run_cli("train", str(path), *extend, "--accept-recipe-changes", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["global_step"] == 4 and run["sessions"][1]["resumed_from"].endswith("checkpoint-2")
