"""Recipe validation: every bad input exits 2 with one clear located message and no traceback."""

from __future__ import annotations

import json
import textwrap

import pytest

from grail_rl.errors import RecipeError
from grail_rl.plugins.manager import load_plugins
from grail_rl.recipe.loader import load_recipe
from tests.plugin_doubles import NeedsDiscriminatorReward, reward_plugin

VALID = """\
model:
  name_or_path: ./model
data:
  train:
    - path: train.jsonl
rewards:
  - name: accuracy
    weight: 1.0
trainer:
  learning_rate: 1e-5
  per_device_train_batch_size: 4
  num_generations: 4
output:
  dir: out
"""


@pytest.fixture
def recipe_dir(tmp_path):
    (tmp_path / "train.jsonl").write_text("", encoding="utf-8")
    return tmp_path


def _load(path, **kwargs):
    return load_recipe(path, plugins=load_plugins(blocked=()), **kwargs).recipe


def _error(path, **kwargs) -> str:
    with pytest.raises(RecipeError) as err:
        _load(path, **kwargs)
    return str(err.value)


def test_valid_recipe_resolves_with_defaults_and_yaml12_numbers(recipe_dir, write_recipe):
    recipe = _load(write_recipe(VALID))
    assert recipe.trainer.learning_rate == 1e-5  # PyYAML alone would read "1e-5" as a string
    assert recipe.trainer.beta == 0.0
    assert recipe.output.dir == recipe_dir / "out"  # relative to the recipe's folder
    assert recipe.data.train[0].path == recipe_dir / "train.jsonl"
    options = recipe.rewards[0].plugin_options()
    assert type(options) is recipe.rewards[0].plugin_spec.config_class


def test_yes_and_on_are_strings_not_booleans(recipe_dir, write_recipe):
    text = VALID + "hub:\n  push_to_hub: yes\n"
    message = _error(write_recipe(text))
    assert "hub.push_to_hub: Input should be a valid boolean, got 'yes' (write true or false)" in message


