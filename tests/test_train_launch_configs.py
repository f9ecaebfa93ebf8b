"""The shipped launch files: accelerate configs load as accelerate configs; SLURM templates are valid bash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

LAUNCH = Path(__file__).resolve().parents[1] / "recipes" / "launch"


@pytest.mark.parametrize("name,kind", [("ddp", "MULTI_GPU"), ("zero2", "DEEPSPEED"), ("zero3", "DEEPSPEED"),
                                       ("fsdp", "FSDP")])  # fmt: skip
def test_accelerate_configs_load(name, kind):
    from accelerate.commands.config.config_args import ClusterConfig

    path = LAUNCH / f"{name}.yaml"
    assert yaml.safe_load(path.read_text())["distributed_type"] == kind
    config = ClusterConfig.from_yaml_file(str(path))
    assert config.distributed_type.value == kind
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == int(name[-1])


@pytest.mark.parametrize("name", ["train.slurm", "train_vllm_server.slurm"])
def test_slurm_templates_are_valid_bash_and_launch_grail_rl(name):
    path = LAUNCH / name
    subprocess.run(["bash", "-n", str(path)], check=True)
    text = path.read_text()
    assert "-m grail_rl train" in text and "launch.num_processes=${WORLD}" in text
    assert "HF_TOKEN=" not in text
    if "vllm" in name:
        assert "trl vllm-serve" in text and "--vllm_mode server" in text
        assert ":${VLLM_PORT}/health\"" in text  # the path TRL's VLLMClient checks (no trailing slash)
