"""Claiming the output folder: grail-rl's marker, never emptying a foreign folder, replacing a run only once
the new one has started (and after a kill -9), one process per folder, and reusing a failed start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grail_rl.errors import GrailError
from grail_rl.training.folder_lock import LOCK_FILE, FolderLock
from grail_rl.training.output_claim import SET_ASIDE, SET_ASIDE_DONE, claim_output_dir
from tests.conftest_training import REPO_ROOT, cli_env, run_cli, tiny_model, write_recipe  # noqa: F401

RUN = {"format": "grail-rl run", "status": "completed", "training_started": True, "global_step": 4}


def fake_run(folder: Path, **record) -> dict[str, bytes]:
    """A folder that looks like a finished grail-rl run; returns its files (path -> bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({**RUN, **record}))
    (folder / "checkpoint-4").mkdir()
    (folder / "checkpoint-4" / "grail_checkpoint.json").write_text("{}")
    (folder / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (folder / "final").mkdir()
    (folder / "final" / "model.safetensors").write_bytes(b"weights")
    (folder / "metrics.jsonl").write_text('{"step": 1}\n')
    return snapshot(folder)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != LOCK_FILE}  # fmt: skip


def test_a_folder_is_a_run_only_by_grail_rls_marker(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "checkpoint-ideas.md").write_text("my notes")
    (folder / "checkpoint-3").mkdir()
    for overwrite in (False, True):
        with pytest.raises(GrailError, match="is not a grail-rl run .* nothing in it was changed"):
            claim_output_dir(folder, resume=False, overwrite=overwrite)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-3", "checkpoint-ideas.md"]  # not even a lock


def test_overwrite_sets_the_run_aside_until_commit_and_restores_it_on_failure(tmp_path):
    before = fake_run(tmp_path / "out")
    claim = claim_output_dir(tmp_path / "out", resume=False, overwrite=True)
    assert snapshot(tmp_path / "out") == {f"{SET_ASIDE}/{k}": v for k, v in before.items()} | {
        f"{SET_ASIDE}/{SET_ASIDE_DONE}": b"the earlier run\n"
    }
    (tmp_path / "out" / "run.json").write_text("{}")  # what the new start writes before it fails
    claim.abandon()
    claim.release()
    assert snapshot(tmp_path / "out") == before

    claim = claim_output_dir(tmp_path / "out", resume=False, overwrite=True)
    claim.commit()
    claim.release()
    assert snapshot(tmp_path / "out") == {}


@pytest.mark.parametrize("finished", [True, False])
def test_a_replacement_killed_half_way_is_undone_by_the_next_start(tmp_path, finished):
    out = tmp_path / "out"
    before = fake_run(out)
    aside = out / SET_ASIDE
    aside.mkdir()
    if finished:  # killed while the new run was loading: its files are beside the set-aside run
        for name in ("run.json", "checkpoint-4", "final", "metrics.jsonl"):
            os.replace(out / name, aside / name)
        (aside / SET_ASIDE_DONE).write_text("the earlier run\n")
        (out / "run.json").write_text(json.dumps({"format": "grail-rl run", "status": "starting"}))
        (out / "drop_report_train.json").write_text("{}")
    else:  # killed while moving the old run aside: part of it is still at the top, nothing new yet
        for name in ("checkpoint-4", "final"):
            os.replace(out / name, aside / name)
    with pytest.raises(GrailError, match="already holds a run"):
        claim_output_dir(out, resume=False, overwrite=False)
    assert snapshot(out) == before and not aside.exists()


def test_a_second_process_on_the_same_folder_is_refused_and_a_dead_holder_is_taken_over(tmp_path, tiny_model):  # noqa: F811
    recipe = write_recipe(tmp_path, tiny_model)
    out = tmp_path / "out"
    out.mkdir()
    lock = FolderLock(out).acquire()
    try:
        proc = run_cli("train", str(recipe), cwd=tmp_path, timeout=120)
    finally:
        lock.release()
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"is in use by another grail-rl process (pid {os.getpid()}" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # the refused process wrote nothing

    # A lock file left by a process killed with SIGKILL: the kernel released its lock, the file says who.
    holder = subprocess.Popen([sys.executable, "-c", (
        f"import sys, time; sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from pathlib import Path\nfrom grail_rl.training.folder_lock import FolderLock\n"
        f"FolderLock(Path({str(out)!r})).acquire(); print('locked', flush=True); time.sleep(60)"
    )], stdout=subprocess.PIPE, text=True, env=cli_env())  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    claim = claim_output_dir(out, resume=False, overwrite=False)
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    claim.release()


