"""``--resume`` as an adversary uses it: on a complete run, with a changed recipe, from a damaged checkpoint;
and how a run that stops (Ctrl-C, SIGTERM, a failed save) is recorded."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers import TrainerCallback

from grail_rl.errors import GrailError
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.checkpoints import (
    MARKER,
    STAGING,
    CheckpointError,
    complete_checkpoints,
    resolve_resume,
)
from grail_rl.training.run import run_training
from tests.conftest_training import REPO_ROOT, cli_env, run_cli, tiny_model, toy_dataset, write_recipe  # noqa: F401

pytestmark = pytest.mark.slow


def digest_tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def constant(completions, **kwargs):
    return [0.5 + 0.01 * i for i in range(len(completions))]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:  # noqa: F811
    """A complete 4-step run (checkpoints 2 and 4) through the CLI; the tests copy it before changing it."""
    tmp = tmp_path_factory.mktemp("finished")
    recipe = write_recipe(tmp, tiny_model, output={"save_steps": 2})
    proc = run_cli("train", str(recipe), "--no-eval", "--quiet", cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp


def copy_run(finished: Path, tmp_path: Path) -> Path:
    shutil.copytree(finished, tmp_path / "run")
    recipe = tmp_path / "run" / "recipe.yaml"
    text = recipe.read_text().replace(str(finished), str(tmp_path / "run"))
    recipe.write_text(text)
    return recipe


def test_resume_on_a_complete_run_says_so_and_changes_nothing(finished, tmp_path):
    recipe = copy_run(finished, tmp_path)
    out = recipe.parent / "out"
    # run.json and the marker record the recipe's absolute paths; the copy must match them to count as unchanged
    before = digest_tree(out)
    proc = run_cli("train", str(recipe), "--resume", cwd=recipe.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "holds a complete run (step 4); --resume changed nothing" in proc.stderr
    assert digest_tree(out) == before


def test_resume_with_a_changed_recipe_is_refused_with_a_diff_unless_accepted(tmp_path, tiny_model):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 6}, output={"save_steps": 2})
    options = {"train_dataset": toy_dataset(16), "reward_funcs": [constant], "reward_weights": [1.0], "console": False}
    with pytest.raises(KeyboardInterrupt):
        run_training(load_recipe(recipe), callbacks=[StopAfter(2)], evaluate=False, **options)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "interrupted" and run["global_step"] == 2
    assert "resume from checkpoint-2 with: grail-rl train" in run["next"]

    changed = load_recipe(recipe, sets=["trainer.learning_rate=2e-3", "trainer.num_generations=2"])
    with pytest.raises(GrailError) as info:
        run_training(changed, resume="latest", evaluate=False, **options)
    message = str(info.value)
    assert "trainer.learning_rate: 0.001 -> 0.002" in message and "trainer.num_generations: 4 -> 2" in message
    assert "--accept-recipe-changes" in message
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "interrupted"  # untouched

    result = run_training(changed, resume="latest", accept_changes=True, evaluate=False, **options)
    assert result.global_step == 6
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "completed" and run["recipe"]["trainer"]["learning_rate"] == 2e-3
    assert "trainer.learning_rate: 0.001 -> 0.002" in run["sessions"][-1]["accepted_recipe_changes"]
    marker = json.loads((tmp_path / "out" / "checkpoint-6" / MARKER).read_text())
    assert marker["recipe"]["trainer"]["learning_rate"] == 2e-3  # later resumes compare with the new values


class StopAfter(TrainerCallback):
    """A callback that presses Ctrl-C after ``step`` steps (after that step's checkpoint)."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise KeyboardInterrupt


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(finished, tmp_path, caplog):
    out = copy_run(finished, tmp_path).parent / "out"
    weights = out / "checkpoint-4" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # a flipped bit: same size, wrong bytes
    weights.write_bytes(bytes(data))
    assert resolve_resume(out, "latest").name == "checkpoint-2"
    assert "skipping checkpoint-4 (model.safetensors does not match the digest" in caplog.text
    (out / "checkpoint-2" / "optimizer.pt").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=r"no checkpoint .* can be used: checkpoint-4 .*; checkpoint-2 \(optimizer.pt has 9 bytes"):
        resolve_resume(out, "latest")
    with pytest.raises(CheckpointError, match="the checkpoint is damaged: model.safetensors"):
        resolve_resume(out, str(out / "checkpoint-4"))


def test_evaluating_a_damaged_checkpoint_is_one_line(finished, tmp_path):
    recipe = copy_run(finished, tmp_path)
    checkpoint = recipe.parent / "out" / "checkpoint-2"
    (checkpoint / "model.safetensors").write_bytes(b"\x00" * 10)
    proc = run_cli("evaluate", str(recipe), "--model", str(checkpoint), cwd=recipe.parent)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --model: {checkpoint} is damaged: model.safetensors has 10 bytes, "
                      f"{json.loads((checkpoint / MARKER).read_text())['files']['model.safetensors']['size']} were written; "
                      "evaluate another checkpoint"]  # fmt: skip


def test_resuming_a_tied_embedding_model_does_not_warn_about_lm_head(tmp_path, tiny_model):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 4}, output={"save_steps": 2})
    options = {"train_dataset": toy_dataset(16), "reward_funcs": [constant], "reward_weights": [1.0], "console": False}
    with pytest.raises(KeyboardInterrupt):
        run_training(load_recipe(recipe), callbacks=[StopAfter(2)], evaluate=False, **options)
    run_training(load_recipe(recipe), resume="latest", evaluate=False, **options)
    log = (tmp_path / "out" / "train.log").read_text()
    assert "lm_head" not in log and "missing keys" not in log


