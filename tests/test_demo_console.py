"""The demo's console: no bare ``step N/N`` line after the last step, no upstream gradient_checkpointing
FutureWarnings, and the demo recipe stays valid with the settings the warm-up was tuned for."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

from tests.conftest_training import REPO_ROOT


def _state(step: int = 40):
    return SimpleNamespace(is_world_process_zero=True, global_step=step, max_steps=40)


def test_the_closing_log_event_goes_to_the_files_only(tmp_path, capsys):
    from grail_rl.training.callbacks import METRICS_FILE, RunLogCallback

    callback = RunLogCallback(tmp_path, console=True)
    callback.on_log(None, _state(), None, logs={"loss": 0.1, "reward": 0.5, "rewards/format/mean": 0.9})
    callback.on_log(None, _state(), None, logs={"train_runtime": 88.9, "train_loss": 0.0})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("step 40/40 | loss 0.1 | reward 0.5")
    records = [json.loads(line) for line in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert records[-1]["train_runtime"] == 88.9  # still recorded


def test_only_the_upstream_gradient_checkpointing_deprecations_are_silenced(tmp_path):
    from grail_rl.training.callbacks import RunLogCallback

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RunLogCallback(tmp_path, console=False)
        for name in (
            "is_gradient_checkpointing",
            "gradient_checkpointing_disable",
            "gradient_checkpointing_enable",
        ):
            warnings.warn(f"`{name}` is deprecated and will be removed in v6.", FutureWarning, stacklevel=1)
        warnings.warn("`something_else` is deprecated", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["`something_else` is deprecated"]


def test_the_demo_recipe_is_valid_and_turns_activation_checkpointing_off():
    from grail_rl.recipe.loader import load_recipe

    recipe = load_recipe(REPO_ROOT / "recipes" / "demo" / "recipe.yaml").recipe
    assert recipe.trainer.activation_checkpointing is False  # unset, TRL's default warns and recomputes
    assert recipe.trainer.max_completion_length >= 12  # a warmed reply is 9-10 tokens plus the end token
