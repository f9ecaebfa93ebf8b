"""Synthetic viewers: deterministic, valid rows, and the ideal predictor's accuracy beside them."""

from __future__ import annotations

import json

from grail_rl.data.audit import audit_rows
from grail_rl.data.dataset import read_source
from grail_rl.data.drops import DropReport
from grail_rl.data.synth import generate


def test_generation_is_deterministic_and_valid(tmp_path):
    a = generate(400, 7, tmp_path / "a")
    b = generate(400, 7, tmp_path / "b")
    generate(400, 8, tmp_path / "c")
    for name in ("train.jsonl", "validation.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()
    assert a.train_rows + a.validation_rows == 400 and a.validation_rows > 0
    assert a.ideal_accuracy > a.random_accuracy
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["ideal_accuracy"] == a.ideal_accuracy
    assert b == type(b)(**{**a.as_dict(), "out_dir": b.out_dir})

    report = DropReport()
    rows = list(read_source(tmp_path / "a" / "train.jsonl", "train", 0, report).take(range(a.train_rows)))
    assert report.dropped == 0
    assert {len(r["slate"]) for r in rows} <= {2, 3, 4, 5}
    assert {r["opinion_direction"] for r in rows} <= {"increase", "decrease", "no_change"}
    assert any(r["history"] for r in rows) and all(r["survey"] for r in rows)
    train_ids = {r["participant_id"] for r in rows}
    valid = read_source(tmp_path / "a" / "validation.jsonl", "eval", 0, DropReport())
    assert not train_ids & {r["participant_id"] for r in valid.take(range(len(valid)))}  # grouped by viewer
    assert not [f for f in audit_rows(rows).findings() if f[0] == "LEAK"]


def test_cli_synth(run_cli, tmp_path):
    result = run_cli("data", "synth", "--n", "60", "--seed", "1", "--out", "synth", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["train_rows"] + summary["validation_rows"] == 60
    assert (tmp_path / "synth" / "validation.jsonl").is_file()
