"""Atomic checkpoints and resume.

The Trainer writes a checkpoint file by file into ``checkpoint-N``; a crash half-way leaves a folder that
looks complete to ``get_last_checkpoint``. Here every checkpoint is written under ``OUTPUT/.staging/``,
stamped with :data:`MARKER` once every rank has finished, and only then renamed to ``OUTPUT/checkpoint-N``
(one ``rename``: atomic on POSIX). Older checkpoints are rotated away only after the new one is in place,
so a failed save (disk full, permission denied) loses nothing that was there before.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError

MARKER = "grail_checkpoint.json"
STAGING = ".staging"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(GrailError):
    """A checkpoint could not be written or the one asked for cannot be resumed from."""


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
    """The checkpoint to resume from: ``True``/"latest" = the newest complete one, a string = that path."""
    if resume in (None, False):
        return None
    if resume is True or resume == "latest":
        found = complete_checkpoints(output_dir)
        if not found:
            raise CheckpointError(f"--resume: {output_dir} holds no complete checkpoint to resume from")
        return found[-1]
    path = Path(str(resume)).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"--resume {path}: no such checkpoint folder")
    if not is_complete(path):
        raise CheckpointError(
            f"--resume {path}: not a complete grail-rl checkpoint (no {MARKER}); it may be half-written"
        )
    return path


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
            marker = {
                "global_step": trainer.state.global_step,
                "saved_at": time.time(),
                "world_size": accelerator.num_processes,
            }
            (staged / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
            _fsync_tree(staged)
            if final.exists():  # the same step saved again (e.g. the final save right after a periodic one)
                shutil.rmtree(final)
            os.replace(staged, final)
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        reason = exc.strerror or str(exc)
        raise CheckpointError(
            f"could not save checkpoint at step {trainer.state.global_step} in {run_dir}: {reason}"
            f"{f' ({exc.filename})' if exc.filename else ''}; earlier checkpoints are untouched"
        ) from None
    finally:
        del trainer._get_output_dir
        trainer._grail_defer_push = False
    accelerator.wait_for_everyone()
    if main:
        from transformers.trainer_utils import rotate_checkpoints

        # Only complete checkpoints are rotated; the newest (just published) is always kept.
        rotate_checkpoints(str(run_dir), save_total_limit=trainer.args.save_total_limit, use_mtime=False)
        if not any(staging_root.iterdir()):
            staging_root.rmdir()
    return final
