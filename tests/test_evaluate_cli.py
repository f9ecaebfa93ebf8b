"""``grail-rl evaluate`` as a real subprocess on a real tiny model: the final model, a checkpoint, the base
model, LoRA adapters, other data files, refusing to replace reports, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest_training import cli_env, lock_held_elsewhere, run_cli, tiny_model, write_recipe  # noqa: F401  (fixture)

RAW_ROW = {
    "issue": "gun_control",
    "slate_items": [{"id": "a", "title": "First video"}, {"id": "b", "title": "Second video"}],
    "gold_index": 2,
}
RENDERED_ROW = {
    "messages": [
        {"role": "system", "content": "Answer with <answer>N</answer>."},
        {"role": "user", "content": "VIEWER someone.\n\nOPTIONS\n1. first\n2. second\n3. third"},
    ],
    "gold_index": 3,
    "n_options": 3,
    "issue": "minimum_wage",
}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def report(folder: Path, name: str = "eval") -> dict:
    return json.loads((folder / "eval" / f"eval-{name}.json").read_text(encoding="utf-8"))


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:  # noqa: F811
    """A 2-step run on synthetic data with checkpoint-1 and checkpoint-2, not evaluated; its recipe."""
    folder = tmp_path_factory.mktemp("evaluate")
    recipe = write_recipe(folder, tiny_model, output={"save_steps": 1})
    proc = run_cli("train", str(recipe), "--max_steps", "2", "--no-eval", "--quiet", cwd=folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return recipe


@pytest.mark.slow
def test_final_model_reports_beside_the_run_and_is_replaced_only_with_overwrite(trained):
    out = trained.parent / "out"
    first = run_cli("evaluate", str(trained), cwd=trained.parent)
    assert first.returncode == 0, first.stderr[-3000:]
    for expected in ("model accuracy", "random", "most_frequent_position", "synthetic_ceiling"):
        assert expected in first.stdout
    assert f"report: {out / 'eval' / 'eval-eval.json'}" in first.stdout
    written = report(out)
    assert written["complete"] and written["meta"]["model"] == str((out / "final").resolve())
    # Fitted on the train rows, not in-sample on the evaluated ones.
    assert "in-sample" not in written["baselines"]["most_frequent_position"]["note"]

    again = run_cli("evaluate", str(trained), cwd=trained.parent)
    assert "already exists; pass --overwrite" in one_error_line(again)
    replaced = run_cli("evaluate", str(trained), "--overwrite", cwd=trained.parent)
    assert replaced.returncode == 0, replaced.stderr[-3000:]


@pytest.mark.slow
def test_base_model_and_a_checkpoint_report_under_evaluations(trained, tiny_model):  # noqa: F811
    out = trained.parent / "out"
    base = run_cli("evaluate", str(trained), "--base", cwd=trained.parent)
    assert base.returncode == 0, base.stderr[-3000:]
    meta = report(out / "evaluations" / "base")["meta"]
    assert meta["model"] == str(tiny_model.resolve()) and meta["model_label"] == "base"

    checkpoint = run_cli("evaluate", str(trained), "--model", "out/checkpoint-1", cwd=trained.parent)
    assert checkpoint.returncode == 0, checkpoint.stderr[-3000:]
    assert report(out / "evaluations" / "checkpoint-1")["meta"]["model"] == str(
        (out / "checkpoint-1").resolve()
    )


@pytest.mark.slow
def test_data_files_are_evaluated_as_named_sets(trained, tmp_path):
    rows = write_jsonl(tmp_path / "rows.jsonl", [RAW_ROW] * 3)
    rendered = write_jsonl(tmp_path / "rendered_val.jsonl", [RENDERED_ROW])
    args = ("--data", str(rows), "--data", str(rendered), "--max-samples", "2", "--out", str(tmp_path / "ev"))
    proc = run_cli("evaluate", str(trained), *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "evaluation 'rows' (2 rows)" in proc.stdout and "evaluation 'rendered_val' (1 rows)" in proc.stdout
    assert report(tmp_path / "ev", "rows")["meta"]["data"] == str(rows)
    # The synthetic ceiling belongs to the synthetic eval split only.
    assert "synthetic_ceiling" not in report(tmp_path / "ev", "rendered_val")["baselines"]


@pytest.mark.slow
def test_a_lora_run_is_evaluated_with_its_adapter(tmp_path, tiny_model):  # noqa: F811
    recipe = write_recipe(
        tmp_path, tiny_model, model={"name_or_path": str(tiny_model), "dtype": "float32", "lora": {"r": 4}}
    )
    trainer = run_cli("train", str(recipe), "--max_steps", "1", "--no-eval", "--quiet", cwd=tmp_path)
    assert trainer.returncode == 0, trainer.stderr[-3000:]
    assert (tmp_path / "out" / "final" / "adapter_config.json").is_file()
    proc = run_cli("evaluate", str(recipe), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report(tmp_path / "out")["complete"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "does not exist: train first"),
        (("--model", "nowhere"), "--model: nowhere: no such folder"),
        (("--model", "recipe.yaml"), "is a file; give the model's folder"),
        (("--model", "out", "--base"), "--model and --base exclude each other"),
        (("--base", "--data", "missing.jsonl"), "--data missing.jsonl: no such file"),
        (("--base", "--data", "recipe.yaml"), "cannot tell the format"),
        (("--base", "--set", "trainer.nope=1"), "trainer.nope"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, tiny_model, args, message):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model)
    assert message in one_error_line(run_cli("evaluate", str(recipe), *args, cwd=tmp_path))


@pytest.mark.slow
def test_a_data_file_without_usable_rows_is_one_error_line(tmp_path, tiny_model):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model)
    empty = write_jsonl(tmp_path / "empty_slates.jsonl", [{**RAW_ROW, "slate_items": []}])
    proc = run_cli("evaluate", str(recipe), "--base", "--data", str(empty), cwd=tmp_path)
    assert "no usable rows" in one_error_line(proc) and "empty_slate" in proc.stderr


def test_refusals_import_no_torch(tmp_path, tiny_model):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model)
    probe = (
        "import sys\nfrom grail_rl.cli.main import main\n"
        "try:\n    main()\nfinally:\n    print('torch' in sys.modules, file=sys.stderr)\n"
    )
    args = ["evaluate", str(recipe), "--base", "--data", "missing.jsonl"]
    proc = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=tmp_path, env=cli_env(), capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1] == "False", proc.stderr


@pytest.mark.slow
def test_evaluate_killed_mid_run_resumes_and_counts_every_row_once(trained, tmp_path):
    """kill -9 while rows are being written; the rerun scores only the missing rows."""
    import os
    import signal
    import time

    from tests.conftest_training import cli_env

    out = tmp_path / "killed"
    args = ["evaluate", str(trained), "--base", "--out", str(out), "--max-samples", "60",
            "--set", "trainer.per_device_eval_batch_size=1", "--set", "trainer.max_completion_length=96"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "grail_rl", *args], cwd=trained.parent, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 180
    logged = 0
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list((out / "eval").glob("eval-eval.progress-*.jsonl"))
        logged = len(logs[0].read_text().splitlines()) - 1 if logs else 0
        if logged >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the evaluation ended before it was killed: {proc.stderr.read()[-2000:]}"
    assert not (out / "eval" / "eval-eval.json").exists()

    again = run_cli(*args, cwd=trained.parent)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming 'eval'" in again.stderr
    written = report(out)
    assert written["complete"] and written["meta"]["resumed_rows"] >= 3
    lines = (out / "eval" / "eval-eval.predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["row_id"] for line in lines) == list(range(written["expected_rows"]))
    assert not list((out / "eval").glob("*.progress-*")) and not list((out / "eval").glob("*.partial.*"))


def test_evaluating_into_the_run_folder_waits_for_no_train_on_it(tmp_path, tiny_model):  # noqa: F811
    """The run's own eval/ is written by `train` under the run's lock: evaluate takes the same lock."""
    recipe = write_recipe(tmp_path, tiny_model)
    out = tmp_path / "out"
    out.mkdir()
    with lock_held_elsewhere(out):
        proc = run_cli("evaluate", str(recipe), "--base", "--out", str(out), cwd=tmp_path)
        assert "is in use by another grail-rl process" in one_error_line(proc)
        assert not (out / "eval").exists() or not list((out / "eval").glob("eval-*"))
