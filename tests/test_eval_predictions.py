"""``grail-rl evaluate --predictions``: stored outputs re-scored without a model, matched by prompt hash."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest_training import REPO_ROOT, cli_env, tiny_model, write_recipe  # noqa: F401  (fixture)

RECIPE = """\
model: {name_or_path: ./no-model-needed}
data: {synthetic: {n: 60, seed: 1, cache_dir: synth}}
rewards: [{name: accuracy}]
trainer: {per_device_train_batch_size: 8}
output: {dir: out}
"""

# Runs the CLI in-process and says whether torch was imported: re-scoring must not load a model stack.
NO_TORCH = """
import sys
from grail_rl.cli.main import cli
try:
    cli(sys.argv[1:], prog_name="grail-rl")
except SystemExit as exc:
    code = exc.code or 0
print("TORCH_IMPORTED" if "torch" in sys.modules else "NO_TORCH")
sys.exit(code)
"""


def evaluate(tmp_path, *args):
    recipe = tmp_path / "recipe.yaml"
    if not recipe.exists():
        recipe.write_text(RECIPE)
    return subprocess.run([sys.executable, "-c", NO_TORCH, "evaluate", str(recipe), *map(str, args)], cwd=tmp_path,
                          env=cli_env(), capture_output=True, text=True, timeout=240)  # fmt: skip


@pytest.mark.parametrize("name, accuracy", [("gun_study1", 0.964), ("wage_study2_study3", 0.448)])
def test_the_studys_outputs_rescore_to_their_reported_accuracy_without_a_model(tmp_path, validation_dir, name,
                                                                                accuracy):  # fmt: skip
    data = validation_dir / f"{name}.jsonl"
    proc = evaluate(tmp_path, "--data", data, "--predictions", data)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "NO_TORCH" in proc.stdout
    report = json.loads((tmp_path / "out" / "evaluations" / "predictions" / "eval" / f"eval-{name}.json").read_text())
    assert report["complete"] and report["evaluated_rows"] == sum(1 for _ in data.open())
    assert round(report["overall"]["accuracy"]["value"], 3) == accuracy
    assert report["meta"]["model"].startswith("stored outputs")


def test_another_datasets_predictions_are_refused(tmp_path, validation_dir):
    proc = evaluate(tmp_path, "--data", validation_dir / "wage_study2_study3.jsonl",
                    "--predictions", validation_dir / "gun_study1.jsonl")  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "none of its 548 predictions is for a prompt of 'wage_study2_study3'" in proc.stderr
    assert not (tmp_path / "out" / "evaluations").exists() or not any((tmp_path / "out").rglob("eval-*.json"))


def test_a_file_that_covers_some_rows_gives_a_partial_report(tmp_path, validation_dir):
    lines = (validation_dir / "gun_study1.jsonl").read_text().splitlines()
    some = tmp_path / "some.jsonl"
    some.write_text("\n".join(lines[:100]) + "\n")
    proc = evaluate(tmp_path, "--data", validation_dir / "gun_study1.jsonl", "--predictions", some)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "has no output for 448 of the 548 rows" in proc.stderr
    eval_dir = tmp_path / "out" / "evaluations" / "predictions" / "eval"
    report = json.loads((eval_dir / "eval-gun_study1.partial.json").read_text())
    assert not report["complete"] and report["evaluated_rows"] == 100 and report["expected_rows"] == 548
    assert not (eval_dir / "eval-gun_study1.json").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "holds no predictions"),
        ('{"prompt_hash": "ab", "output": "<answer>1</answer>"}\nnot json\n', "line 2 is not JSON"),
        ('{"something": 1}\n', "line 1 has neither prompt_hash and output"),
        ("[" * 100_000 + "\n", "line 1 is not JSON"),
    ],
)
def test_bad_predictions_files_are_one_line(tmp_path, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    proc = evaluate(tmp_path, "--predictions", bad)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr


def test_predictions_take_no_model_and_one_file_per_set(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt_hash": "ab", "output": "x"}\n')
    proc = evaluate(tmp_path, "--predictions", tmp_path / "p.jsonl", "--base")
    assert proc.returncode == 2 and "--predictions re-scores stored outputs: it takes no --model or --base" in proc.stderr
    proc = evaluate(tmp_path, "--predictions", tmp_path / "p.jsonl", "--predictions", tmp_path / "p.jsonl")
    assert proc.returncode == 2 and "give one file per evaluated set (1: eval), got 2" in proc.stderr
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = evaluate(tmp_path, "--predictions", fifo)
    assert proc.returncode == 2 and "fifo" in proc.stderr.lower() and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_models_own_predictions_rescore_to_its_report(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(tmp_path, tiny_model)
    model = subprocess.run([sys.executable, "-m", "grail_rl", "evaluate", str(path), "--base"], cwd=tmp_path,
                           env=cli_env(), capture_output=True, text=True, timeout=240)  # fmt: skip
    assert model.returncode == 0, model.stderr[-2000:]
    eval_dir = tmp_path / "out" / "evaluations" / "base" / "eval"
    stored = [json.loads(line) for line in (eval_dir / "eval-eval.predictions.jsonl").read_text().splitlines()]
    assert all(row["prompt_hash"] and isinstance(row["output"], str) for row in stored)
    again = subprocess.run([sys.executable, "-m", "grail_rl", "evaluate", str(path), "--predictions",
                            str(eval_dir / "eval-eval.predictions.jsonl")], cwd=tmp_path, env=cli_env(),
                           capture_output=True, text=True, timeout=240)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    first = json.loads((eval_dir / "eval-eval.json").read_text())
    second = json.loads((tmp_path / "out" / "evaluations" / "predictions" / "eval" / "eval-eval.json").read_text())
    assert second["complete"] and second["overall"] == first["overall"] and second["answers"] == first["answers"]


def test_only_the_evaluated_prompts_outputs_are_kept_in_memory(tmp_path):
    from grail_rl.evaluation.predictions import prompt_hash, read_predictions

    lines = [json.dumps({"prompt_hash": prompt_hash(f"viewer {i}"), "output": "x" * 1000}) for i in range(5000)]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    stored = read_predictions(path, {prompt_hash("viewer 7")})
    assert stored.rows == 5000 and list(stored.by_hash) == [prompt_hash("viewer 7")]
    assert stored.take(prompt_hash("viewer 7")) == "x" * 1000 and stored.take(prompt_hash("viewer 7")) is None
