"""Shared fixtures: the CLI as a real subprocess, recipe files on disk, the real validation data."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

pytest_plugins = ["grail_rl.testing"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def validation_data_dir() -> Path | None:
    """The real GRAIL validation files: $GRAIL_RL_VALIDATION_DIR, or ../shared beside the checkout."""
    env = os.environ.get("GRAIL_RL_VALIDATION_DIR")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "grail-validation"
    return candidate if (candidate / "gun_study1.jsonl").is_file() else None


@pytest.fixture
def validation_dir() -> Path:
    found = validation_data_dir()
    if found is None:
        pytest.skip("real validation data not found (set GRAIL_RL_VALIDATION_DIR or put ../shared beside the repo)")
    return found


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m grail_rl ARGS`` in a real subprocess (cwd = tmp_path unless given)."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120):
        full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "grail_rl", *args],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented YAML recipe into tmp_path and return its path."""

    def write(text: str, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def double(tmp_path: Path):
    """Make OpenAI-compatible servers of our own on 127.0.0.1 (tests/openai_double.py); killed after the test."""
    from tests.openai_double import DoubleServer

    servers: list[DoubleServer] = []

    def make(*args: str) -> DoubleServer:
        servers.append(DoubleServer(tmp_path, *args))
        return servers[-1]

    yield make
    for server in servers:
        server.kill()
