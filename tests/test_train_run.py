"""A real training run through grail-rl: what lands in the output folder, refusals, and failed saves."""

from __future__ import annotations

import errno
import json

import pytest

from grail_rl.errors import GrailError
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.checkpoints import MARKER, STAGING, CheckpointError, complete_checkpoints
from grail_rl.training.run import run_training
from tests.conftest_training import tiny_model, toy_dataset, write_recipe  # noqa: F401  (fixture)


def weird(completions, **kwargs):
    return [1.0 if "\x1b" in str(c) else 0.5 for c in completions]


def run(path, **kwargs):
    options = {"train_dataset": toy_dataset(16), "reward_funcs": [weird], "reward_weights": [1.0], "console": False}
    return run_training(load_recipe(path), **{**options, **kwargs})


@pytest.mark.slow
def test_run_writes_metadata_logs_samples_and_complete_checkpoints(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(tmp_path, tiny_model, output={"save_steps": 2, "save_total_limit": 1})
    result = run(path, eval_dataset=toy_dataset(6), evaluate=True)
    out = result.output_dir
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["status"] == "completed" and run_json["global_step"] == 4
    assert run_json["recipe"]["trainer"]["max_steps"] == 4
    session = run_json["sessions"][0]
    assert session["packages"]["trl"] and session["packages"]["torch"]
    assert any(p["distribution"] == "grail-rl" and p["version"] for p in session["plugins"])
    assert session["git"]["grail_rl"] is None or len(session["git"]["grail_rl"]["commit"]) == 40
    assert json.loads((out / "recipe.resolved.json").read_text()) == run_json["recipe"]
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-4"]  # save_total_limit 1
    assert (out / "checkpoint-4" / MARKER).is_file() and not (out / STAGING).exists()
    assert (out / "final" / "model.safetensors").is_file()
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[:4] == [1, 2, 3, 4]
    assert "step 4/4" in (out / "train.log").read_text()
    samples = [json.loads(line) for line in (out / "completions" / "step-00004.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and samples[0]["rewards"]["weird"] in (0.5, 1.0)
    report = json.loads((out / "eval" / "eval-eval.json").read_text())
    assert report["complete"] and report["evaluated_rows"] == 6 and "random" in report["baselines"]


def test_output_folder_holding_a_run_is_refused_unless_resume_or_overwrite(tmp_path, tiny_model):  # noqa: F811
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"format": "grail-rl run", "status": "completed", "training_started": True}))
    path = write_recipe(tmp_path, tiny_model)
    with pytest.raises(GrailError, match="already holds a run; pass --resume"):
        run(path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    (tmp_path / "other" / "checkpoint-ideas.md").write_text("mine")
    (tmp_path / "other" / "run.json").write_text("{}")  # another tool's run.json is not grail-rl's marker
    other = write_recipe(tmp_path, tiny_model, output={"dir": str(tmp_path / "other"), "overwrite": True})
    with pytest.raises(GrailError, match="is not a grail-rl run"):
        run(other)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["checkpoint-ideas.md", "notes.txt", "run.json"]


@pytest.mark.slow
def test_disk_full_while_saving_keeps_earlier_checkpoints_and_leaves_nothing_half_written(
    tmp_path, tiny_model, monkeypatch  # noqa: F811
):
    import torch

    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        if "checkpoint-4" in str(f) and "optimizer" in str(f):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    path = write_recipe(tmp_path, tiny_model, output={"save_steps": 2})
    with pytest.raises(CheckpointError, match="No space left on device.*earlier checkpoints are untouched"):
        run(path, evaluate=False)
    out = tmp_path / "out"
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-2"]
    assert not (out / "checkpoint-4").exists()
    assert not (out / STAGING / "checkpoint-4").exists()


@pytest.mark.slow
def test_evaluation_never_trains(tmp_path, tiny_model):  # noqa: F811
    import torch

    from grail_rl.evaluation.generation import TransformersGenerator
    from grail_rl.evaluation.runner import evaluate_set
    from grail_rl.models.loading import load_model, load_tokenizer
    from grail_rl.recipe.blocks import ModelBlock

    block = ModelBlock(name_or_path=str(tiny_model))
    model, tokenizer = load_model(block, str(tiny_model)), load_tokenizer(block, str(tiny_model))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    generator = TransformersGenerator(model, tokenizer, max_new_tokens=4, batch_size=2)
    report = evaluate_set(generator, toy_dataset(5), name="t", out_dir=tmp_path)
    assert report.complete and len(report.predictions) == 5 and (tmp_path / "eval-t.json").is_file()
    assert model.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.slow
def test_in_training_evaluation_runs_every_eval_steps(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(tmp_path, tiny_model, trainer={"eval_strategy": "steps", "eval_steps": 2})
    result = run(path, eval_dataset=toy_dataset(6), evaluate=False)
    rows = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval_reward" in r]
    assert [r["step"] for r in evals] == [2, 4]


@pytest.mark.slow
def test_an_empty_eval_split_is_said_not_scored_as_zero(tmp_path, tiny_model):  # noqa: F811
    from grail_rl.training.summary import summary_lines

    # 40 synthetic rows with seed 0 put no viewer in the validation split.
    synthetic = {"n": 40, "seed": 0, "cache_dir": str(tmp_path / "synth")}
    path = write_recipe(tmp_path, tiny_model, data={"synthetic": synthetic}, trainer={"max_steps": 1})
    result = run_training(load_recipe(path), reward_funcs=[weird], reward_weights=[1.0], console=False)
    assert json.loads((result.output_dir / "drop_report_eval.json").read_text())["read"] == 0
    assert result.eval_reports == [] and not (result.output_dir / "eval").exists()
    assert result.no_eval_reason.startswith("the eval split is empty (see ")
    assert f"no evaluation: {result.no_eval_reason}" in summary_lines(result)

    stepped = load_recipe(path, sets=["trainer.eval_strategy=steps", "output.overwrite=true"])
    with pytest.raises(GrailError, match=r"the eval split is empty .* set trainer.eval_strategy: no$"):
        run_training(stepped, reward_funcs=[weird], reward_weights=[1.0], console=False)


def test_evaluations_of_the_base_model_neither_block_a_run_nor_vanish_on_overwrite(tmp_path):
    from grail_rl.training.output_claim import claim_output_dir

    out = tmp_path / "out"
    (out / "evaluations" / "base" / "eval").mkdir(parents=True)
    (out / "evaluations" / "base" / "eval" / "eval-eval.json").write_text("{}")
    claim_output_dir(out, resume=False, overwrite=False).release()  # `evaluate --base` before training is fine
    with pytest.raises(GrailError, match="holds no run to resume"):
        claim_output_dir(out, resume=True, overwrite=False)

    (out / "run.json").write_text(json.dumps({"format": "grail-rl run", "training_started": True}))
    (out / "checkpoint-2").mkdir()
    (out / "evaluations" / "checkpoint-2").mkdir()
    claim = claim_output_dir(out, resume=False, overwrite=True)
    claim.commit()
    claim.release()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name != ".grail-lock") == [
        "evaluations", "evaluations/base", "evaluations/base/eval", "evaluations/base/eval/eval-eval.json",
    ]  # fmt: skip
