"""What ``--resume`` may do: continue the run it was trained as, or nothing.

- A run that is already complete (``run.json`` says ``completed``, or its newest checkpoint reached the
  recipe's last step and ``final/`` is saved) is left exactly as it is: :class:`RunComplete` says so and the
  command exits 0.
- The checkpoint's resolved recipe, installed plugin versions and the fingerprints of the files the recipe
  names (recorded in its marker; ``run.json`` has the recipe for older checkpoints) are compared with the
  current ones. Any difference (a new learning rate, another reward set, a new plugin version, an edited
  data or system-prompt file) is refused with a readable diff, unless ``--accept-recipe-changes``
  says to go on; the accepted changes are then recorded in ``run.json``'s session. Extending a finished run
  (a larger ``trainer.max_steps``) is such an accepted change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.training.checkpoints import read_marker, read_trainer_state, resolve_resume
from grail_rl.training.run_folder import read_run

# Fields that say how to treat the folder, not how to train: a change to them is not a change of the run.
NOT_PART_OF_THE_RUN = frozenset({"output.overwrite"})


class RunComplete(GrailError):
    """``--resume`` on a finished run: nothing to do, and that is not a failure."""

    exit_code = 0


@dataclass
class ResumePlan:
    checkpoint: Path | None
    accepted: list[str] = field(default_factory=list)


def plugin_versions(plugins: Any) -> dict[str, str | None]:
    """Installed plugin name -> its distribution's version, as recorded beside runs and checkpoints."""
    return {p.name: p.version for p in plugins.loaded}


def checkpoint_identity(loaded: Any) -> dict[str, Any]:
    """What a checkpoint records about how it was trained (written into its marker): the resolved recipe, the
    plugin versions, and a fingerprint of every file or folder the recipe names (data, prompt files, the
    model folder), since an edited file behind an unchanged path is a changed run too."""
    resolved = loaded.resolved()
    return {"recipe": resolved, "plugins": plugin_versions(loaded.plugins), "inputs": input_fingerprints(resolved)}


# A file up to this size is hashed whole; a larger one by its size and its first and last chunks.
_WHOLE = 256 * 1024 * 1024
_CHUNK = 16 * 1024 * 1024


def fingerprint(path: Path) -> str:
    """Content fingerprint of a file (xxh3), or of a folder's file names and sizes."""
    import xxhash

    digest = xxhash.xxh3_64()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{child.relative_to(path).as_posix()}\0{child.stat().st_size}\n".encode())
        return "folder:" + digest.hexdigest()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as fh:
        if size <= _WHOLE:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        else:
            digest.update(fh.read(_CHUNK))
            fh.seek(size - _CHUNK)
            digest.update(fh.read(_CHUNK))
    return digest.hexdigest()


def input_fingerprints(resolved: dict[str, Any]) -> dict[str, dict[str, str]]:
    """recipe field -> {path, fingerprint} for every absolute path in the recipe that exists (not output.*)."""
    found = {}
    synthetic = (resolved.get("data") or {}).get("synthetic") or {}
    for field_path, value in flatten(resolved).items():
        if field_path.startswith("output.") or not isinstance(value, str) or not value.startswith("/"):
            continue
        path = Path(value)
        if field_path == "data.synthetic.cache_dir":  # the cache holds other sets too: only this one counts
            path = path / f"n{synthetic.get('n')}-seed{synthetic.get('seed')}"
            value = str(path)
        try:
            if path.is_file() or path.is_dir():
                found[field_path] = {"path": value, "fingerprint": fingerprint(path)}
        except OSError:
            continue
    return found


def input_changes(before: dict[str, Any], resolved: dict[str, Any]) -> list[str]:
    """Files and folders the recipe names whose content changed since the checkpoint (same path)."""
    now = input_fingerprints(resolved)
    lines = []
    for field_path, old in sorted(before.items()):
        new = now.get(field_path)
        if isinstance(old, dict) and new and new["path"] == old.get("path") and new["fingerprint"] != old.get("fingerprint"):
            lines.append(f"{field_path}: the content of {new['path']} changed")
    return lines


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaf values: ``{"trainer.learning_rate": 1e-6, "rewards[0].name": "accuracy"}``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        out = {f"{prefix}[]": len(value)}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _show(value: Any) -> str:
    return "(not set)" if value is _MISSING else json.dumps(value, default=str)