DRIVER = """
import sys, time
sys.path.insert(0, {root!r})
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.run import run_training
from tests.conftest_training import toy_dataset

def slow(completions, **kwargs):
    print("step", flush=True)
    time.sleep(0.3)
    return [0.5] * len(completions)

run_training(load_recipe(sys.argv[1]), train_dataset=toy_dataset(64), reward_funcs=[slow], reward_weights=[1.0],
             console=False, evaluate=False)
"""


@pytest.mark.parametrize("sig, status, code", [(signal.SIGINT, "interrupted", 1), (signal.SIGTERM, "interrupted", 1)])
def test_ctrl_c_and_sigterm_are_recorded_with_how_to_resume(tmp_path, tiny_model, sig, status, code):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 40}, output={"save_steps": 2})
    (tmp_path / "driver.py").write_text(DRIVER.format(root=str(REPO_ROOT)))
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(recipe)], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while not (tmp_path / "out" / "checkpoint-2" / MARKER).exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == status, run
    assert run["error"] == ("terminated (SIGTERM)" if sig == signal.SIGTERM else "interrupted (Ctrl-C)")
    assert "--resume" in run["next"] and "--resume" in err
    assert not (tmp_path / "out" / STAGING).exists()


@pytest.mark.parametrize("failure", ["oserror", "runtimeerror"])
def test_a_full_disk_during_a_save_is_one_line_and_leaves_no_staging(tmp_path, tiny_model, monkeypatch, failure):  # noqa: F811
    import torch

    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        if "checkpoint-4" in str(f) and "optimizer" in str(f):
            if failure == "oserror":
                raise OSError(errno.ENOSPC, "No space left on device", str(f))
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing "
                               "file data/0: file write failed")  # what torch.save raises on a full disk
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    recipe = write_recipe(tmp_path, tiny_model, output={"save_steps": 2})
    options = {"train_dataset": toy_dataset(16), "reward_funcs": [constant], "reward_weights": [1.0], "console": False}
    with pytest.raises(CheckpointError) as info:
        run_training(load_recipe(recipe), evaluate=False, **options)
    message = str(info.value)
    assert f"could not save checkpoint at step 4 in {tmp_path / 'out'}" in message
    assert ("No space left on device" if failure == "oserror" else "is the disk full?") in message
    assert "resume from checkpoint-2 with: grail-rl train" in message
    out = tmp_path / "out"
    assert [p.name for p in complete_checkpoints(out)] == ["checkpoint-2"] and not (out / STAGING).exists()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_a_reward_that_exits_ends_the_run_failed_not_with_status_0(tmp_path, tiny_model):  # noqa: F811
    code = (
        f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from grail_rl.recipe.loader import load_recipe\nfrom grail_rl.training.run import run_training\n"
        "from grail_rl.rewards.runtime import GuardedReward\nfrom grail_rl.plugins import RewardFunction\n"
        "from tests.conftest_training import toy_dataset\n"
        "class Quit(RewardFunction):\n    name = 'quit'\n    def __call__(self, completions, **kw):\n        sys.exit(0)\n"
        "run_training(load_recipe(sys.argv[1]), train_dataset=toy_dataset(16), reward_funcs=[GuardedReward(Quit(),"
        " plugin='p')], reward_weights=[1.0], console=False, evaluate=False)\n"
    )
    recipe = write_recipe(tmp_path, tiny_model)
    proc = subprocess.run([sys.executable, "-c", code, str(recipe)], env=cli_env(), capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert proc.returncode != 0
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "failed" and "sys.exit(0)" in run["error"]
    assert not (tmp_path / "out" / "final").exists()


def test_two_train_processes_on_one_folder_one_is_refused(tmp_path, tiny_model):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 40})
    (tmp_path / "driver.py").write_text(DRIVER.format(root=str(REPO_ROOT)))
    first = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(recipe)], env=cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert first.stdout.readline().strip() == "step"  # training is under way
    second = run_cli("train", str(recipe), "--resume", cwd=tmp_path)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert second.returncode == 2
    assert [line for line in second.stderr.splitlines() if line.startswith("error:")] == [
        line for line in second.stderr.splitlines() if "is in use by another grail-rl process" in line
    ]
    assert f"pid {first.pid}" in second.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert len(run["sessions"]) == 1 and run["status"] == "interrupted"  # the second process wrote nothing


def test_resume_after_the_last_checkpoint_but_before_final_trains_no_extra_step(finished, tmp_path):
    from safetensors.torch import load_file

    recipe = copy_run(finished, tmp_path)
    out = recipe.parent / "out"
    shutil.rmtree(out / "final")  # killed between the last checkpoint and the final save
    run = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**run, "status": "running", "recipe": load_recipe(recipe).resolved()}))
    marker = json.loads((out / "checkpoint-4" / MARKER).read_text())
    marker["recipe"] = load_recipe(recipe).resolved()  # the copy lives at another path; same recipe otherwise
    (out / "checkpoint-4" / MARKER).write_text(json.dumps(marker))
    proc = run_cli("train", str(recipe), "--resume", "--no-eval", "--quiet", cwd=recipe.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "checkpoint-4 is the run's last step (4): nothing left to train" in proc.stderr
    assert sorted(p.name for p in complete_checkpoints(out)) == ["checkpoint-2", "checkpoint-4"]  # no step 5
    final, last = load_file(out / "final" / "model.safetensors"), load_file(out / "checkpoint-4" / "model.safetensors")
    assert final.keys() == last.keys() and all((final[k] == last[k]).all() for k in final)
    assert json.loads((out / "run.json").read_text())["global_step"] == 4