# (recipe text, the message every line must contain) for each kind of bad input the issue names.
BAD_INPUTS = {
    "yaml_syntax": ("model:\n  name_or_path: [unclosed\n", "recipe.yaml:3:1: invalid YAML"),
    "duplicate_key": (VALID + "trainer:\n  beta: 0.1\n", "recipe.yaml:15: duplicate key 'trainer' (first set at line 9)"),
    "unknown_key_kl_target": (
        VALID.replace("  num_generations: 4\n", "  num_generations: 4\n  kl_target: 0.1\n"),
        "recipe.yaml:13: trainer.kl_target: unknown key 'kl_target'",
    ),
    "unknown_key_clip_range": (
        VALID.replace("  num_generations: 4\n", "  num_generations: 4\n  clip_range: 0.2\n"),
        "trainer.clip_range: unknown key 'clip_range': the policy-ratio clipping range is trainer.epsilon",
    ),
    "unknown_key_evaluation_strategy": (
        VALID.replace("  num_generations: 4\n", "  num_generations: 4\n  evaluation_strategy: steps\n"),
        "trainer.evaluation_strategy: unknown key 'evaluation_strategy': it is called trainer.eval_strategy",
    ),
    "typo_did_you_mean": (
        VALID.replace("learning_rate", "learning_rat"),
        "recipe.yaml:10: trainer.learning_rat: unknown key 'learning_rat'. Did you mean 'learning_rate'?",
    ),
    "string_for_number": (
        VALID.replace("weight: 1.0", "weight: heavy"),
        "recipe.yaml:8: rewards[0].weight: Input should be a valid number, got 'heavy'",
    ),
    "unknown_reward": (
        VALID.replace("name: accuracy", "name: acuracy"),
        "recipe.yaml:7: rewards[0].name: Unknown reward 'acuracy'. Did you mean 'accuracy'? Available: accuracy,",
    ),
    "batch_rule": (
        VALID.replace("per_device_train_batch_size: 4", "per_device_train_batch_size: 3"),
        "trainer.per_device_train_batch_size: per_device_train_batch_size (3) x launch.num_processes (1) x "
        "gradient_accumulation_steps (1) = 3 completions per generation round, which is not divisible by "
        "trainer.num_generations (4); set per_device_train_batch_size to 4",
    ),
    "missing_file": (VALID.replace("train.jsonl", "nowhere.jsonl"), "data.train[0].path: "),
    "empty_file": ("", "recipe.yaml: the recipe is empty"),
    "list_not_mapping": ("- model\n- data\n", "recipe.yaml:1: a recipe must be a mapping of sections"),
    "all_weights_zero": (VALID.replace("weight: 1.0", "weight: 0"), "rewards: every reward has weight 0"),
    "negative_weight": (
        VALID.replace("weight: 1.0", "weight: -1"),
        "rewards[0].weight: Input should be greater than or equal to 0",
    ),
    "missing_section": (VALID.replace("output:\n  dir: out\n", ""), "output: missing required key 'output'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_recipe_exits_2_with_one_located_message(case, recipe_dir, write_recipe, run_cli):
    text, expected = BAD_INPUTS[case]
    path = write_recipe(text)
    result = run_cli("validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0]
    if case == "missing_file":
        assert "nowhere.jsonl: no such file" in errors[0]


def test_valid_recipe_prints_the_resolved_recipe(recipe_dir, write_recipe, run_cli):
    result = run_cli("validate", str(write_recipe(VALID)), "--json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["trainer"]["learning_rate"] == 1e-5
    assert resolved["trainer"]["loss_type"] == "dapo"
    assert resolved["rewards"][0]["name"] == "accuracy"
    assert resolved["rewards"][0]["on_fault"] == "stop"


def test_overrides_are_validated_like_the_file(recipe_dir, write_recipe, run_cli):
    path = str(write_recipe(VALID))
    ok = run_cli("validate", path, "--json", "--set", "trainer.beta=0.04", "--learning_rate", "2e-6", "--bf16")
    assert ok.returncode == 0, ok.stderr
    resolved = json.loads(ok.stdout)
    assert (resolved["trainer"]["beta"], resolved["trainer"]["learning_rate"]) == (0.04, 2e-6)
    assert resolved["trainer"]["bf16"] is True

    bad = run_cli("validate", path, "--set", "trainer.learning_rate=fast")
    assert bad.returncode == 2
    assert "error: --set trainer.learning_rate=fast: trainer.learning_rate: Input should be a valid number" in bad.stderr

    typo = run_cli("validate", path, "--learning_rat", "2e-6")
    assert typo.returncode == 2
    assert "--learning_rat: not a trainer option. Did you mean '--learning_rate'?" in typo.stderr


def test_set_reaches_list_items_and_trl_names_map_to_their_sections(recipe_dir, write_recipe):
    recipe = _load(
        write_recipe(VALID),
        sets=["rewards[0].weight=0.5", "data.seed=7"],
        trainer_args=["--output_dir=elsewhere", "--save_steps", "25"],
    )
    assert recipe.rewards[0].weight == 0.5
    assert recipe.data.seed == 7
    assert recipe.output.save_steps == 25
    assert recipe.output.dir.name == "elsewhere"


def test_reward_options_are_validated_by_the_plugin_config(recipe_dir, write_recipe):
    message = _error(write_recipe(VALID.replace("weight: 1.0", "weight: 1.0\n    allow_bare_number: true")))
    assert "rewards[0].allow_bare_number: unknown key 'allow_bare_number'. Did you mean 'allow_bare_numbers'?" in message


def test_a_reward_that_needs_a_discriminator_needs_the_block(recipe_dir, write_recipe, register_plugin):
    register_plugin(reward_plugin("disc_user", NeedsDiscriminatorReward))
    message = _error(write_recipe(VALID.replace("name: accuracy", "name: needs_disc")))
    assert "rewards[0].name: reward 'needs_disc' needs a discriminator: add a 'discriminator:' block" in message


def test_every_problem_is_reported_in_line_order(recipe_dir, write_recipe):
    text = textwrap.dedent(VALID).replace("learning_rate", "learning_rat").replace("path: train.jsonl", "pth: x")
    lines = _error(write_recipe(text)).splitlines()
    assert [line.split(":")[1] for line in lines] == ["5", "10"]


def test_a_reward_listed_twice_is_rejected(recipe_dir, write_recipe):
    text = VALID.replace("    weight: 1.0\n", "    weight: 1.0\n  - name: format\n  - name: accuracy\n")
    message = _error(write_recipe(text))
    assert "rewards[2].name: reward 'accuracy' is listed twice (rewards[0] and rewards[2])" in message


def test_soft_overlong_limit_must_match_the_trainer(recipe_dir, write_recipe):
    text = VALID.replace("    weight: 1.0\n", "    weight: 1.0\n  - name: soft_overlong\n    max_completion_length: 256\n")
    message = _error(write_recipe(text))
    assert "rewards[1].max_completion_length: 256 differs from trainer.max_completion_length (512)" in message
    recipe = _load(write_recipe(text), trainer_args=["--max_completion_length", "256"])
    assert recipe.rewards[1].max_completion_length == 256


def test_vllm_on_the_cpu_is_rejected(recipe_dir, write_recipe):
    text = VALID.replace("  num_generations: 4\n", "  num_generations: 4\n  use_vllm: true\n  use_cpu: true\n")
    message = _error(write_recipe(text))
    assert "trainer.use_vllm: vLLM generates on GPUs only but trainer.use_cpu is true" in message
    assert _load(write_recipe(text), sets=["trainer.use_cpu=false"]).trainer.use_vllm is True
