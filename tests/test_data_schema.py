"""Row schema and loaders: every kind of bad row ends in the drop report, bad files in one clear error."""

from __future__ import annotations

import json

import pytest

from grail_rl.data.dataset import PathSource, read_source
from grail_rl.data.drops import DropReport
from grail_rl.data.schema import RowDropped, canonical_title, normalize_row
from grail_rl.errors import GrailError


def raw_row(**overrides):
    row = {
        "issue": "gun_control",
        "participant_id": "p1",
        "participant_study": "study1",
        "current_video_id": "cur00000000",
        "current_video_title": "Now Playing",
        "current_video_channel": "Chan",
        "slate_items_json": json.dumps([
            {"id": "aaaaaaaaaaa", "title": "First Video", "channel_title": "A", "duration": 60, "view_count": 1000},
            {"id": "bbbbbbbbbbb", "title": "Second: Video!", "channel_title": "B", "duration": 90.4},
        ]),
        "next_video_id": "bbbbbbbbbbb",
        "watched_detailed_json": json.dumps([{"id": "h", "title": "Old", "watch_ms": 37000, "total_length_ms": 156000}]),
        "opinion_direction": "increase",
        "age": 32,
    }  # fmt: skip
    row.update(overrides)
    return row


def reason(raw) -> str:
    with pytest.raises(RowDropped) as err:
        normalize_row(raw)
    return err.value.reason


def test_valid_row_is_normalised():
    row = normalize_row(raw_row())
    assert row["gold_index"] == 2 and row["n_options"] == 2
    assert row["slate"][1]["duration"] == 90  # seconds rounded to whole numbers
    assert row["history"][0] == {
        "id": "h", "title": "Old", "channel_title": None, "watch_seconds": 37, "total_seconds": 156,
        "percent_complete": 24,
    }  # fmt: skip
    assert row["survey"] == {"age": 32}
    assert row["opinion_direction"] == "increase"


def test_gold_resolves_by_canonical_title_when_the_id_differs():
    row = normalize_row(raw_row(next_video_id="zzzzzzzzzzz", next_video_title="second video"))
    assert row["gold_index"] == 2
    assert canonical_title("Second: Video!") == "secondvideo"


def test_gold_index_used_without_next_video_id():
    assert normalize_row(raw_row(next_video_id=None, gold_index=1))["gold_index"] == 1


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"next_video_id": "zzzzzzzzzzz"}, "gold_unresolved"),
        ({"next_video_id": None, "gold_index": 3}, "gold_out_of_range"),
        ({"next_video_id": None, "gold_index": "three"}, "wrong_type"),
        ({"next_video_id": None}, "missing_field"),
        ({"slate_items_json": "[]"}, "empty_slate"),
        ({"slate_items_json": '[{"id": "a", "title": "x"'}, "malformed_json"),
        ({"watched_detailed_json": "{not json"}, "malformed_json"),
        ({"slate_items_json": '{"id": "a"}'}, "wrong_type"),
        ({"slate_items_json": '[{"id": "a", "title": "x"}, {"id": "a", "title": "y"}]'}, "duplicate_ids"),
        ({"slate_items_json": '[{"channel_title": "x"}]'}, "malformed_slate"),
        ({"issue": None}, "missing_field"),
        ({"issue": 7}, "wrong_type"),
        ({"opinion_direction": "maybe"}, "bad_opinion_direction"),
        ({"n_options": 5}, "wrong_type"),
        ({"slate_items_json": '[{"id": "a", "title": "x", "duration": "long"}]', "next_video_id": "a"}, "wrong_type"),
    ],
)
def test_bad_rows_are_dropped_with_a_reason(overrides, expected):
    assert reason(raw_row(**overrides)) == expected


def test_control_and_unicode_characters_in_titles_cannot_break_lines():
    slate = [{"id": "a", "title": "Tab\there\nnewline\x00 — «ünïcødé» 🎯"}]
    row = normalize_row(raw_row(slate_items_json=slate, next_video_id="a"))
    assert row["slate"][0]["title"] == "Tab here newline  — «ünïcødé» 🎯"


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_with_broken_lines_keeps_every_valid_row(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [raw_row(), "{broken", "[1, 2]", raw_row(next_video_id="nope"), raw_row()])
    report = DropReport()
    rows = read_source(path, "train", 0, report)
    assert len(rows) == 2 and report.read == 5
    assert report.counts == {"malformed_json": 1, "wrong_type": 1, "gold_unresolved": 1}
    assert report.examples["malformed_json"].row == 2


def test_a_file_that_is_not_its_extension_is_one_clear_error(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    fake = tmp_path / "data.jsonl"
    pq.write_table(pa.table({"a": [1]}), fake)
    with pytest.raises(GrailError, match="data.jsonl.*JSONL"):
        read_source(fake, "train", 0, DropReport())
    not_parquet = tmp_path / "data.parquet"
    not_parquet.write_text('{"issue": "x"}\n', encoding="utf-8")
    with pytest.raises(GrailError, match="data.parquet: not a Parquet file"):
        read_source(not_parquet, "train", 0, DropReport())
    with pytest.raises(GrailError, match="cannot tell the format"):
        read_source(tmp_path / "data.txt", "train", 0, DropReport())


def test_parquet_csv_and_saved_dataset_sources(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [raw_row(gold_index=None), raw_row(participant_id="p2", next_video_id=None, gold_index=1), raw_row(gold_index=None)]
    flat = [{k: (str(v) if v is not None else None) for k, v in r.items()} for r in rows]
    flat[1]["age"] = "not a number but a survey answer"
    table = pa.Table.from_pylist(flat)
    pq.write_table(table, tmp_path / "d.parquet")
    import csv

    with (tmp_path / "d.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
    datasets.DatasetDict({"train": datasets.Dataset(table)}).save_to_disk(str(tmp_path / "saved"))
    for path, split in ((tmp_path / "d.parquet", None), (tmp_path / "d.csv", None), (tmp_path / "saved", "train")):
        report = DropReport()
        got = read_source(PathSource(path, split=split), "train", 0, report)
        assert len(got) == 3, (path, report.lines())
        assert [r["gold_index"] for r in got.take([0, 1, 2])] == [2, 1, 2]