def test_a_failed_start_is_reused_without_overwrite_and_resume_starts_from_zero(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"format": "grail-rl run", "status": "failed", "error": "no rows"}))
    (out / "drop_report_train.json").write_text("{}")
    (out / "train.log").write_text("...")
    claim = claim_output_dir(out, resume=False, overwrite=False)
    claim.commit()
    claim.release()
    assert snapshot(out) == {}

    (out / "run.json").write_text(json.dumps({"format": "grail-rl run", "status": "starting"}))  # killed while loading
    claim = claim_output_dir(out, resume=True, overwrite=False)
    assert "nothing to resume, so training starts from step 0" in claim.fresh_start
    claim.abandon()
    claim.release()
    assert json.loads((out / "run.json").read_text())["status"] == "starting"


def test_an_output_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(GrailError, match="is a file, not a folder"):
        claim_output_dir(tmp_path / "out", resume=False, overwrite=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_line(tmp_path):
    fake_run(tmp_path / "out")
    os.chmod(tmp_path / "out", 0o555)
    try:
        with pytest.raises(GrailError, match="cannot write in"):
            claim_output_dir(tmp_path / "out", resume=True, overwrite=False)
    finally:
        os.chmod(tmp_path / "out", 0o755)


@pytest.mark.slow
def test_overwrite_with_a_broken_model_path_keeps_the_earlier_run_whole(tmp_path, tiny_model):  # noqa: F811
    before = fake_run(tmp_path / "out")
    recipe = write_recipe(tmp_path, tiny_model, output={"overwrite": True})
    # The model folder exists but holds no usable weights: the failure comes while loading the model,
    # after the earlier run was set aside.
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    proc = run_cli("train", str(recipe), "--set", f"model.name_or_path={broken}", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert snapshot(tmp_path / "out") == before
    assert "is back in" in proc.stderr


@pytest.mark.slow
def test_no_rows_left_fails_one_line_records_it_and_the_folder_is_reused(tmp_path, tiny_model):  # noqa: F811
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"issue": "gun_control", "slate_items": []}\n{broken\n')
    recipe = write_recipe(tmp_path, tiny_model, data={"train": [{"path": str(bad)}]})
    proc = run_cli("train", str(recipe), cwd=tmp_path)
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: no training rows left after filtering (see {tmp_path / 'out'}/drop_report_train.json)"
    ]
    assert "data train: read 2 rows, kept 0, dropped 2" in proc.stderr  # the counts per reason are said
    assert "empty_slate" in proc.stderr and "malformed_json" in proc.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "failed" and "no training rows left" in run["error"]
    assert "empty_slate" in (tmp_path / "out" / "train.log").read_text()
    good = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 1})
    again = run_cli("train", str(good), "--no-eval", "--quiet", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "completed"


def test_a_restore_killed_half_way_never_deletes_what_it_already_moved_back(tmp_path):
    out = tmp_path / "out"
    before = fake_run(out)
    claim = claim_output_dir(out, resume=False, overwrite=True)
    claim.lock.release()  # the process dies here ...
    (out / "train.log").write_text("new start")
    # ... in the middle of putting the old run back: the new file is gone, the mark removed, two entries back
    (out / "train.log").unlink()
    (out / SET_ASIDE / SET_ASIDE_DONE).unlink()
    for name in ("run.json", "checkpoint-4"):
        os.replace(out / SET_ASIDE / name, out / name)
    claim = claim_output_dir(out, resume=True, overwrite=False)
    claim.release()
    assert snapshot(out) == before


@pytest.mark.parametrize("failed", [True, False])
def test_a_users_own_files_in_a_run_folder_survive_overwrite_and_reuse(tmp_path, failed):
    out = tmp_path / "out"
    if failed:
        out.mkdir()
        (out / "run.json").write_text(json.dumps({"format": "grail-rl run", "status": "failed"}))
        (out / "drop_report_train.json").write_text("{}")
    else:
        fake_run(out)
    (out / "notes.txt").write_text("mine")
    (out / "my_lora_adapter").mkdir()
    (out / "my_lora_adapter" / "weights.bin").write_bytes(b"precious")
    claim = claim_output_dir(out, resume=False, overwrite=not failed)
    claim.commit()
    claim.release()
    assert snapshot(out) == {"notes.txt": b"mine", "my_lora_adapter/weights.bin": b"precious"}
