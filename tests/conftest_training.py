"""Helpers for the training tests: the tiny model (built once per session), toy rows, recipe files.

Imported by the test modules (``from tests.conftest_training import ...``); fixtures defined here become
available to a module that imports them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from grail_rl.models.tiny import ensure_tiny_model

    return ensure_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def toy_rows(n: int, n_options: int = 3) -> list[dict[str, Any]]:
    """Short chat prompts with the columns build_split produces (fast steps on the tiny model)."""
    return [
        {
            "prompt": [
                {"role": "system", "content": "Answer with <answer>N</answer>."},
                {"role": "user", "content": f"OPTIONS\n1. first\n2. second\n3. third\nviewer {i}"},
            ],
            "gold_index": 1 + i % n_options,
            "n_options": n_options,
            "issue": "gun_control" if i % 2 else "minimum_wage",
            "participant_study": f"study{1 + i % 3}",
            "opinion_direction": "increase",
        }
        for i in range(n)
    ]


def toy_dataset(n: int = 16):
    import datasets

    return datasets.Dataset.from_list(toy_rows(n))


def write_recipe(folder: Path, model_dir: Path, *, trainer: dict | None = None, output: dict | None = None,
                 **sections: Any) -> Path:
    """A small CPU recipe; ``trainer``/``output`` update those sections, other keywords replace sections."""
    recipe: dict[str, Any] = {
        "model": {"name_or_path": str(model_dir), "dtype": "float32"},
        "data": {"synthetic": {"n": 60, "seed": 1, "cache_dir": str(folder / "synth")}, "max_eval_samples": 6},
        "rewards": [{"name": "accuracy"}],
        "trainer": {
            "max_steps": 4, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4,
            "num_generations": 4, "max_completion_length": 8, "learning_rate": 1.0e-3, "optim": "adamw_torch",
            "use_cpu": True, "seed": 7, **(trainer or {}),
        },
        "logging": {"logging_steps": 1},
        "output": {"dir": str(folder / "out"), **(output or {})},
        **sections,
    }  # fmt: skip
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def cli_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def run_cli(*args: str, cwd: Path, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grail_rl", *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def lock_held_elsewhere(folder: Path) -> Iterator[None]:
    """Another process holds grail-rl's folder lock on ``folder`` (as a running train or evaluate would) until
    the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from pathlib import Path; from grail_rl.training.folder_lock import FolderLock; "
        f"FolderLock(Path({str(folder)!r})).acquire(); print('held', flush=True); time.sleep(120)")],
        stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
