"""Claiming the output folder for one ``train``: lock it, decide whether this run may use it, and replace an
earlier run only once the new one has started.

- A folder is a grail-rl run only by grail-rl's own marker (``run.json`` written by grail-rl, see
  :func:`grail_rl.training.run_folder.read_run`); a ``checkpoint-*`` name proves nothing. A non-empty folder
  without the marker is never touched, whatever the recipe says. Inside a run folder, only what a run
  writes (:func:`is_run_entry`) is ever moved or deleted: a file of the user's own beside it stays.
- ``evaluations/`` (written by ``grail-rl evaluate`` for the base model or other folders) and the lock file
  do not count: the base model can be measured before training.
- A run that failed before training began (its ``run.json`` never recorded ``training_started``, and it has
  no checkpoint and no final model) holds only grail-rl's own files and may be reused without
  ``output.overwrite``; ``--resume`` on it starts from step 0 and says so.
- ``output.overwrite`` on a real run first moves the run aside into ``OUTPUT/.grail-replaced/``. The new
  run calls :meth:`OutputClaim.commit` once it has loaded its model and data and is about to train: only
  then is the old run deleted. If the new run fails before that, :meth:`OutputClaim.abandon` removes what
  it wrote and moves the old run back; if it was killed, the next ``train`` on the folder does that first.
  The folder keeps one of the two runs whole at every moment.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
from pathlib import Path

from grail_rl.errors import GrailError
from grail_rl.files import ensure_writable_folder
from grail_rl.run_layout import EVALUATIONS_DIR, REPORT_DIR
from grail_rl.training.folder_lock import LOCK_FILE, FolderLock
from grail_rl.training.run_folder import read_run

logger = logging.getLogger("grail_rl.training")

SET_ASIDE = ".grail-replaced"  # the replaced run, until the new one has started
DISCARD = ".grail-replaced.discard"  # the replaced run being deleted (renamed first: deleting is not atomic)
SET_ASIDE_DONE = ".complete"  # written once every entry of the old run is in SET_ASIDE
# Entries that belong to no run (evaluations and reports a user asked for): they stay where they are through a
# replacement.
NOT_THE_RUN = frozenset({LOCK_FILE, SET_ASIDE, DISCARD, EVALUATIONS_DIR, REPORT_DIR})
# What a run writes at the top of its folder. Only these are ever moved or deleted; a file of the user's own
# beside a run stays where it is. grail-rl's own files:
RUN_NAMES = (
    "run.json", "recipe.resolved.json", "train.log", "metrics.jsonl", "completions", "final", "eval",
    "drop_report_*.json", "reward_faults", ".staging", ".grail-write-test-*",
)  # fmt: skip
# ... what the Trainer copies to the top when the run pushes to the hub (the model, its tokenizer, its
# arguments): these names count as the run's only when its recipe pushed ...
HUB_NAMES = (
    "config.json", "generation_config.json", "model.safetensors", "model-*-of-*.safetensors",
    "model.safetensors.index.json", "pytorch_model*.bin", "adapter_config.json", "adapter_model.safetensors",
    "adapter_model.bin", "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
    "chat_template.jinja", "vocab.json", "merges.txt", "added_tokens.json", "training_args.bin",
)  # fmt: skip
# ... TensorBoard's folder, only when the recipe reported to TensorBoard; and README.md only when it is
# grail-rl's model card.
TENSORBOARD_DIR = "runs"
MODEL_CARD = "README.md"
_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


class OutputFolderError(GrailError):
    """The output folder cannot be used for this run."""


def visible_entries(path: Path) -> list[Path]:
    """Everything at the top of ``path`` but the lock, a set-aside run and evaluations/."""
    if not path.is_dir():
        return []
    return sorted(child for child in path.iterdir() if child.name not in NOT_THE_RUN)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def is_model_card(path: Path) -> bool:
    """README.md written by grail-rl (it carries grail-rl's mark), not a user's notes."""
    from grail_rl.training.hub import CARD_MARK

    try:
        with path.open("rb") as fh:
            return CARD_MARK.encode() in fh.read(4 * 1024 * 1024)
    except OSError:
        return False


def is_run_entry(entry: Path, record: dict | None) -> bool:
    """Whether the run recorded in ``record`` (its run.json) wrote ``entry``."""
    name = entry.name
    if _CHECKPOINT.match(name) or _matches(name, RUN_NAMES):
        return True
    recipe = (record or {}).get("recipe") or {}
    if name == MODEL_CARD:
        return entry.is_file() and is_model_card(entry)
    if name == TENSORBOARD_DIR:
        return "tensorboard" in ((recipe.get("logging") or {}).get("report_to") or [])
    return bool((recipe.get("hub") or {}).get("push_to_hub")) and _matches(name, HUB_NAMES)


def run_entries(path: Path) -> list[Path]:
    """What the run recorded in ``path`` owns at its top (see :data:`RUN_NAMES`); anything else is the user's."""
    record = read_run(path)
    return [entry for entry in visible_entries(path) if is_run_entry(entry, record)]


def _checkpoint_evaluations(path: Path) -> list[Path]:
    """Evaluations of a run's own checkpoints: they go with the run when it is replaced."""
    folder = path / EVALUATIONS_DIR
    return sorted(folder.glob("checkpoint-*")) if folder.is_dir() else []


def is_failed_start(path: Path, record: dict) -> bool:
    """A run that never began training: nothing in it is worth keeping but the record of the failure."""
    from grail_rl.training.checkpoints import complete_checkpoints

    if record.get("training_started") or record.get("global_step"):
        return False
    if record.get("status") in ("running", "trained", "completed"):  # also what runs before 0.2 recorded
        return False
    return not complete_checkpoints(path) and not (path / "final").exists()


class OutputClaim:
    """The locked output folder of one run, with the earlier run set aside if it is being replaced."""

    def __init__(self, path: Path, lock: FolderLock):
        self.path = path
        self.lock = lock
        self.set_aside: Path | None = None
        self.fresh_start: str | None = None  # why a --resume starts from step 0 (a failed start was reused)
        self.replaced: str | None = None  # what the set-aside run was ("the earlier run", "a failed start")

    def commit(self) -> None:
        """The new run has started: delete the run it replaces."""
        if self.set_aside is None:
            return
        discard = self.path / DISCARD
        os.replace(self.set_aside, discard)  # from here on, recovery deletes it instead of restoring it
        self.set_aside = None
        shutil.rmtree(discard, ignore_errors=True)
        logger.info("removed %s it replaced from %s", self.replaced, self.path)

    def abandon(self) -> None:
        """The new run failed before it started: remove what it wrote and put the earlier run back."""
        if self.set_aside is None:
            return
        try:
            restore_set_aside(self.path)
        except OSError as exc:  # the error that made the run fail matters more; say where the old run is
            logger.error(
                "could not put %s back (%s); it is whole in %s, and the next train on the folder retries",
                self.replaced, exc, self.set_aside,
            )  # fmt: skip
            return
        self.set_aside = None
        logger.warning("the new run did not start; %s is back in %s", self.replaced, self.path)

    def release(self) -> None:
        self.lock.release()


def claim_output_dir(path: Path, *, resume: bool, overwrite: bool) -> OutputClaim:
    """Lock ``path`` for this run and prepare it (see the module docstring); raise a one-line error if not."""
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"output.dir: {path} is a file, not a folder")
    _refuse_foreign(path)  # before anything is created in it
    if resume and not path.is_dir():
        raise OutputFolderError(f"--resume: {path} does not exist, so it holds no run to resume (a typo in output.dir?)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"output.dir: cannot create {path}: {exc.strerror}") from None
    claim = OutputClaim(path, FolderLock(path).acquire())
    try:
        ensure_writable_folder(path, "output.dir")  # one line now, not at the first checkpoint
        _recover(path)
        _prepare(claim, resume=resume, overwrite=overwrite)
    except BaseException:
        claim.abandon()
        claim.release()
        raise
    return claim


def _refuse_foreign(path: Path) -> None:
    if not path.is_dir() or (path / SET_ASIDE).exists():
        return
    if visible_entries(path) and read_run(path) is None:
        raise OutputFolderError(
            f"output.dir: {path} is not empty and is not a grail-rl run (it has no run.json written by grail-rl); "
            "nothing in it was changed; choose an empty or new folder"
        )


def _recover(path: Path) -> None:
    """Finish what a killed process left half-done: a deletion of a replaced run, or a replacement."""
    if (path / DISCARD).exists():
        shutil.rmtree(path / DISCARD, ignore_errors=True)
    if (path / SET_ASIDE).exists():
        restore_set_aside(path)
        logger.warning("%s: restored the run that an interrupted replacement had set aside", path)


def _prepare(claim: OutputClaim, *, resume: bool, overwrite: bool) -> None:
    path = claim.path
    if not visible_entries(path):
        if resume:
            raise OutputFolderError(f"--resume: {path} holds no run to resume")
        return
    record = read_run(path)
    if record is None:
        _refuse_foreign(path)  # someone put files there since the first look
    assert record is not None
    if is_failed_start(path, record):
        _set_aside(claim, "a failed start", record)
        if resume:
            claim.fresh_start = (
                f"{path} held only a start that failed before training "
                f"({record.get('status', '?')}: {record.get('error') or 'no error recorded'}); "
                "there is nothing to resume, so training starts from step 0"
            )
        return
    if resume:
        return
    if not overwrite:
        raise OutputFolderError(
            f"output.dir: {path} already holds a run; pass --resume to continue it, or "
            "--set output.overwrite=true to replace it"
        )
    _set_aside(claim, "the earlier run", record)


def _set_aside(claim: OutputClaim, what: str, record: dict) -> None:
    path = claim.path
    aside = path / SET_ASIDE
    try:
        aside.mkdir()
        for entry in run_entries(path):
            os.replace(entry, aside / entry.name)
        evaluations = _checkpoint_evaluations(path)
        if evaluations:
            (aside / EVALUATIONS_DIR).mkdir()
            for entry in evaluations:
                os.replace(entry, aside / EVALUATIONS_DIR / entry.name)
        (aside / SET_ASIDE_DONE).write_text(f"{what}\n", encoding="utf-8")
        kept = [entry.name for entry in visible_entries(path)]
        if kept:
            logger.warning("kept what grail-rl did not write in %s where it is: %s", path, ", ".join(kept[:10]))
    except OSError as exc:
        restore_set_aside(path)
        raise OutputFolderError(f"output.dir: cannot set the earlier run in {path} aside: {exc.strerror}") from None
    claim.set_aside = aside
    claim.replaced = what
    logger.info("set %s aside in %s until the new run has started", what, aside)


def restore_set_aside(path: Path) -> None:
    """Put the run in ``OUTPUT/.grail-replaced`` back, removing what a failed new start wrote beside it.

    When the set-aside was not finished (its ``.complete`` mark is missing), nothing new was written yet:
    what is still at the top belongs to the same old run and stays.
    """
    aside = path / SET_ASIDE
    if not aside.is_dir():
        return
    if (aside / SET_ASIDE_DONE).exists():
        for entry in run_entries(path):  # the failed start's own files
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        for entry in _checkpoint_evaluations(path):
            shutil.rmtree(entry, ignore_errors=True)
        # Only now, with nothing new left at the top: from here a crash must move back, never delete, since
        # what reaches the top is the old run's again.
        (aside / SET_ASIDE_DONE).unlink()
    for entry in sorted(aside.iterdir()):
        if entry.name == EVALUATIONS_DIR and entry.is_dir():
            (path / EVALUATIONS_DIR).mkdir(exist_ok=True)
            for evaluation in entry.iterdir():
                os.replace(evaluation, path / EVALUATIONS_DIR / evaluation.name)
            entry.rmdir()
            continue
        os.replace(entry, path / entry.name)
    aside.rmdir()
