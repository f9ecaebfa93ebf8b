"""The run's output folder: who may write into it, and the metadata written beside every run.

A folder that already holds a run is refused unless the run is resumed or ``output.overwrite`` is set; a
folder holding anything else is never emptied. ``evaluations/`` (written by ``grail-rl evaluate`` for the
base model or a checkpoint) does not make a folder foreign, so the base model can be measured before
training; an overwrite removes only the replaced run's checkpoint evaluations from it. ``run.json`` records the resolved recipe, the plugins with
their versions, package versions, the git commit and every session (first start and each resume).
Nothing secret goes in: tokens come only from the environment and are never read here.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError

RUN_FILE = "run.json"
EVALUATIONS_DIR = "evaluations"
RECIPE_FILE = "recipe.resolved.json"
PACKAGES = (
    "grail-rl",
    "torch",
    "trl",
    "transformers",
    "datasets",
    "accelerate",
    "peft",
    "huggingface-hub",
    "vllm",
)


class OutputFolderError(GrailError):
    """The output folder cannot be used for this run."""


def holds_run(path: Path) -> bool:
    return (path / RUN_FILE).is_file() or any(path.glob("checkpoint-*"))


def prepare_output_dir(path: Path, *, resume: bool, overwrite: bool) -> None:
    """Create ``path`` or check that this run may use it (see the module docstring)."""
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"output.dir: {path} is a file, not a folder")
    if not path.exists() or not [child for child in path.iterdir() if child.name != EVALUATIONS_DIR]:
        if resume:
            raise OutputFolderError(f"--resume: {path} holds no run to resume")
        _mkdir(path)
        return
    if resume:
        if not holds_run(path):
            raise OutputFolderError(f"--resume: {path} does not hold a grail-rl run")
        return
    if not holds_run(path):
        raise OutputFolderError(
            f"output.dir: {path} is not empty and holds no grail-rl run; choose an empty or new folder"
        )
    if not overwrite:
        raise OutputFolderError(
            f"output.dir: {path} already holds a run; pass --resume to continue it, or "
            "--set output.overwrite=true to replace it"
        )
    for child in path.iterdir():
        if child.name != EVALUATIONS_DIR:
            _remove(child)
    # Evaluations of the base model or other folders stay valid; those of the replaced checkpoints do not.
    for child in (path / EVALUATIONS_DIR).glob("checkpoint-*"):
        _remove(child)


def _remove(child: Path) -> None:
    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"output.dir: cannot create {path}: {exc.strerror}") from None


def package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def git_commit(folder: Path) -> dict[str, Any] | None:
    """The commit (and whether the tree is dirty) of the repository holding ``folder``, if any."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def plugin_list(plugins: Any) -> list[dict[str, Any]]:
    return [p.as_dict() for p in plugins.loaded]


def write_json_atomically(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def record_session(
    loaded: Any, output_dir: Path, *, resumed_from: Path | None, decided: dict[str, Any]
) -> dict:
    """Write ``recipe.resolved.json`` and add this session to ``run.json``; return the session entry."""
    import grail_rl

    resolved = loaded.resolved()
    session = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": [os.path.basename(sys.argv[0]), *sys.argv[1:]],
        "recipe_file": str(loaded.path.resolve()),
        "overrides": list(loaded.overrides),
        "resumed_from": str(resumed_from) if resumed_from else None,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "host": platform.node(),
        "packages": package_versions(),
        "git": {
            "grail_rl": git_commit(Path(grail_rl.__file__).parent),
            "recipe": git_commit(loaded.path.resolve().parent),
        },
        "plugins": plugin_list(loaded.plugins),
        "plugin_failures": [f.message() for f in loaded.plugins.failures],
        "grail_rl_decided": decided,
    }
    run_path = output_dir / RUN_FILE
    run: dict[str, Any] = {"sessions": []}
    if run_path.is_file() and resumed_from is not None:
        run = json.loads(run_path.read_text(encoding="utf-8"))
    run["recipe"] = resolved
    run["sessions"].append(session)
    write_json_atomically(output_dir / RECIPE_FILE, resolved)
    write_json_atomically(run_path, run)
    return session


def update_run(output_dir: Path, **fields: Any) -> None:
    """Add or replace top-level fields of ``run.json`` (e.g. the final status and metrics)."""
    run_path = output_dir / RUN_FILE
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else {"sessions": []}
    run.update(fields)
    write_json_atomically(run_path, run)
