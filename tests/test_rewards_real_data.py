"""The real test: the accuracy reward reproduces the original model's own ``correct`` flags, row for row.

The files hold the original GRAIL checkpoint's validation outputs (``gpt_output``) with the original
evaluation's ``parsed_index`` and ``correct``. Scoring ``gpt_output`` against ``gold_index`` with the video
part of the accuracy reward must give the same flags: gun 0.964 (548 rows), wage 0.448 (1,025 rows).
No row differs; if one ever did, it would have to be listed in EXPLAINED with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grail_rl.rewards.accuracy import AccuracyReward
from grail_rl.rewards.format import FormatReward
from grail_rl.rewards.parser import parse_answer

# (file, row) -> why our score legitimately differs from the file's flag. Empty: every row agrees.
EXPLAINED: dict[tuple[str, int], str] = {}


def load(directory: Path, name: str) -> list[dict]:
    with (directory / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize(
    ("name", "rows", "accuracy", "parsed"),
    [("gun_study1.jsonl", 548, 0.964, 548), ("wage_study2_study3.jsonl", 1025, 0.448, 1018)],
)
def test_accuracy_reproduces_the_files_correct_flags(
    validation_dir: Path, name, rows, accuracy, parsed
) -> None:
    data = load(validation_dir, name)
    assert len(data) == rows
    logged: dict[str, float] = {}
    # The video part alone: these rows carry no opinion_direction, and opinion_share=0 makes that explicit.
    reward = AccuracyReward(AccuracyReward.Config(opinion_share=0.0))
    scores = reward(
        [row["gpt_output"] for row in data],
        gold_index=[row["gold_index"] for row in data],
        n_options=[row["n_options"] for row in data],
        issue=[row["issue"] for row in data],
        log_metric=logged.__setitem__,
    )
    differing = [
        i for i, (score, row) in enumerate(zip(scores, data, strict=True)) if score != float(row["correct"])
    ]
    unexplained = [i for i in differing if (name, i) not in EXPLAINED]
    assert unexplained == [], f"rows scored differently from the file's own flag: {unexplained[:20]}"
    assert round(sum(scores) / len(scores), 3) == accuracy
    assert logged["rewards/accuracy/parsed_rate"] == pytest.approx(parsed / rows)


@pytest.mark.parametrize("name", ["gun_study1.jsonl", "wage_study2_study3.jsonl"])
def test_parser_reproduces_the_files_parsed_index(validation_dir: Path, name: str) -> None:
    data = load(validation_dir, name)
    assert [parse_answer(row["gpt_output"]) for row in data] == [row["parsed_index"] for row in data]


@pytest.mark.parametrize("name", ["gun_study1.jsonl", "wage_study2_study3.jsonl"])
def test_chat_message_completions_score_like_strings(validation_dir: Path, name: str) -> None:
    data = load(validation_dir, name)[:200]
    columns = {"gold_index": [r["gold_index"] for r in data], "n_options": [r["n_options"] for r in data]}
    texts = [r["gpt_output"] for r in data]
    messages = [[{"role": "assistant", "content": t}] for t in texts]
    for reward in (AccuracyReward(), FormatReward()):
        assert reward(messages, **columns) == reward(texts, **columns)
