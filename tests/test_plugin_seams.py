"""The seams a discriminator builds on: rewards are set up with the run's context, and extra state savers
write inside every checkpoint (covered by its manifest) and are restored on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grail_rl.errors import GrailError
from grail_rl.plugins import PluginContext, RewardFunction
from grail_rl.recipe.loader import load_recipe
from grail_rl.rewards.runtime import GuardedReward
from grail_rl.training.checkpoints import (
    MARKER,
    STATE_DIR,
    CheckpointError,
    missing_state,
    restore_extra_state,
)
from grail_rl.training.run import run_training
from tests.conftest_training import tiny_model, toy_dataset, write_recipe  # noqa: F401  (fixture)


class ContextReward(RewardFunction):
    name = "context_reward"

    def __init__(self, config=None):
        super().__init__(config)
        self.contexts: list[PluginContext] = []

    def setup(self, context):
        self.contexts.append(context)

    def __call__(self, completions, **kwargs):
        assert self.contexts, "scored before setup"
        return [0.5] * len(completions)


class BrokenSetup(ContextReward):
    name = "broken_setup"

    def setup(self, context):
        raise SystemExit(3)


class Counter:
    """A state saver that counts the steps it has seen."""

    name = "counter"

    def __init__(self):
        self.value = 0
        self.loaded_from: Path | None = None

    def save_state(self, folder: Path) -> None:
        (folder / "value.json").write_text(json.dumps(self.value))

    def load_state(self, folder: Path) -> None:
        self.value = json.loads((folder / "value.json").read_text())
        self.loaded_from = folder


def test_a_reward_setup_failure_names_the_plugin():
    guarded = GuardedReward(BrokenSetup(), plugin="mine")
    with pytest.raises(GrailError, match=r"reward 'broken_setup' \(plugin 'mine'\) failed to set up: called sys.exit\(3\)"):
        guarded.setup(PluginContext(device="cpu"))


def test_restoring_state_names_what_is_missing_unless_asked_to_start_fresh(tmp_path):
    checkpoint = tmp_path / "checkpoint-2"
    (checkpoint / STATE_DIR / "counter").mkdir(parents=True)
    (checkpoint / STATE_DIR / "counter" / "value.json").write_text("5")
    other = Counter()
    other.name = "other"
    with pytest.raises(CheckpointError, match="checkpoint-2 holds no other state"):
        restore_extra_state([Counter(), other], checkpoint)
    counter = Counter()
    assert restore_extra_state([counter, other], checkpoint, fresh=("other",)) == ["other"]
    assert counter.value == 5
    assert missing_state(checkpoint, ["counter", "other"]) == ["other"]


@pytest.mark.slow
def test_rewards_are_set_up_once_and_savers_write_inside_every_checkpoint(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(tmp_path, tiny_model, output={"save_steps": 2})
    reward = ContextReward()
    guarded = GuardedReward(reward, plugin="tests")
    counter = Counter()

    from transformers import TrainerCallback

    class CountCallback(TrainerCallback):
        def on_step_end(self, *args, **kwargs):
            counter.value += 1

    run_training(
        load_recipe(path), train_dataset=toy_dataset(16), reward_funcs=[guarded], reward_weights=[1.0],
        console=False, evaluate=False, state_savers=[counter], callbacks=[CountCallback()],
    )  # fmt: skip
    assert len(reward.contexts) == 1
    context = reward.contexts[0]
    assert (context.device, context.rank, context.world_size, context.seed) == ("cpu", 0, 1, 7)
    assert context.output_dir == tmp_path / "out" and context.tokenizer is not None
    out = tmp_path / "out"
    for step in (2, 4):
        saved = out / f"checkpoint-{step}" / STATE_DIR / "counter" / "value.json"
        assert json.loads(saved.read_text()) == step
        manifest = json.loads((out / f"checkpoint-{step}" / MARKER).read_text())["files"]
        assert f"{STATE_DIR}/counter/value.json" in manifest  # published atomically with the checkpoint

    resumed = Counter()
    stepped = load_recipe(write_recipe(tmp_path, tiny_model, trainer={"max_steps": 6}, output={"save_steps": 2}))
    run_training(
        stepped, resume=str(out / "checkpoint-4"), accept_changes=True, train_dataset=toy_dataset(16),
        reward_funcs=[GuardedReward(ContextReward(), plugin="tests")], reward_weights=[1.0], console=False,
        evaluate=False, state_savers=[resumed],
    )  # fmt: skip
    assert resumed.loaded_from == out / "checkpoint-4" / STATE_DIR / "counter"
