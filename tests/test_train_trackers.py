"""``logging.report_to``: TensorBoard and Trackio really receive the run's metrics; a missing tracker is refused.

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
from grail_rl.training import trackers
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


def test_a_tracker_that_is_not_installed_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    monkeypatch.setitem(trackers.TRACKER_MODULES, "wandb", ("grail_rl_no_such_tracker_module",))
    # The model folder does not exist either: the tracker must be reported first, before anything loads.
    path = write_recipe(tmp_path, tmp_path / "no-model", logging={"report_to": ["wandb", "tensorboard"]})
    with pytest.raises(GrailError) as caught:
        run_training(load_recipe(path), console=False)
    assert str(caught.value) == (
        "logging.report_to: wandb is not installed; pip install 'grail-rl[wandb]' or remove it from "
        "logging.report_to"
    )
    assert not (tmp_path / "out").exists()
