"""The learnable reward mixer: off by default, and when on it learns what the original's did, is logged and is
saved with every checkpoint."""

from __future__ import annotations

import json
import math

import pytest

from grail_rl.errors import RecipeError
from grail_rl.plugins.manager import load_plugins
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.reward_mixer import LearnableRewardMixer
from grail_rl.training.run import run_training
from tests.conftest_training import tiny_model, toy_dataset, write_recipe  # noqa: F401  (fixture)


def test_the_mixer_starts_at_the_recipe_weights_and_moves_weight_to_the_higher_reward():
    import torch

    mixer = LearnableRewardMixer(["a", "b", "c"], [2 / 3, 1 / 3, 0.0], learning_rate=0.05)
    assert mixer.weights().tolist() == pytest.approx([2 / 3, 1 / 3, 0.0], abs=1e-6)
    rewards = torch.tensor([[0.0, 1.0, math.nan], [0.0, 1.0, math.nan]])  # b is higher; c abstained everywhere
    for _ in range(20):
        weights = mixer.step(rewards)
    assert weights[1] > 1 / 3 and weights[0] < 2 / 3 and sum(weights) == pytest.approx(1.0)
    assert weights[2] == pytest.approx(0.0, abs=1e-6)


def test_a_mixer_learning_rate_without_learnable_is_an_error(tmp_path):
    (tmp_path / "t.jsonl").write_text("")
    path = tmp_path / "r.yaml"
    path.write_text("model: {name_or_path: m}\ndata: {train: [{path: t.jsonl}]}\nrewards: [{name: accuracy}]\n"
                    "trainer: {per_device_train_batch_size: 8}\noutput: {dir: out}\n"
                    "reward_mixer: {learning_rate: 0.1}\n")  # fmt: skip
    with pytest.raises(RecipeError, match="reward_mixer.learning_rate: takes effect only with reward_mixer.learnable"):
        load_recipe(path, plugins=load_plugins(blocked=()))


def test_mixer_state_round_trips(tmp_path):
    import torch

    mixer = LearnableRewardMixer(["a", "b"], [0.5, 0.5], 0.1)
    mixer.step(torch.tensor([[1.0, 0.0]]))
    mixer.save_state(tmp_path)
    again = LearnableRewardMixer(["a", "b"], [0.5, 0.5], 0.1)
    again.load_state(tmp_path)
    assert again.weights().tolist() == mixer.weights().tolist()
    assert again.step(torch.tensor([[1.0, 0.0]])) == mixer.step(torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="mixes"):
        LearnableRewardMixer(["a", "c"], [0.5, 0.5], 0.1).load_state(tmp_path)


@pytest.mark.slow
def test_a_run_with_the_learnable_mixer_logs_and_saves_its_weights(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 3}, output={"save_steps": 3},
                        reward_mixer={"learnable": True, "learning_rate": 0.5})  # fmt: skip

    def high(completions, **kwargs):
        return [1.0] * len(completions)

    def low(completions, **kwargs):
        return [0.0] * len(completions)

    run_training(load_recipe(path), train_dataset=toy_dataset(16), reward_funcs=[high, low], reward_weights=[0.5, 0.5],
                 console=False, evaluate=False)  # fmt: skip
    out = tmp_path / "out"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    weights = [r["reward_mixer/high"] for r in records if "reward_mixer/high" in r]
    assert len(weights) == 3 and 0.5 < weights[0] < weights[1] < weights[2]
    saved = json.loads((out / "checkpoint-3" / "grail_state" / "reward_mixer" / "mixer.json").read_text())
    assert saved["rewards"] == ["high", "low"] and saved["steps"] == 3
