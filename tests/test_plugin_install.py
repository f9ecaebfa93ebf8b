"""A third-party plugin installed with pip into a fresh environment is found; a broken one beside it is
reported by name while everything else still lists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

BROKEN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "grail-rl-broken"
version = "9.9.9"

[project.entry-points.grail_rl]
broken = "grail_rl_broken"

[tool.setuptools]
packages = ["grail_rl_broken"]
"""


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(env or {})}
    full_env.pop("PYTHONPATH", None)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=full_env)


def fresh_venv(root: Path) -> Path:
    """A new virtual environment in ``root/env`` that sees grail-rl and its dependencies (not its plugins)."""
    env = root / "env"
    # Without its own pip/setuptools: the parent's (new enough to build wheels) are reused below.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).stdout.strip())
    # Reuse the installed grail-rl and its ~1.5 GB of dependencies instead of downloading them again;
    # addsitedir also processes the .pth of grail-rl's editable install.
    parent_site = sysconfig.get_paths()["purelib"]
    (site / "_grail_rl_parent.pth").write_text(f"import site; site.addsitedir({parent_site!r})\n")
    return env


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory) -> Path:
    """A new virtual environment that sees grail-rl and its dependencies, with both plugins pip-installed."""
    root = tmp_path_factory.mktemp("fresh")
    env = fresh_venv(root)
    python = env / "bin" / "python"

    broken = root / "broken"
    (broken / "grail_rl_broken").mkdir(parents=True)
    (broken / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (broken / "grail_rl_broken" / "__init__.py").write_text("import a_module_that_does_not_exist\n")

    for package in (REPO_ROOT / "plugins" / "grail-rl-brevity", broken):
        result = _run(
            [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", str(package)], root
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return env


def test_installed_plugin_is_listed_and_the_broken_one_is_reported(fresh_env, tmp_path):
    python = str(fresh_env / "bin" / "python")
    result = _run([python, "-m", "grail_rl", "list-rewards", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    rewards = {r["name"]: r for r in json.loads(result.stdout)}
    assert rewards["think_brevity"]["distribution"] == "grail-rl-brevity"
    assert rewards["think_brevity"]["version"] == "0.1.0"
    assert rewards["think_brevity"]["plugin"] == "brevity"
    assert "accuracy" in rewards  # the built-ins keep working beside the broken plugin
    assert "plugin 'broken' (grail-rl-broken 9.9.9) failed to load: ModuleNotFoundError" in result.stderr

    plugins = json.loads(_run([python, "-m", "grail_rl", "plugins", "--json"], tmp_path).stdout)
    [failure] = plugins["failed"]
    assert (failure["plugin"], failure["distribution"], failure["version"]) == ("broken", "grail-rl-broken", "9.9.9")
    assert "brevity" in {p["name"] for p in plugins["loaded"]}


def test_installed_plugin_validates_in_a_recipe(fresh_env, tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    (tmp_path / "recipe.yaml").write_text(
        textwrap.dedent(
            """\
            model: {name_or_path: ./model}
            data: {train: [{path: train.jsonl}]}
            rewards:
              - name: accuracy
              - name: think_brevity
                weight: 0.2
                max_words: 30
            trainer: {per_device_train_batch_size: 8, num_generations: 8}
            output: {dir: out}
            """
        )
    )
    python = str(fresh_env / "bin" / "python")
    result = _run([python, "-m", "grail_rl", "validate", "recipe.yaml", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    brevity = json.loads(result.stdout)["rewards"][1]
    assert brevity == {"name": "think_brevity", "weight": 0.2, "on_fault": "stop", "max_words": 30, "missing_think": None}

    bad = _run([python, "-m", "grail_rl", "validate", "recipe.yaml", "--set", "rewards[1].max_words=0"], tmp_path)
    assert bad.returncode == 2
    assert "rewards[1].max_words: Input should be greater than or equal to 1" in bad.stderr


def test_the_plugin_passes_its_own_tests_there(fresh_env):
    python = str(fresh_env / "bin" / "python")
    tests = REPO_ROOT / "plugins" / "grail-rl-brevity" / "tests"
    result = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)], tests.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
