"""Kill a real training process with SIGKILL mid-run, resume it, and compare with an uninterrupted run.

The resumed run must continue from the last complete checkpoint with the same global step, optimizer,
scheduler and RNG state: its log history holds every step exactly once, its learning rates match the
uninterrupted run's step for step, and it ends with the same weights.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest_training import REPO_ROOT, cli_env, tiny_model, write_recipe  # noqa: F401  (fixture)

DRIVER = """
import sys, time
sys.path.insert(0, {root!r})
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.run import run_training
from tests.conftest_training import toy_dataset

def slow_reward(completions, completion_ids, **kwargs):
    time.sleep(float(sys.argv[3]))  # widens the window in which the test kills the process
    return [len(set(ids)) / max(len(ids), 1) for ids in completion_ids]

resume = sys.argv[2] if sys.argv[2] != "no" else None
run_training(load_recipe(sys.argv[1]), resume=resume, train_dataset=toy_dataset(32),
             reward_funcs=[slow_reward], reward_weights=[1.0], console=False, evaluate=False)
"""

MAX_STEPS = 8


def _driver(tmp_path: Path, recipe: Path, resume: str, delay: float) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(root=str(REPO_ROOT)))
    return subprocess.Popen([sys.executable, str(script), str(recipe), resume, str(delay)], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def kill_after_checkpoint(proc: subprocess.Popen, out: Path, step: int) -> None:
    """SIGKILL ``proc`` as soon as ``checkpoint-<step>`` is published, before the run ends."""
    deadline = time.time() + 120
    while not (out / f"checkpoint-{step}" / "grail_checkpoint.json").exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, f"no checkpoint-{step} within 120 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "final").exists(), "the run finished before it was killed"


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_model):  # noqa: F811
    import torch

    trainer = {"max_steps": MAX_STEPS, "learning_rate": 5e-3, "lr_scheduler_type": "cosine", "warmup_steps": 2}
    killed_dir, ref_dir = tmp_path / "killed", tmp_path / "ref"
    killed_dir.mkdir(), ref_dir.mkdir()
    killed = write_recipe(killed_dir, tiny_model, trainer=trainer, output={"save_steps": 2, "save_total_limit": 2})
    ref = write_recipe(ref_dir, tiny_model, trainer=trainer, output={"save_steps": 2, "save_total_limit": 2})

    proc = _driver(killed_dir, killed, "no", 0.4)
    out = killed_dir / "out"
    kill_after_checkpoint(proc, out, 4)

    resumed = _driver(killed_dir, killed, "latest", 0.0)
    reference = _driver(ref_dir, ref, "no", 0.0)
    for p in (resumed, reference):
        output, _ = p.communicate(timeout=240)
        assert p.returncode == 0, output[-3000:]

    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and len(run["sessions"]) == 2
    assert run["sessions"][1]["resumed_from"].endswith(("checkpoint-4", "checkpoint-6"))
    history = json.loads((out / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())["log_history"]
    ref_history = json.loads((ref_dir / "out" / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())["log_history"]  # noqa: E501
    steps = [h["step"] for h in history if "loss" in h]
    assert steps == list(range(1, MAX_STEPS + 1)), f"steps lost or repeated: {steps}"
    lrs = [h["learning_rate"] for h in history if "loss" in h]
    assert lrs == [h["learning_rate"] for h in ref_history if "loss" in h]  # scheduler continued
    mine, theirs = _weights(out / "final"), _weights(ref_dir / "out" / "final")
    for name, tensor in theirs.items():
        assert torch.allclose(mine[name], tensor, atol=1e-6), f"{name} differs after resume"
    ref_rewards = [h["rewards/slow_reward/mean"] for h in ref_history if "loss" in h]
    assert [h["rewards/slow_reward/mean"] for h in history if "loss" in h] == pytest.approx(ref_rewards, abs=1e-6)


GRAIL_DRIVER = """
import sys, time
sys.path.insert(0, {root!r})
from transformers import TrainerCallback
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.run import run_training

class Slow(TrainerCallback):
    def on_step_end(self, *args, **kwargs):
        time.sleep(float(sys.argv[3]))  # widens the window in which the test kills the process

resume = sys.argv[2] if sys.argv[2] != "no" else None
run_training(load_recipe(sys.argv[1]), resume=resume, console=False, evaluate=False, callbacks=[Slow()])
"""


@pytest.mark.slow
def test_a_grail_run_killed_and_resumed_has_the_same_discriminator_as_an_uninterrupted_one(tmp_path, tiny_model):  # noqa: F811
    from grail_rl.grail.runtime import row_option_text
    from grail_rl.testing import discriminator_context

    steps = 6
    grail = {
        "rewards": [{"name": "accuracy"}, {"name": "gail", "weight": 0.5}],
        "discriminator": {"name": "ngram", "warmup_steps": 5, "minibatch_size": 8, "extra_negatives": 1,
                          "replay_size": 32, "updates_per_step": 2, "heldout_share": 0.3},
    }  # fmt: skip
    dirs = {name: tmp_path / name for name in ("killed", "ref")}
    recipes = {}
    for name, folder in dirs.items():
        folder.mkdir()
        recipes[name] = write_recipe(folder, tiny_model, trainer={"max_steps": steps},
                                     output={"save_steps": 2, "save_total_limit": 2}, **grail)  # fmt: skip
    script = tmp_path / "grail_driver.py"
    script.write_text(GRAIL_DRIVER.format(root=str(REPO_ROOT)))

    def start(name: str, resume: str, delay: float) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(script), str(recipes[name]), resume, str(delay)], env=cli_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip

    proc = start("killed", "no", 0.5)
    out = dirs["killed"] / "out"
    kill_after_checkpoint(proc, out, 2)
    for p in (start("killed", "latest", 0.0), start("ref", "no", 0.0)):
        output, _ = p.communicate(timeout=240)
        assert p.returncode == 0, output[-3000:]

    def discriminator(folder: Path):
        context = discriminator_context(train=False)
        context.discriminator.load_state(folder / "out" / f"checkpoint-{steps}" / "grail_state" / "discriminator")
        return context.discriminator

    resumed, reference = discriminator(dirs["killed"]), discriminator(dirs["ref"])
    from grail_rl.data.dataset import build_split
    from grail_rl.recipe.loader import load_recipe

    loaded = load_recipe(recipes["ref"])
    rows, _ = build_split(loaded.recipe, loaded.plugins, "eval")
    probe = [row_option_text(row, j) for row in rows for j in range(1, row["n_options"] + 1)]
    assert resumed.score(probe) == reference.score(probe)  # the same scores on a fixed probe set
    assert resumed.digest() == reference.digest()
    def state(folder: Path) -> dict:
        saved = folder / "out" / f"checkpoint-{steps}" / "grail_state" / "discriminator"
        return json.loads((saved / "runtime.json").read_text()) | json.loads((saved / "texts.json").read_text())

    state = {name: state(folder) for name, folder in dirs.items()}
    for key in ("updates", "replay", "rng", "heldout_real", "heldout_fake", "last_auc"):
        assert state["killed"][key] == state["ref"][key], key
    assert state["ref"]["updates"] > 5 and json.loads((out / "run.json").read_text())["sessions"][1]["resumed_from"]
