"""Atomic, verifiable checkpoints and resume.

The Trainer writes a checkpoint file by file into ``checkpoint-N``; a crash half-way leaves a folder that
looks complete to ``get_last_checkpoint``. Here every checkpoint is written under ``OUTPUT/.staging/``,
stamped with :data:`MARKER` once every rank has finished, and only then renamed to ``OUTPUT/checkpoint-N``
(one ``rename``: atomic on POSIX). Older checkpoints are rotated away only after the new one is in place,
so a failed save (disk full, permission denied; torch reports a full disk as a RuntimeError) loses
nothing that was there before and leaves no staging folder.

The marker lists every file of the checkpoint with its size and xxh3 digest, and the resolved recipe and
plugin versions it was trained with. ``--resume`` checks the newest checkpoint against that list and, when
a file is missing, truncated or corrupt, falls back to the previous complete one with a warning naming the
bad file (:func:`resolve_resume`). Checkpoints written before the list existed get structural checks:
JSON parses, safetensors headers match their file size, torch's zip archives pass their CRC checks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from grail_rl.errors import GrailError

logger = logging.getLogger("grail_rl.training")

MARKER = "grail_checkpoint.json"
STAGING = ".staging"
STATE_DIR = "grail_state"  # extra state (the discriminator, ...) inside a checkpoint: grail_state/<name>/
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(GrailError):
    """A checkpoint could not be written or the one asked for cannot be resumed from."""


class StateSaver(Protocol):
    """Extra training state saved inside every checkpoint and restored on resume (the discriminator, ...).

    The trainer is given a list of savers. ``save_state`` runs on the main process inside the checkpoint's
    staging window, so the state is covered by the checkpoint's manifest and published atomically with it;
    ``load_state`` runs on every process right after the resume point is resolved. State that differs
    between processes must be made equal before it is saved (the discriminator keeps its ranks in step).
    """

    name: str  # the folder under grail_state/ (a lowercase identifier)
    # Optional attributes: ``optional = True`` (a checkpoint without this state starts it afresh, with a
    # warning, instead of being refused) and ``fresh_hint`` (how to start it afresh, said when restoring fails).

    def save_state(self, folder: Path) -> None: ...

    def load_state(self, folder: Path) -> None: ...


def save_extra_state(savers: Sequence[StateSaver], checkpoint: Path) -> None:
    """Write every saver's state into ``checkpoint/grail_state/<name>/`` (a staged checkpoint)."""
    for saver in savers:
        folder = checkpoint / STATE_DIR / saver.name
        folder.mkdir(parents=True, exist_ok=True)
        saver.save_state(folder)


def missing_state(checkpoint: Path, names: Sequence[str]) -> list[str]:
    """The savers among ``names`` whose state ``checkpoint`` does not hold."""
    return [name for name in names if not (checkpoint / STATE_DIR / name).is_dir()]


def restore_extra_state(savers: Sequence[StateSaver], checkpoint: Path, *, fresh: Sequence[str] = ()) -> list[str]:
    """Load every saver's state from ``checkpoint``; the names in ``fresh`` start anew instead.

    Returns the names that started fresh. A saver without state in the checkpoint is an error naming it,
    unless it is in ``fresh`` (the caller's flag to start it anew on purpose) or the saver is ``optional``.
    """
    started_fresh = []
    for saver in savers:
        folder = checkpoint / STATE_DIR / saver.name
        hint = getattr(saver, "fresh_hint", None)
        if saver.name in fresh or (not folder.is_dir() and getattr(saver, "optional", False)):
            started_fresh.append(saver.name)
            continue
        if not folder.is_dir():
            raise CheckpointError(
                f"{checkpoint.name} holds no {saver.name} state ({STATE_DIR}/{saver.name} is missing)"
                + (f"; {hint}" if hint else "")
            )
        try:
            saver.load_state(folder)
        except Exception as exc:
            detail = str(exc) if isinstance(exc, GrailError) else f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            if hint and hint not in detail:
                detail = f"{detail.rstrip('. ')}; {hint}"
            raise CheckpointError(f"could not restore the {saver.name} state from {folder}: {detail}") from exc
    return started_fresh


def is_complete(path: Path) -> bool:
    return (path / MARKER).is_file() and (path / "trainer_state.json").is_file()


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete ``checkpoint-N`` folders of a run, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and is_complete(child):
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def resolve_resume(output_dir: str | Path, resume: str | bool | None) -> Path | None:
    """The checkpoint to resume from: ``True``/"latest" = the newest complete one that verifies (older ones
    are tried in turn, with a warning naming what is wrong with each newer one), a string = that path."""
    if resume in (None, False):
        return None
    if resume is True or resume == "latest":
        found = complete_checkpoints(output_dir)
        if not found:
            raise CheckpointError(f"--resume: {output_dir} holds no complete checkpoint to resume from")
        problems = []
        for checkpoint in reversed(found):
            problem = checkpoint_problem(checkpoint)
            if problem is None:
                for bad in problems:
                    logger.warning("--resume: skipping %s; resuming from %s instead", bad, checkpoint.name)
                return checkpoint
            problems.append(f"{checkpoint.name} ({problem})")
        raise CheckpointError(f"--resume: no checkpoint of {output_dir} can be used: {'; '.join(problems)}")
    path = Path(str(resume)).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"--resume {path}: no such checkpoint folder")
    if not is_complete(path):
        if (path / MARKER).is_file() and read_marker(path).get("final"):
            raise CheckpointError(
                f"--resume {path}: this is the run's final model, not a checkpoint (it has no trainer state to "
                "resume from); give a checkpoint-N folder"
            )
        missing = MARKER if not (path / MARKER).is_file() else "trainer_state.json"
        raise CheckpointError(
            f"--resume {path}: not a complete grail-rl checkpoint (no {missing}); it may be half-written"
        )
    problem = checkpoint_problem(path)
    if problem is not None:
        raise CheckpointError(f"--resume {path}: the checkpoint is damaged: {problem}")
    return path


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's ``trainer_state.json`` (empty when unreadable)."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def read_marker(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's marker (empty when unreadable)."""
    try:
        marker = json.loads((checkpoint / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def file_digest(path: Path) -> str:
    """xxh3-64 of the file's bytes (several GB/s: a checkpoint is re-read once per save and per resume)."""
    import xxhash  # a dependency of datasets

    digest = xxhash.xxh3_64()
    with path.open("rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def file_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under ``folder`` (but the marker): relative path -> size and digest."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER):
        files[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "xxh3": file_digest(path)}
    return files