_MISSING = object()


def recipe_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``field: old -> new`` for every field that differs (list lengths as ``rewards[]: 2 -> 1``)."""
    old, new = flatten(before), flatten(after)
    lines = []
    for key in sorted(set(old) | set(new)):
        if key in NOT_PART_OF_THE_RUN:
            continue
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if a != b:
            lines.append(f"{key}: {_show(a)} -> {_show(b)}")
    return lines


def plugin_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = []
    for name in sorted(set(before) | set(after)):
        a = before.get(name, "(not installed)")
        b = after.get(name, "(not installed)")
        if a != b:
            lines.append(f"plugin {name}: {a} -> {b}")
    return lines


def recorded_identity(
    checkpoint: Path | None, run: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any]]:
    """(recipe, plugins, input fingerprints) the checkpoint was trained with; from run.json for checkpoints
    without them (which recorded no fingerprints)."""
    marker = read_marker(checkpoint) if checkpoint is not None else {}
    if isinstance(marker.get("recipe"), dict):
        return marker["recipe"], dict(marker.get("plugins") or {}), dict(marker.get("inputs") or {})
    sessions = run.get("sessions") or [{}]
    plugins = {p.get("name"): p.get("version") for p in sessions[-1].get("plugins") or [] if isinstance(p, dict)}
    return run.get("recipe"), plugins, {}


def refuse_if_complete(output_dir: Path, loaded: Any, *, accept_changes: bool) -> None:
    """Raise :class:`RunComplete` for a run recorded as completed, before anything in it is touched."""
    run = read_run(output_dir) or {}
    if run.get("status") == "completed" and not accept_changes:
        raise RunComplete(_complete_message(output_dir, loaded, run.get("global_step")))


def plan_resume(output_dir: Path, resume: str | bool, loaded: Any, *, accept_changes: bool) -> ResumePlan:
    """The checkpoint to continue from, after the checks of the module docstring."""
    refuse_if_complete(output_dir, loaded, accept_changes=accept_changes)
    run = read_run(output_dir) or {}
    checkpoint = resolve_resume(output_dir, resume)
    recipe, plugins, inputs = recorded_identity(checkpoint, run)
    resolved = loaded.resolved()
    changes = recipe_changes(recipe, resolved) if recipe is not None else []
    changes += plugin_changes(plugins, plugin_versions(loaded.plugins)) if plugins else []
    changes += input_changes(inputs, resolved)
    if changes and not accept_changes:
        shown = "\n".join(f"  {line}" for line in changes[:40])
        more = f"\n  ... and {len(changes) - 40} more" if len(changes) > 40 else ""
        raise GrailError(
            f"--resume: the recipe or plugins differ from those {checkpoint.name if checkpoint else 'the run'} "
            f"was trained with:\n{shown}{more}\nresume with the same recipe, or pass --accept-recipe-changes to "
            "continue with the new values (they are recorded in run.json)"
        )
    state = read_trainer_state(checkpoint) if checkpoint is not None else {}
    target = loaded.recipe.trainer.max_steps if loaded.recipe.trainer.max_steps > 0 else state.get("max_steps")
    step = state.get("global_step")
    if isinstance(step, int) and isinstance(target, int) and step >= target and (output_dir / "final").exists():
        raise RunComplete(_complete_message(output_dir, loaded, step))
    return ResumePlan(checkpoint, changes)


def _complete_message(output_dir: Path, loaded: Any, step: Any) -> str:
    return (
        f"{output_dir} holds a complete run (step {step if step is not None else '?'}); --resume changed nothing. "
        f"Evaluate it with: grail-rl evaluate {loaded.path}; train it further with a larger trainer.max_steps "
        "and --accept-recipe-changes; or start again with output.overwrite: true"
    )
