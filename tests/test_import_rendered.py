"""Importing rendered-prompt files: re-rendering with the default sections gives back the original prompt."""

from __future__ import annotations

import json

import pytest

from grail_rl.data.rendered import import_rendered, rendered_to_record
from grail_rl.data.schema import RowDropped


@pytest.mark.parametrize("name", ["gun_study1.jsonl", "wage_study2_study3.jsonl"])
def test_real_files_re_render_exactly(validation_dir, tmp_path, name):
    summary = import_rendered(validation_dir / name, tmp_path / "rows.jsonl")
    assert summary.report.dropped == 0, summary.report.lines()
    # The issue asks for >= 99 %; print the rest so a regression shows what changed.
    for miss in summary.mismatches:
        print(name, miss)
    assert summary.match_rate >= 0.99, summary.mismatches[:3]
    first = json.loads((tmp_path / "rows.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert {"slate_items", "viewer_text", "current_video_title", "gold_index", "issue"} <= set(first)
    assert all("title" in item for item in first["slate_items"])


def test_a_record_without_options_is_dropped():
    record = {"messages": [{"role": "user", "content": "VIEWER someone.\n\nQUESTIONS\n1. Which?"}], "issue": "x"}
    with pytest.raises(RowDropped) as err:
        rendered_to_record(record)
    assert err.value.reason == "unparsed_prompt"
    with pytest.raises(RowDropped):
        rendered_to_record({"issue": "x"})


def test_cli_import_rendered(validation_dir, run_cli, tmp_path):
    result = run_cli("data", "import-rendered", str(validation_dir / "gun_study1.jsonl"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 548 and summary["match_rate"] >= 0.99
    assert (tmp_path / "gun_study1.rows.jsonl").is_file()
    # The imported rows are an ordinary data source: the audit reads them.
    audit = run_cli("data", "audit", "gun_study1.rows.jsonl", "--json")
    assert json.loads(audit.stdout)["rows"] == 548
