"""The metadata written beside every run, and how grail-rl recognises a folder as one of its runs.

``run.json`` records the resolved recipe, the plugins with their versions, package versions, the git
commit and every session (first start and each resume), and the run's status as it goes: ``starting``,
``running`` (with ``training_started``), ``trained``, ``completed``, or ``failed`` / ``interrupted`` with
the error and how to resume. It carries ``"format": "grail-rl run"``: that, not a file or folder name, is
what makes a folder a grail-rl run (:func:`read_run`). Who may use the folder is decided in
:mod:`grail_rl.training.output_claim`. Nothing secret goes in: tokens come only from the environment and
are never read here.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from grail_rl.files import write_json_atomically
from grail_rl.run_layout import RECIPE_FILE, RUN_FILE

RUN_FORMAT = "grail-rl run"
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


def read_run(folder: Path) -> dict[str, Any] | None:
    """The run record of ``folder`` when grail-rl wrote it, else None (no file, another tool's run.json).

    Runs recorded before the format key existed are recognised by their own shape: a list of sessions
    beside the resolved recipe.
    """
    path = folder / RUN_FILE
    try:
        if not path.is_file() or path.stat().st_size > 64 * 1024 * 1024:
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    if record.get("format") == RUN_FORMAT:
        return record
    if isinstance(record.get("sessions"), list) and isinstance(record.get("recipe"), dict):
        return record
    return None


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


def record_session(
    loaded: Any, output_dir: Path, *, resumed_from: Path | None, changes: list[str] | None = None
) -> dict:
    """Write ``recipe.resolved.json`` and add this session to ``run.json`` (status ``starting``); return the
    session entry. ``changes``: the recipe changes a resume accepted (recorded in the session)."""
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
    }
    if changes:
        session["accepted_recipe_changes"] = list(changes)
    run: dict[str, Any] = {"sessions": []}
    if resumed_from is not None:
        run = read_run(output_dir) or run
    run.update(format=RUN_FORMAT, status="starting", recipe=resolved)
    run.pop("error", None)
    run.setdefault("sessions", []).append(session)
    write_json_atomically(output_dir / RECIPE_FILE, resolved)
    write_json_atomically(output_dir / RUN_FILE, run)
    return session


def update_run(output_dir: Path, *, session: dict[str, Any] | None = None, **fields: Any) -> None:
    """Add or replace top-level fields of ``run.json`` (e.g. the final status and metrics); ``session``
    fields go into the current (last) session."""
    run = read_run(output_dir) or {"format": RUN_FORMAT, "sessions": []}
    run.update(fields)
    if session and run.get("sessions"):
        run["sessions"][-1].update(session)
    write_json_atomically(output_dir / RUN_FILE, run)
