"""Saved completion samples: non-printable characters are escaped, the files stay valid JSON lines."""

from __future__ import annotations

import json
from collections import defaultdict, deque

from grail_rl.training.samples import escape_text, write_samples


def test_escape_text_keeps_newlines_and_escapes_control_and_invisible_characters():
    assert escape_text("plain\ttext\nok") == "plain\ttext\nok"
    assert escape_text("\x1b[2Jboom\x00") == "\\x1b[2Jboom\\x00"
    assert escape_text("a\u200bb\ud800") == "a\\u200bb\\ud800"


def test_write_samples_from_trainer_buffers(tmp_path):
    rewards = defaultdict(deque)
    rewards["accuracy"].extend([1.0, float("nan")])
    logs = {
        "prompt": deque([[{"role": "user", "content": "hi\x07"}]] * 2),
        "completion": deque([[{"role": "assistant", "content": "<answer>1</answer>\x1b"}], "\ud800"]),
        "rewards": rewards,
        "advantages": deque([0.5, -0.5]),
    }
    path = write_samples(tmp_path, 3, logs)
    assert path.name == "step-00003.jsonl"
    raw = path.read_bytes()
    assert b"\x1b" not in raw and b"\x07" not in raw
    rows = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
    assert rows[0]["completion"][0]["content"] == "<answer>1</answer>\\x1b"
    assert rows[0]["prompt"][0]["content"] == "hi\\x07"
    assert rows[1]["rewards"] == {"accuracy": None} and rows[1]["completion"] == "\\ud800"
    assert rows[0]["step"] == 3 and rows[0]["advantage"] == 0.5
