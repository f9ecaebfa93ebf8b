"""The leak audit: the real gun file leaks the answer, the wage file is only skewed, synthetic data is clean."""

from __future__ import annotations

import json

from grail_rl.data.audit import audit_rows
from grail_rl.data.schema import normalize_row


def levels(result) -> set[str]:
    return {f["level"] for f in result["findings"]}


def test_gun_file_is_flagged_as_a_leak(validation_dir, run_cli):
    result = run_cli("data", "audit", str(validation_dir / "gun_study1.jsonl"), "--json")
    assert result.returncode == 0, result.stderr
    audit = json.loads(result.stdout)
    assert audit["rows"] == 548
    assert audit["trivial_rules"]["always the last option"] > 0.9
    assert audit["metadata"]["channel_title"]["gold_only_missing_rate"] > 0.9
    assert "LEAK" in levels(audit)
    text = run_cli("data", "audit", str(validation_dir / "gun_study1.jsonl"), "--fail-on-leak")
    assert text.returncode == 1 and "LEAK: trivial rules beat random choice" in text.stdout


def test_wage_file_reports_skew_without_a_leak(validation_dir, run_cli):
    audit = json.loads(run_cli("data", "audit", str(validation_dir / "wage_study2_study3.jsonl"), "--json").stdout)
    assert levels(audit) == {"SKEW"}
    assert 0.4 < audit["gold_position_by_slate_size"]["4"]["gold_share"][0] < 0.5


def test_a_metadata_leak_alone_is_detected():
    rows = []
    for i in range(40):
        slate = [{"id": f"v{j}", "title": f"T{j}", "channel_title": "C", "duration": 10} for j in range(4)]
        gold = i % 4
        slate[gold] = {"id": f"v{gold}", "title": f"T{gold}"}  # uniform positions, but the gold lacks metadata
        rows.append(normalize_row({"issue": "x", "slate_items": slate, "gold_index": gold + 1}))
    report = audit_rows(rows).as_dict()
    assert report["trivial_rules"]["the option missing metadata"] == 1.0
    assert report["gold_position_by_slate_size"]["4"]["chi2"] == 0.0
    assert "LEAK" in levels(report)
