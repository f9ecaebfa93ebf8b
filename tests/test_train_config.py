"""Every trainer setting of the recipe reaches trl.GRPOConfig: the schema walk and value round-trip."""

from __future__ import annotations

import dataclasses
import enum
import subprocess
import sys

import pytest

from grail_rl.errors import GrailError
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.config import TRL_SECTIONS, build_grpo_config, grpo_kwargs, trl_mapping
from tests.conftest_training import write_recipe

# A non-default value for every TRL field the recipe marks, so a dropped field cannot look like it arrived.
CHANGED = {
    "trainer": {
        "learning_rate": 3.0e-5, "lr_scheduler_type": "cosine", "lr_scheduler_kwargs": {"num_cycles": 0.4},
        "warmup_steps": 3, "optim": "adamw_torch", "weight_decay": 0.01, "adam_beta1": 0.8, "adam_beta2": 0.98,
        "adam_epsilon": 1.0e-7, "max_grad_norm": 0.5, "num_train_epochs": 2.0, "max_steps": 11,
        "per_device_train_batch_size": 6, "per_device_eval_batch_size": 6, "gradient_accumulation_steps": 2,
        "steps_per_generation": 2, "num_generations": 3, "num_generations_eval": 2, "max_completion_length": 33,
        "temperature": 0.7, "top_p": 0.9, "top_k": 5, "min_p": 0.05, "repetition_penalty": 1.1,
        "generation_kwargs": {"no_repeat_ngram_size": 3}, "beta": 0.02, "epsilon": 0.25, "epsilon_high": 0.28,
        "num_iterations": 2, "loss_type": "dr_grpo", "scale_rewards": "batch", "mask_truncated_completions": True,
        "importance_sampling_level": "sequence", "seed": 13, "bf16": False, "fp16": False, "use_cpu": False,
        "activation_checkpointing": False, "use_vllm": True, "eval_strategy": "steps", "eval_steps": 4, "eval_on_start": True,
        "vllm_mode": "server", "vllm_server_base_url": "http://10.0.0.1:8001", "vllm_server_host": "10.0.0.1",
        "vllm_server_port": 8001, "vllm_gpu_memory_utilization": 0.5, "vllm_tensor_parallel_size": 2,
        "vllm_max_model_length": 4096, "vllm_enable_sleep_mode": True, "dataloader_num_workers": 0,
        "shuffle_dataset": False, "disable_dropout": True, "torch_compile": False, "ddp_timeout": 900,
        "chat_template_kwargs": {"enable_thinking": False},
    },
    "logging": {"report_to": ["none"], "logging_steps": 3, "logging_first_step": True, "run_name": "r1",
                "project": "p1", "log_completions": True, "num_completions_to_print": 2},
    "hub": {"push_to_hub": False, "hub_model_id": "me/model", "hub_private_repo": True, "hub_strategy": "checkpoint"},
    "output": {"save_strategy": "steps", "save_steps": 7, "save_total_limit": 3},
}  # fmt: skip


def test_every_marked_field_is_a_real_grpoconfig_field():
    from trl import GRPOConfig

    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    mapping = trl_mapping()
    assert len(mapping) > 60
    missing = [f"{section}.{field} -> {name}" for section, field, name in mapping if name not in names]
    assert not missing, f"recipe fields that GRPOConfig does not have: {missing}"
    # every schema field is either marked for TRL or deliberately handled by grail-rl
    for section, block in TRL_SECTIONS.items():
        for field in block.model_fields:
            assert (section, field) in {(s, f) for s, f, _ in mapping} or field in GRAIL_FIELDS[section], field


GRAIL_FIELDS = {
    "trainer": set(),
    "logging": {"save_completions"},
    "hub": {"revision_per_save", "push_data_files"},
    "output": {"overwrite"},
}


def _plain(value):
    return value.value if isinstance(value, enum.Enum) else value


def test_every_recipe_value_arrives_in_the_built_config(tmp_path, tiny_model_path, monkeypatch):
    for section, values in CHANGED.items():
        block = TRL_SECTIONS[section]
        assert set(values) == {f for f in block.model_fields if f not in GRAIL_FIELDS[section]} - {"dir"}, section
    path = write_recipe(tmp_path, tiny_model_path, **CHANGED)
    # CHANGED sets every field at once, so it contradicts itself (vLLM server and colocate settings, hub
    # settings without a push, max_steps with num_train_epochs); only the cross-field checks would mind.
    monkeypatch.setattr("grail_rl.recipe.loader.cross_field_problems", lambda recipe: [])
    loaded = load_recipe(path)
    config = build_grpo_config(loaded.recipe, reward_weights=[1.0])
    for section, field, name in trl_mapping():
        want = getattr(getattr(loaded.recipe, section), field)
        got = _plain(getattr(config, name))
        if name == "output_dir":
            assert got == str(want)
        elif name == "report_to":
            assert got in ([], ["none"], "none")
        elif isinstance(want, list):
            assert [_plain(v) for v in got] == want, name
        else:
            assert got == want, f"{section}.{field}: recipe {want!r}, GRPOConfig.{name} {got!r}"
    assert config.reward_weights == [1.0]
    assert config.hub_token is None  # the token only ever comes from the environment


@pytest.fixture
def tiny_model_path(tmp_path):
    return tmp_path / "not-needed-for-config"  # the config never loads the model


def test_unset_bf16_is_off_without_a_gpu(tmp_path, tiny_model_path):
    loaded = load_recipe(write_recipe(tmp_path, tiny_model_path, trainer={"use_cpu": False}))
    assert loaded.recipe.trainer.bf16 is None
    assert build_grpo_config(loaded.recipe).bf16 is False


def test_trl_rejections_are_one_line_user_errors(tmp_path, tiny_model_path):
    loaded = load_recipe(write_recipe(tmp_path, tiny_model_path, trainer={"temperature": 0.9}))
    kwargs = grpo_kwargs(loaded.recipe)
    assert kwargs["temperature"] == 0.9
    with pytest.raises(GrailError, match="trainer settings rejected by TRL"):
        build_grpo_config(loaded.recipe, generation_batch_size=3, steps_per_generation=2)


def test_config_module_does_not_import_trl():
    code = "import sys, grail_rl.training.config as c; print(any(m in sys.modules for m in ('trl', 'torch')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