def checkpoint_problem(folder: Path) -> str | None:
    """What makes a checkpoint or saved model unusable (a missing, truncated or corrupt file), or None."""
    marker = read_marker(folder)
    files = marker.get("files")
    if isinstance(files, dict):
        for name, expected in files.items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            size = path.stat().st_size
            if size != expected.get("size"):
                return f"{name} has {size} bytes, {expected.get('size')} were written"
            if file_digest(path) != expected.get("xxh3"):
                return f"{name} does not match the digest written with it (corrupt)"
        return None
    return structural_problem(folder)


def structural_problem(folder: Path) -> str | None:
    """Checks for files without a recorded digest: JSON parses, safetensors and torch archives are whole."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".safetensors":
                with path.open("rb") as fh:
                    (header_size,) = struct.unpack("<Q", fh.read(8))
                    header = json.loads(fh.read(header_size))
                ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
                if 8 + header_size + max(ends, default=0) != path.stat().st_size:
                    return f"{name} is truncated or padded"
            elif path.suffix in (".pt", ".pth", ".bin"):
                with zipfile.ZipFile(path) as archive:
                    bad = archive.testzip()
                if bad is not None:
                    return f"{name} is corrupt ({bad} fails its CRC check)"
        except (OSError, ValueError, KeyError, TypeError, struct.error, zipfile.BadZipFile, RecursionError) as exc:
            return f"{name} cannot be read ({type(exc).__name__}: {str(exc)[:100]})"
    return None


def write_marker(folder: Path, info: dict[str, Any]) -> None:
    """Stamp ``folder`` as complete: ``info`` plus the manifest of every file in it."""
    marker = {**info, "files": file_manifest(folder)}
    (folder / MARKER).write_text(json.dumps(marker, default=str) + "\n", encoding="utf-8")


def clear_staging(output_dir: str | Path) -> None:
    """Remove what an interrupted save left behind."""
    shutil.rmtree(Path(output_dir) / STAGING, ignore_errors=True)


def _fsync_tree(path: Path) -> None:
    # Flush file contents before the rename publishes them; a rename of unflushed files can survive a
    # power cut as a folder of empty files.
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_atomically(trainer: Any, model: Any, trial: Any, save: Callable[[Any, Any], None]) -> Path:
    """Run the Trainer's ``_save_checkpoint`` (``save``) into a staging folder and publish it atomically."""
    run_dir = Path(trainer._get_output_dir(trial))
    name = f"checkpoint-{trainer.state.global_step}"
    staging_root = run_dir / STAGING
    staged, final = staging_root / name, run_dir / name
    main = trainer.args.should_save
    accelerator = trainer.accelerator
    if main:
        shutil.rmtree(staged, ignore_errors=True)
        staging_root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    # The Trainer derives every path of the save from _get_output_dir; point it at the staging folder.
    trainer._get_output_dir = lambda trial=None: str(staging_root)
    trainer._grail_defer_push = True
    try:
        save(model, trial)
        accelerator.wait_for_everyone()  # every rank has written its RNG state
        if main:
            save_extra_state(getattr(trainer, "_grail_state_savers", ()), staged)
            info = {
                "global_step": trainer.state.global_step,
                "saved_at": time.time(),
                "world_size": accelerator.num_processes,
                **getattr(trainer, "_grail_checkpoint_info", {}),
            }
            write_marker(staged, info)
            _fsync_tree(staged)
            if final.exists():  # the same step saved again (e.g. the final save right after a periodic one)
                shutil.rmtree(final)
            os.replace(staged, final)
    except Exception as exc:  # a full disk is an OSError from Python but a RuntimeError from torch.save
        shutil.rmtree(staged, ignore_errors=True)
        _remove_if_empty(staging_root)
        raise CheckpointError(
            f"could not save checkpoint at step {trainer.state.global_step} in {run_dir}: {save_failure(exc)}; "
            "earlier checkpoints are untouched"
        ) from exc
    finally:
        del trainer._get_output_dir
        trainer._grail_defer_push = False
    accelerator.wait_for_everyone()
    if main:
        from transformers.trainer_utils import rotate_checkpoints

        # Only complete checkpoints are rotated; the newest (just published) is always kept.
        rotate_checkpoints(str(run_dir), save_total_limit=trainer.args.save_total_limit, use_mtime=False)
        _remove_if_empty(staging_root)
    return final


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def save_failure(exc: BaseException) -> str:
    """Why a save failed, in one line (torch's "file write failed" hides the errno: say what it usually is)."""
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return f"{reason} ({exc.filename})" if exc.filename else reason
    text = " ".join(str(exc).split())
    if "write failed" in text or "No space left" in text:
        return f"{text[-160:]} (is the disk full?)"
    return f"{type(exc).__name__}: {text[:200]}"
