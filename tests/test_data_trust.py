"""Odd rows and odd files: each row is dropped or kept with a reason, never a crash, a hang, unbounded memory
or a broken value in the prompt; truncation truncates; the mixture spill holds JSON, not pickles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from grail_rl.data import sources
from grail_rl.data.dataset import TRUNCATION_MARK, SourceRows, build_split, read_source
from grail_rl.data.drops import DropReport
from grail_rl.recipe.loader import load_recipe
from grail_rl.testing import isolated_plugins
from tests.test_data_schema import raw_row


def odd_lines() -> list[tuple[str, str]]:
    """(JSONL line, the drop reason it must get)."""
    base = raw_row()
    slate = json.loads(base["slate_items_json"])
    out = []
    surrogate = json.dumps(raw_row(current_video_title="bad \ud800 title"))  # json.dumps writes \ud800
    out.append((surrogate, "invalid_text"))
    out.append((json.dumps(raw_row(slate_items_json="[" * 100_000 + "]" * 100_000)), "malformed_json"))
    out.append((json.dumps(raw_row(current_video_title="x" * 200_000)), "text_too_long"))
    history = [{"id": "h", "title": "Old", "watch_ms": -5000, "total_length_ms": 156000}]
    out.append((json.dumps(raw_row(watched_detailed_json=json.dumps(history))), "bad_value"))
    bad_title = [dict(slate[0], title={"nested": ["deep"]}), slate[1]]
    out.append((json.dumps(raw_row(slate_items_json=bad_title)), "wrong_type"))
    out.append(('{"issue": "gun_control", "n_options": ' + "9" * 5000 + "}", "malformed_json"))
    out.append((json.dumps(raw_row(age=[1, 2, 3])), "wrong_type"))
    out.append((json.dumps(raw_row(slate_items_json=[dict(slate[0], view_count=-3), slate[1]])), "bad_value"))
    return out


def write_odd_file(path) -> list[str]:
    lines = odd_lines()
    good = [json.dumps(raw_row()), json.dumps(raw_row(n_options=float("nan")))]  # NaN count: ignored, kept
    path.write_text("\n".join([line for line, _ in lines] + good) + "\n", encoding="utf-8")
    return [reason for _, reason in lines]


def test_odd_rows_are_dropped_with_a_reason_and_the_rest_kept(tmp_path):
    expected = write_odd_file(tmp_path / "odd.jsonl")
    report = DropReport()
    rows = read_source(tmp_path / "odd.jsonl", "train", 0, report)
    assert len(rows) == 2
    want: dict[str, int] = {}
    for reason in expected:
        want[reason] = want.get(reason, 0) + 1
    assert report.counts == want
    assert all(example.detail for example in report.examples.values())
    assert "at at" not in json.dumps(report.as_dict())


def test_a_line_without_end_is_skipped_with_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_LINE", 1024)
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(raw_row()) + "\n" + "x" * 10_000 + "\n" + json.dumps(raw_row()) + "\n")
    report = DropReport()
    rows = read_source(path, "train", 0, report)
    assert len(rows) == 2 and report.counts == {"line_too_long": 1}
    assert report.examples["line_too_long"].row == 2


RECIPE = """\
model: {name_or_path: some/model}
data: {train: [{path: odd.jsonl}]}
rewards: [{name: accuracy}]
output: {dir: out}
"""


def test_prompts_from_odd_files_never_carry_the_broken_values(tmp_path):
    write_odd_file(tmp_path / "odd.jsonl")
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    plugins = isolated_plugins()
    recipe = load_recipe(tmp_path / "recipe.yaml", plugins=plugins).recipe
    dataset, report = build_split(recipe, plugins, "train")
    assert len(dataset) == 2 and report.dropped == 8
    text = json.dumps([dataset[i]["prompt"] for i in range(len(dataset))])
    assert "-5s" not in text and "x" * 1000 not in text


def _cli(*args, cwd, timeout=60):
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "grail_rl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_audit_of_an_odd_file_counts_the_drops_without_a_traceback(tmp_path):
    write_odd_file(tmp_path / "odd.jsonl")
    out = _cli("data", "audit", "odd.jsonl", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "kept 2, dropped 8" in out.stderr


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_fifo_or_device_as_data_is_refused_at_once(tmp_path, special):
    if special == "fifo":
        os.mkfifo(tmp_path / "rows.jsonl")
        special = "rows.jsonl"
    started = time.perf_counter()
    out = _cli("data", "audit", special, "--format", "jsonl", cwd=tmp_path, timeout=30)
    assert time.perf_counter() - started < 25
    assert out.returncode == 2 and "not a regular file" in out.stderr and "Traceback" not in out.stderr


def test_truncate_truncates_even_without_history_to_drop(tmp_path):
    long_title = "A very long current video title " * 40
    rows = [raw_row(watched_detailed_json="[]", current_video_title=long_title, participant_id=f"p{i}") for i in range(5)]
    (tmp_path / "odd.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    plugins = isolated_plugins()
    full, _ = build_split(load_recipe(tmp_path / "recipe.yaml", plugins=plugins).recipe, plugins, "train")
    system = len(full[0]["prompt"][0]["content"])
    limit = system + 600  # far less than the prompt, room for the options and the questions
    assert full[0]["prompt_length"] > limit
    sets = [f"prompt.max_prompt_tokens={limit}", "prompt.long_prompts=truncate"]
    recipe = load_recipe(tmp_path / "recipe.yaml", sets=sets, plugins=plugins).recipe
    cut, report = build_split(recipe, plugins, "train")
    assert len(cut) == 5 and report.truncated == 5 and report.dropped == 0
    assert max(cut["prompt_length"]) <= limit and all(cut["prompt_truncated"])
    user = cut[0]["prompt"][1]["content"]
    assert user.startswith(TRUNCATION_MARK) and "OPTIONS\n1. First Video" in user and user.endswith("stay the same?")
    dropped, report = build_split(load_recipe(tmp_path / "recipe.yaml", sets=sets[:1], plugins=plugins).recipe,
                                  plugins, "train")  # fmt: skip
    assert len(dropped) == 0 and report.counts == {"prompt_too_long": 5}
    assert "(drop)" in report.examples["prompt_too_long"].detail


def test_the_mixture_spill_is_json_not_pickle(tmp_path):
    import pyarrow as pa

    spilled = SourceRows("x", 1.0, iter([{"issue": "gun_control", "survey": {"age": 3, "college": True}}]))
    with pa.OSFile(str(spilled.path), "rb") as source:
        table = pa.ipc.open_file(source).read_all()
    assert table.schema.field("row").type in (pa.string(), pa.large_string())
    assert json.loads(table.column("row")[0].as_py()) == {"issue": "gun_control", "survey": {"age": 3, "college": True}}
    assert list(spilled.take([0, 0])) == [json.loads(table.column("row")[0].as_py())] * 2
