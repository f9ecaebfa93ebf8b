"""GRAIL in real training runs on the tiny model: the discriminator learns, the encoder works end to end,
and a resume without discriminator state is refused with the flag that allows it."""

from __future__ import annotations

import json
import random

import pytest

from grail_rl.data.dataset import build_split
from grail_rl.grail.reward import GailReward
from grail_rl.grail.runtime import auc, row_option_text
from grail_rl.recipe.loader import load_recipe
from grail_rl.testing import discriminator_context
from grail_rl.training.run import run_training
from tests.conftest_training import run_cli, tiny_model, write_recipe  # noqa: F401  (fixture)

GRAIL = {
    "rewards": [{"name": "accuracy"}, {"name": "gail", "weight": 0.5}],
}


@pytest.mark.slow
def test_after_a_short_grail_run_the_discriminator_prefers_real_choices(tmp_path, tiny_model):  # noqa: F811
    disc = {"name": "ngram", "warmup_steps": 300, "minibatch_size": 64, "extra_negatives": 1, "replay_size": 256}
    path = write_recipe(
        tmp_path, tiny_model, trainer={"max_steps": 3}, output={"save_steps": 3}, discriminator=disc, **GRAIL,
        data={"synthetic": {"n": 3000, "seed": 5, "cache_dir": str(tmp_path / "synth")}, "max_eval_samples": 300},
    )  # fmt: skip
    loaded = load_recipe(path)
    run_training(loaded, console=False, evaluate=False)
    out = tmp_path / "out"
    state = out / "checkpoint-3" / "grail_state" / "discriminator"
    assert json.loads((state / "runtime.json").read_text())["warmup_done"] == 300
    # The trained discriminator, frozen, judged on viewers it never saw (the eval split).
    context = discriminator_context(train=False)
    context.discriminator.load_state(state)
    rows, _ = build_split(loaded.recipe, loaded.plugins, "eval")
    rng = random.Random(0)
    real = [row_option_text(row, row["gold_index"]) for row in rows]
    fake = [row_option_text(row, j) for row in rows for j in range(1, row["n_options"] + 1) if j != row["gold_index"]]
    held_out_auc = auc(context.discriminator.score(real), context.discriminator.score(fake))
    assert held_out_auc > 0.56, f"held-out AUC {held_out_auc:.3f} of gold against other options"

    reward = GailReward()
    reward.setup(context)
    columns = {key: list(rows[key]) for key in ("gold_index", "slate_titles", "slate_channels")}
    columns["prompts"] = list(rows["prompt"])
    golds = reward([f"<answer>{g}</answer>" for g in rows["gold_index"]], **columns)
    others = reward(
        [f"<answer>{rng.choice([j for j in range(1, n + 1) if j != g])}</answer>"
         for g, n in zip(rows["gold_index"], rows["n_options"], strict=True)],
        **columns,
    )  # fmt: skip
    assert sum(golds) / len(golds) > sum(others) / len(others)


@pytest.mark.slow
def test_the_encoder_discriminator_trains_in_a_run_and_is_checkpointed(tmp_path, tiny_model):  # noqa: F811
    disc = {"name": "encoder", "max_length": 48, "warmup_steps": 2, "minibatch_size": 4, "extra_negatives": 1}
    path = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 2}, output={"save_steps": 2}, discriminator=disc,
                        **GRAIL)  # fmt: skip
    run_training(load_recipe(path), console=False, evaluate=False)
    out = tmp_path / "out"
    state = out / "checkpoint-2" / "grail_state" / "discriminator"
    assert (state / "plugin" / "encoder.pt").is_file()
    runtime = json.loads((state / "runtime.json").read_text())
    assert runtime["plugin"] == "encoder" and runtime["updates"] >= 2 + 2  # warmup, then one per step
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("discriminator/updates" in r for r in records if "loss" in r)
    assert len(json.loads((out / "run.json").read_text())["discriminator_sha256_per_rank"]) == 1


@pytest.mark.slow
def test_resuming_with_a_new_discriminator_block_needs_the_fresh_flag(tmp_path, tiny_model):  # noqa: F811
    plain = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 2}, output={"save_steps": 2})
    proc = run_cli("train", str(plain), "--quiet", "--no-eval", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    grail = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 3}, output={"save_steps": 1},
                         discriminator={"name": "ngram", "extra_negatives": 1}, **GRAIL)  # fmt: skip
    proc = run_cli("train", str(grail), "--resume", "--accept-recipe-changes", "--quiet", "--no-eval", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "holds no discriminator state" in proc.stderr and "--fresh-discriminator" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("train", str(grail), "--resume", "--accept-recipe-changes", "--fresh-discriminator", "--quiet",
                   "--no-eval", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "the discriminator starts afresh" in proc.stderr
    assert (tmp_path / "out" / "checkpoint-3" / "grail_state" / "discriminator" / "runtime.json").is_file()


@pytest.mark.slow
def test_in_training_evaluation_never_updates_the_discriminator(tmp_path, tiny_model):  # noqa: F811
    disc = {"name": "ngram", "warmup_steps": 3, "minibatch_size": 8, "extra_negatives": 1, "updates_per_step": 2,
            "heldout_share": 0.0}  # fmt: skip
    path = write_recipe(
        tmp_path, tiny_model, trainer={"max_steps": 2, "eval_strategy": "steps", "eval_steps": 1, "eval_on_start": True},
        output={"save_steps": 2}, discriminator=disc, **GRAIL,
    )  # fmt: skip
    run_training(load_recipe(path), console=False, evaluate=False)
    out = tmp_path / "out"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_rewards/gail/mean" in r for r in records)  # the gail reward scored the eval completions
    state = json.loads((out / "checkpoint-2" / "grail_state" / "discriminator" / "runtime.json").read_text())
    assert state["updates"] == 3 + 2 * 2  # the warmup and 2 per training step: none from the 3 evaluations


@pytest.mark.slow
def test_a_frozen_discriminator_starts_from_a_trained_one_and_never_changes(tmp_path, tiny_model):  # noqa: F811
    first = tmp_path / "first"
    first.mkdir()
    disc = {"name": "ngram", "warmup_steps": 20, "minibatch_size": 8, "extra_negatives": 1}
    path = write_recipe(first, tiny_model, trainer={"max_steps": 2}, output={"save_strategy": "no"},
                        discriminator=disc, **GRAIL)  # fmt: skip
    run_training(load_recipe(path), console=False, evaluate=False)
    state = first / "out" / "final" / "grail_state" / "discriminator"
    assert (state / "runtime.json").is_file()  # kept with the final model although no checkpoint was saved
    trained = json.loads((state / "runtime.json").read_text())["updates"]

    second = tmp_path / "second"
    second.mkdir()
    frozen = {"name": "ngram", "train": False, "init_from": str(first / "out" / "final")}
    path = write_recipe(second, tiny_model, trainer={"max_steps": 2}, output={"save_steps": 2}, discriminator=frozen,
                        **GRAIL)  # fmt: skip
    run_training(load_recipe(path), console=False, evaluate=False)
    after = second / "out" / "checkpoint-2" / "grail_state" / "discriminator"
    assert json.loads((after / "runtime.json").read_text())["updates"] == trained
    probe = [f"CHOSEN: option {i} of 4: title {i}\n\nviewer {i}" for i in range(20)]
    scores = []
    for folder in (state, after):
        context = discriminator_context(train=False)
        context.discriminator.load_state(folder)
        scores.append(context.discriminator.score(probe))
    assert scores[0] == scores[1] and len(set(scores[0])) > 1  # trained (not constant) and unchanged
