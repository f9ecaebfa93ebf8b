"""Learning sanity: on a reward the tiny model can learn, the mean reward clearly rises within 30 CPU steps.

This proves the sign and wiring of the GRPO update through grail-rl's trainer (not ``loss != 0``, which
is meaningless for GRPO, see STACK.md).
"""

from __future__ import annotations

import json

import pytest

from grail_rl.recipe.loader import load_recipe
from grail_rl.training.run import run_training
from tests.conftest_training import tiny_model, toy_dataset, write_recipe  # noqa: F401  (fixture)

TARGET = set(range(3, 120))  # ~12 % of the vocabulary: common enough to sample, rare enough to learn


def low_ids(completions, completion_ids, **kwargs):
    return [sum(t in TARGET for t in ids) / max(len(ids), 1) for ids in completion_ids]


@pytest.mark.slow
def test_mean_reward_rises_on_a_learnable_reward(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(
        tmp_path, tiny_model,
        trainer={"max_steps": 30, "learning_rate": 1e-2, "per_device_train_batch_size": 16, "num_generations": 8},
        output={"save_strategy": "no"},
    )  # fmt: skip
    result = run_training(
        load_recipe(path), train_dataset=toy_dataset(32), reward_funcs=[low_ids], reward_weights=[1.0],
        evaluate=False, console=False,
    )  # fmt: skip
    rows = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    curve = [r["rewards/low_ids/mean"] for r in rows if "rewards/low_ids/mean" in r]
    assert len(curve) == 30 and result.global_step == 30
    before, after = sum(curve[:5]) / 5, sum(curve[-5:]) / 5
    assert after > before + 0.2, f"mean reward {before:.2f} -> {after:.2f}: {curve}"
