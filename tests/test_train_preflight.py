"""Trackers really receive the run's metrics; a missing tracker, vLLM or flash attention is refused up front.

Both trackers write locally (TensorBoard under OUTPUT/runs/, Trackio under $TRACKIO_DIR), so nothing here
reaches a network. wandb is not a test dependency; its pass-through is the same GRPOConfig field.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing import event_accumulator  # a dev dependency, like trackio

from grail_rl.errors import GrailError
from grail_rl.recipe.loader import load_recipe
from grail_rl.training import preflight
from grail_rl.training.run import run_training
from tests.conftest_training import cli_env, run_cli, tiny_model, write_recipe  # noqa: F401  (fixture)

# Trackio fixes its folder when imported, so its logs are read back in a process that sees TRACKIO_DIR.
READ_TRACKIO = (
    "import json, sys, trackio; "
    "print(json.dumps(trackio.SQLiteStorage.get_logs(project=sys.argv[1], run=sys.argv[2])))"
)


def logged_rewards(out) -> dict[int, float]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return {row["step"]: row["reward"] for row in map(json.loads, lines) if "reward" in row}


@pytest.mark.slow
def test_tensorboard_and_trackio_get_the_same_rewards_as_the_run_log(tmp_path, tiny_model):  # noqa: F811
    logging = {
        "logging_steps": 1,
        "report_to": ["tensorboard", "trackio"],
        "run_name": "r1",
        "project": "grail-t",
    }
    path = write_recipe(tmp_path, tiny_model, logging=logging)
    proc = run_cli(
        "train", str(path), "--max_steps", "3", "--no-eval", "--quiet", cwd=tmp_path,
        TRACKIO_DIR=str(tmp_path / "trackio"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    expected = logged_rewards(out)
    assert sorted(expected) == [1, 2, 3]

    (run_dir,) = (out / "runs").iterdir()
    events = event_accumulator.EventAccumulator(str(run_dir))
    events.Reload()
    board = {e.step: e.value for e in events.Scalars("train/reward")}
    assert board == pytest.approx(expected)

    read = subprocess.run(
        [sys.executable, "-c", READ_TRACKIO, "grail-t", "r1"],
        env=cli_env(TRACKIO_DIR=str(tmp_path / "trackio")), capture_output=True, text=True, check=True,
    )  # fmt: skip
    logs = json.loads(read.stdout.splitlines()[-1])
    tracked = {row["step"]: row["train/reward"] for row in logs if "train/reward" in row}
    assert tracked == pytest.approx(expected)


def hide_modules(monkeypatch, *hidden: str) -> None:
    """Make the preflight checks see ``hidden`` as not installed (whatever this environment has)."""
    real = preflight.installed
    monkeypatch.setattr(preflight, "installed", lambda module: module not in hidden and real(module))


@pytest.mark.parametrize(
    ("sets", "hidden", "message"),
    [
        (
            ["logging.report_to=[wandb, tensorboard]"],
            ("wandb",),
            "logging.report_to: wandb is not installed; pip install 'grail-rl[wandb]' or remove it from "
            "logging.report_to",
        ),
        (
            ["trainer.use_vllm=true", "trainer.use_cpu=false"],
            ("vllm",),
            "trainer.use_vllm: vLLM is not installed; on a GPU machine pip install 'grail-rl[vllm]', "
            "or set trainer.use_vllm: false to generate with transformers",
        ),
        (
            ["model.attn_implementation=flash_attention_2"],
            ("flash_attn", "kernels"),
            "model.attn_implementation: flash_attention_2 needs the flash_attn package (or `kernels`), neither "
            "is installed; install one on the GPU machine or use 'sdpa'",
        ),
    ],
)
def test_missing_optional_packages_are_refused_before_anything_loads(
    tmp_path, monkeypatch, sets, hidden, message
):
    hide_modules(monkeypatch, *hidden)
    # The model folder does not exist either: the missing package must be reported first.
    path = write_recipe(tmp_path, tmp_path / "no-model")
    with pytest.raises(GrailError) as caught:
        run_training(load_recipe(path, sets=sets), console=False)
    assert str(caught.value) == message
    assert not (tmp_path / "out").exists()


def test_installed_packages_and_none_pass(tmp_path):
    assert preflight.missing_trackers(["none", "tensorboard", "trackio"]) == []
    path = write_recipe(tmp_path, tmp_path / "no-model", logging={"report_to": ["tensorboard"]})
    preflight.check_optional_packages(load_recipe(path).recipe)


def test_an_unknown_generation_setting_is_refused_before_loading(tmp_path):
    path = write_recipe(tmp_path, tmp_path / "no-model-needed", trainer={"generation_kwargs": {"no_repeat_ngram_sise": 3}})
    with pytest.raises(GrailError, match="no_repeat_ngram_sise is not a generation setting .* Did you mean 'no_repeat_ngram_size'"):
        preflight.check_generation_kwargs(load_recipe(path).recipe)
    ok = write_recipe(tmp_path, tmp_path / "no-model-needed", trainer={"generation_kwargs": {"no_repeat_ngram_size": 3}})
    preflight.check_generation_kwargs(load_recipe(ok).recipe)
