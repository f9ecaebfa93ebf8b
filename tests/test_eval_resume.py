"""Incremental predictions and resume: an interrupted evaluation continues from its progress log, only the
missing rows are scored, nothing is counted twice, and other settings never mix in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grail_rl.errors import GrailError
from grail_rl.evaluation.progress import progress_logs
from grail_rl.evaluation.runner import Scoring, evaluate_set, resumable

ROWS = [{"prompt": f"viewer {i}", "gold_index": 1 + i % 2, "n_options": 2} for i in range(7)]


class Recorder:
    """Answers option 1 to every prompt and remembers them; raises after ``fail_after`` chunks."""

    description = "a recording generator"

    def __init__(self, chunk_size: int = 2, fail_after: int | None = None) -> None:
        self.chunk_size, self.fail_after, self.seen, self.calls = chunk_size, fail_after, [], 0

    def generate(self, prompts):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt
        self.seen += list(prompts)
        return ["<think>x</think>\n<answer>1</answer>"] * len(prompts)


def interrupt(tmp_path: Path, scoring: Scoring | None = None, chunks: int = 2) -> Path:
    with pytest.raises(KeyboardInterrupt):
        evaluate_set(Recorder(fail_after=chunks), ROWS, name="s", out_dir=tmp_path, scoring=scoring)
    [log] = progress_logs(tmp_path, "s")
    return log


def test_an_interrupted_set_resumes_with_only_the_missing_rows(tmp_path: Path) -> None:
    log = interrupt(tmp_path)
    assert json.loads((tmp_path / "eval-s.partial.json").read_text())["evaluated_rows"] == 4
    notes: list[str] = []
    second = Recorder()
    report = evaluate_set(second, ROWS, name="s", out_dir=tmp_path, note=notes.append)
    assert second.seen == [row["prompt"] for row in ROWS[4:]]
    assert report.complete and [p.row_id for p in report.predictions] == list(range(7))
    assert report.meta["resumed_rows"] == 4 and "4 of 7 rows" in notes[0]
    # The complete report replaced the partial one and the log; its predictions file has each row once.
    assert not log.exists() and not (tmp_path / "eval-s.partial.json").exists()
    lines = (tmp_path / "eval-s.predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["row_id"] for line in lines) == list(range(7))
    assert json.loads((tmp_path / "eval-s.json").read_text())["overall"]["n"] == 7


def test_a_torn_last_line_and_repeated_rows_are_not_counted(tmp_path: Path) -> None:
    log = interrupt(tmp_path)
    lines = log.read_text().splitlines(keepends=True)
    # A row written twice (a retried append) and a line cut by kill -9 in the middle of a write.
    log.write_text("".join(lines) + lines[1] + lines[2][: len(lines[2]) // 2])
    second = Recorder()
    report = evaluate_set(second, ROWS, name="s", out_dir=tmp_path)
    assert len(second.seen) == 3 and len(report.predictions) == 7 and report.complete


def test_a_log_whose_rows_changed_is_not_trusted_for_them(tmp_path: Path) -> None:
    log = interrupt(tmp_path)
    text = log.read_text()
    first_row = json.loads(text.splitlines()[1])
    log.write_text(text.replace(first_row["prompt_hash"], "0" * 16))  # row 0's prompt is not the one logged
    second = Recorder()
    evaluate_set(second, ROWS, name="s", out_dir=tmp_path)
    assert second.seen == [ROWS[0]["prompt"], *[row["prompt"] for row in ROWS[4:]]]


def test_a_damaged_log_is_one_error_naming_the_file_and_line(tmp_path: Path) -> None:
    log = interrupt(tmp_path)
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[0] + "not json\n" + "".join(lines[1:]))
    with pytest.raises(GrailError, match=r"line 2 is not JSON.*Move it away"):
        evaluate_set(Recorder(), ROWS, name="s", out_dir=tmp_path)


def test_other_settings_never_resume_and_are_refused_until_overwrite(tmp_path: Path) -> None:
    interrupt(tmp_path, Scoring(settings={"max_new_tokens": 64}))
    other = Scoring(settings={"max_new_tokens": 128})
    key = other.key(ROWS)[0]
    with pytest.raises(GrailError, match="other settings.*--overwrite"):
        resumable(tmp_path, "s", key, overwrite=False)
    assert resumable(tmp_path, "s", Scoring(settings={"max_new_tokens": 64}).key(ROWS)[0], overwrite=False)
    assert not resumable(tmp_path, "s", key, overwrite=True)
    # Started over (as --overwrite does): every row is scored again, and the old log goes with the new report.
    fresh = Recorder()
    evaluate_set(fresh, ROWS, name="s", out_dir=tmp_path, scoring=Scoring(settings={"max_new_tokens": 128}, resume=False))
    assert len(fresh.seen) == 7 and progress_logs(tmp_path, "s") == []


def test_changed_rows_change_the_key(tmp_path: Path) -> None:
    scoring = Scoring()
    assert scoring.key(ROWS)[0] != scoring.key(ROWS[:-1])[0]
    assert scoring.key(ROWS)[0] != scoring.key([{**ROWS[0], "gold_index": 2}, *ROWS[1:]])[0]


def test_a_second_evaluate_on_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    """Two processes would interleave their progress logs and reports: the folder is locked."""
    from grail_rl.training.folder_lock import FolderLock
    from tests.conftest_training import lock_held_elsewhere
    from tests.test_eval_predictions import evaluate

    folder = tmp_path / "out/evaluations/baseline-always_last/eval"
    folder.mkdir(parents=True)
    with lock_held_elsewhere(folder):
        proc = evaluate(tmp_path, "--baseline", "always_last")
        assert proc.returncode == 2 and "is in use by another grail-rl process" in proc.stderr, proc.stderr
        assert not list(folder.glob("eval-*"))
    assert evaluate(tmp_path, "--baseline", "always_last").returncode == 0  # the lock goes with its process
    assert FolderLock(folder).acquire().held


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"parsed_index": "1"}, "parsed_index '1', not a whole number"),
        ({"parsed_index": 1.5}, "parsed_index 1.5"),
        ({"formatted": "no"}, "formatted 'no', not true or false"),
        ({"output": 3}, "output 3, not text"),
        ({"probabilities": [float("nan"), 1.0]}, "probabilities that are not one finite number"),
        ({"row_id": True}, "row_id True, not a row"),
    ],
)
def test_a_hand_edited_record_is_one_error_naming_the_line(tmp_path, edit, message):
    log = interrupt(tmp_path)
    lines = log.read_text().splitlines()
    record = {**json.loads(lines[2]), **edit}
    lines[2] = json.dumps(record)
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(GrailError, match=f"line 3 has {message}".replace("(", r"\(").replace("[", r"\[")):
        evaluate_set(Recorder(), ROWS, name="s", out_dir=tmp_path)


def test_a_record_whose_gold_changed_is_scored_again(tmp_path):
    log = interrupt(tmp_path)
    lines = log.read_text().splitlines()
    record = json.loads(lines[1])
    lines[1] = json.dumps({**record, "gold_index": 3 - record["gold_index"]})
    log.write_text("\n".join(lines) + "\n")
    again = Recorder()
    evaluate_set(again, ROWS, name="s", out_dir=tmp_path)
    assert again.seen[0] == ROWS[record["row_id"]]["prompt"]


def test_a_set_name_with_glob_characters_finds_only_its_own_logs(tmp_path):
    (tmp_path / "eval-gun1.progress-abc.jsonl").write_text("")
    assert progress_logs(tmp_path, "gun[1]") == []
    (tmp_path / "eval-gun[1].progress-abc.jsonl").write_text("")
    assert [p.name for p in progress_logs(tmp_path, "gun[1]")] == ["eval-gun[1].progress-abc.jsonl"]


def test_a_changed_system_prompt_changes_the_key():
    with_system = [{**row, "prompt": [{"role": "system", "content": "A"}, {"role": "user", "content": row["prompt"]}]}
                   for row in ROWS]  # fmt: skip
    other = [{**row, "prompt": [{"role": "system", "content": "B"}, *row["prompt"][1:]]} for row in with_system]
    assert Scoring().key(with_system)[0] != Scoring().key(other)[0]
