"""Two CPU processes (torchrun, DDP over gloo) run 2 steps of the demo recipe and end with the same weights."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest_training import REPO_ROOT, cli_env, tiny_model  # noqa: F401  (fixture)


@pytest.mark.slow
def test_two_processes_end_with_identical_weights(tmp_path, tiny_model):  # noqa: F811
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = Path(shutil.which("torchrun") or "torchrun")
    out = tmp_path / "out"
    cmd = [
        str(torchrun), "--nproc_per_node", "2", "--master_port", "29533", "-m", "grail_rl", "train",
        str(REPO_ROOT / "recipes" / "demo" / "recipe.yaml"), "--quiet", "--no-eval",
        "--set", f"model.name_or_path={tiny_model}", "--set", f"data.synthetic.cache_dir={tmp_path / 'synth'}",
        "--set", "data.synthetic.n=40", "--set", f"output.dir={out}", "--set", "launch.num_processes=2",
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--max_completion_length", "8",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    run = json.loads((out / "run.json").read_text())
    assert run["sessions"][0]["world_size"] == 2 and run["global_step"] == 2
    digests = run["weights_sha256_per_rank"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert (out / "checkpoint-2" / "rng_state_0.pth").is_file() and (out / "checkpoint-2" / "rng_state_1.pth").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    "disc",
    [
        [],
        # The encoder has dropout: each update must draw the same masks on both ranks.
        ["--set", "discriminator.name=encoder", "--set", "discriminator.max_length=32",
         "--set", "discriminator.minibatch_size=4", "--set", "discriminator.replay_size=8"],
    ],
    ids=["ngram", "encoder"],
)
def test_two_processes_keep_one_discriminator(tmp_path, tiny_model, disc):  # noqa: F811
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = Path(shutil.which("torchrun") or "torchrun")
    out = tmp_path / "out"
    cmd = [
        str(torchrun), "--nproc_per_node", "2", "--master_port", "29534" if not disc else "29535", "-m", "grail_rl", "train",
        str(REPO_ROOT / "recipes" / "demo" / "grail.yaml"), "--quiet", "--no-eval",
        "--set", f"model.name_or_path={tiny_model}", "--set", f"data.synthetic.cache_dir={tmp_path / 'synth'}",
        "--set", "data.synthetic.n=60", "--set", f"output.dir={out}", "--set", "launch.num_processes=2",
        "--set", "discriminator.warmup_steps=3", "--set", "output.save_steps=3", *disc,
        # 2 prompts x 4 generations per round: each rank scores another prompt's completions, so only gathering
        # the texts of both ranks keeps their discriminators equal.
        "--max_steps", "3", "--per_device_train_batch_size", "4", "--num_generations", "4",
        "--max_completion_length", "8",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    run = json.loads((out / "run.json").read_text())
    disc = run["discriminator_sha256_per_rank"]
    assert len(disc) == 2 and disc[0] == disc[1]  # both ranks took the same discriminator steps
    assert run["weights_sha256_per_rank"][0] == run["weights_sha256_per_rank"][1]
    state = json.loads((out / "checkpoint-3" / "grail_state" / "discriminator" / "runtime.json").read_text())
    assert state["updates"] >= 3 + 3 * 2  # the warmup, then updates_per_step (2) on each of the 3 steps
