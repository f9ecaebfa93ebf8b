"""Recipes that used to validate and then do the wrong thing: non-finite numbers, settings that would be
ignored, schedule arguments transformers rejects only after loading, alias bombs and files that never end."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from grail_rl.errors import RecipeError
from grail_rl.recipe.consistency import SCHEDULER_ARGUMENTS, SCHEDULER_REQUIRED
from grail_rl.recipe.loader import load_recipe

BASE = """\
model: {name_or_path: some/model}
data: {synthetic: {n: 100}}
rewards: [{name: accuracy}]
output: {dir: out}
"""


def recipe(tmp_path, extra: str = "", base: str = BASE):
    path = tmp_path / "recipe.yaml"
    path.write_text(base + textwrap.dedent(extra), encoding="utf-8")
    return path


def problems(tmp_path, extra: str = "", sets=()) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe(tmp_path, extra), sets=list(sets))
    return str(info.value)


@pytest.mark.parametrize(
    "where, value",
    [
        ("trainer: {temperature: VALUE}", ".inf"),
        ("trainer: {learning_rate: VALUE}", ".nan"),
        ("trainer: {adam_beta1: VALUE}", ".nan"),
        ("trainer: {warmup_steps: VALUE}", ".inf"),
        ("trainer: {lr_scheduler_type: cosine, lr_scheduler_kwargs: {num_cycles: VALUE}}", ".nan"),
        ("trainer: {generation_kwargs: {typical_p: VALUE}}", "-.inf"),
        ("data: {synthetic: {n: 100}, train: [{path: recipe.yaml, weight: VALUE, format: jsonl}]}", ".inf"),
    ],
)
def test_non_finite_numbers_are_refused_and_said_so(tmp_path, where, value):
    text = BASE.replace("data: {synthetic: {n: 100}}\n", "") if where.startswith("data") else BASE
    path = tmp_path / "recipe.yaml"
    path.write_text(text + where.replace("VALUE", value) + "\n", encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert "NaN and infinities are not allowed" in message, message
    assert "less than" not in message


def test_non_finite_plugin_options_and_weights_are_refused(tmp_path):
    message = problems(tmp_path, "", sets=["rewards[0].weight=.nan"])
    assert "rewards[0].weight: must be a finite number, got .nan" in message
    path = recipe(tmp_path, base=BASE.replace("[{name: accuracy}]", "[{name: length, correct_max: .inf}]"))
    with pytest.raises(RecipeError, match="finite number"):
        load_recipe(path)


def test_a_negative_or_too_large_seed_is_caught_by_validate(tmp_path):
    assert "trainer.seed" in problems(tmp_path, "trainer: {seed: -1}")
    assert "trainer.seed" in problems(tmp_path, "trainer: {seed: 4294967296}")


@pytest.mark.parametrize(
    "trainer, expect",
    [
        ("{lr_scheduler_type: cosine, lr_scheduler_kwargs: {num_cyles: 2}}", "'num_cyles' is not an argument"),
        ("{lr_scheduler_type: constant, lr_scheduler_kwargs: {power: 2}}", "takes no extra arguments"),
        ("{lr_scheduler_type: cosine_with_min_lr}", "needs min_lr or min_lr_rate"),
        ("{lr_scheduler_type: constant, warmup_steps: 10}", "constant schedule has no warmup"),
        ("{generation_kwargs: {temperature: 0.3}}", "set trainer.temperature instead"),
        ("{generation_kwargs: {max_new_tokens: 9}}", "trainer.max_completion_length"),
    ],
)
def test_scheduler_and_generation_arguments_are_checked_before_loading(tmp_path, trainer, expect):
    assert expect in problems(tmp_path, f"trainer: {trainer}\n")


def test_the_scheduler_table_matches_the_installed_transformers():
    import transformers.optimization as optimization

    for name, allowed in SCHEDULER_ARGUMENTS.items():
        function = optimization.TYPE_TO_SCHEDULER_FUNCTION[optimization.SchedulerType(name)]
        params = inspect.signature(function).parameters
        real = {p for p in params if p not in ("optimizer", "num_warmup_steps", "num_training_steps", "last_epoch")}
        assert set(allowed) == real, name
        for required in SCHEDULER_REQUIRED.get(name, ()):
            assert required in real


@pytest.mark.parametrize(
    "extra, field",
    [
        ("trainer: {eval_steps: 5}", "trainer.eval_steps: takes effect only with trainer.eval_strategy: steps"),
        ("output: {dir: out, save_strategy: 'no', save_steps: 5}", "output.save_steps"),
        ("trainer: {vllm_server_port: 8001}", "trainer.vllm_server_port"),
        ("logging: {num_completions_to_print: 3}", "logging.num_completions_to_print"),
        ("hub: {hub_model_id: me/x}", "hub.hub_model_id"),
        ("hub: {revision_per_save: true}", "hub.revision_per_save"),
        ("trainer: {max_steps: 10, num_train_epochs: 2.0}", "trainer.num_train_epochs"),
    ],
)
def test_a_setting_that_would_be_ignored_is_an_error(tmp_path, extra, field):
    text = BASE.replace("output: {dir: out}\n", "") if extra.startswith("output") else BASE
    path = tmp_path / "recipe.yaml"
    path.write_text(text + extra + "\n", encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert field in str(info.value)


def test_video_stats_without_engagement_stats_is_an_error(tmp_path):
    (tmp_path / "stats.json").write_text("{}")
    extra = "prompt: {sections: [{name: options, video_stats: stats.json}]}\n"
    assert "video_stats is read only with engagement: stats" in problems(tmp_path, extra)


def _cli(*args, cwd, timeout=20):
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "grail_rl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    text, previous = "a: &a [x, x, x, x, x, x, x, x, x]\n", "a"
    for name in "bcdefghij":
        text += f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
        previous = name
    assert len(text) < 1500
    (tmp_path / "bomb.yaml").write_text(text)
    started = time.perf_counter()
    out = _cli("validate", "bomb.yaml", cwd=tmp_path)
    assert time.perf_counter() - started < 15
    assert out.returncode == 2 and "expands to more than" in out.stderr and "Traceback" not in out.stderr


def test_deeply_nested_yaml_is_one_line(tmp_path):
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    out = _cli("validate", "deep.yaml", cwd=tmp_path)
    assert out.returncode == 2 and "nested too deeply" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_device_or_fifo_as_recipe_is_refused_without_reading(tmp_path, special):
    if special == "fifo":
        os.mkfifo(tmp_path / "fifo.yaml")
        special = "fifo.yaml"
    out = _cli("validate", special, cwd=tmp_path)
    assert out.returncode == 2 and "not a regular file" in out.stderr, out.stderr


@pytest.mark.parametrize("field", ["data.train[0].path", "prompt.system_prompt_file", "model.chat_template_file"])
def test_a_fifo_or_device_as_data_or_prompt_file_is_refused_by_validate(tmp_path, field):
    os.mkfifo(tmp_path / "pipe")
    base = BASE.replace("data: {synthetic: {n: 100}}\n", "data: {train: [{path: recipe.yaml, format: jsonl}]}\n")
    path = recipe(tmp_path, base=base)
    for target in ("pipe", "/dev/zero"):
        with pytest.raises(RecipeError, match="not a regular file"):
            load_recipe(path, sets=[f"{field}={target}"])


def test_relative_paths_are_normalised(tmp_path):
    (tmp_path / "recipes" / "demo").mkdir(parents=True)
    path = tmp_path / "recipes" / "demo" / "recipe.yaml"
    path.write_text(BASE.replace("output: {dir: out}", "output: {dir: ../../runs/demo}"))
    resolved = load_recipe(path).resolved()
    assert resolved["output"]["dir"] == str(tmp_path / "runs" / "demo")
    assert ".." not in json.dumps(resolved)
