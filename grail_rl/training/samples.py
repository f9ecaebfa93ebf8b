"""Sampled completions, saved per logged step as JSON lines a terminal can show safely.

A tiny or badly trained model writes arbitrary bytes: escape sequences that repaint a terminal, NULs,
lone surrogates. Every string is escaped (``\\x1b``, ``\\u200b``, ...) before it is written, keeping
newlines and tabs, so ``cat completions/step-00012.jsonl`` is always harmless.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SAMPLES_DIR = "completions"
_KEEP = {"\n", "\t"}


def escape_text(text: str) -> str:
    """``text`` with every non-printable character (except newline and tab) written as an escape."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch in _KEEP:
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


def escape_value(value: Any) -> Any:
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, Mapping):
        return {escape_text(str(k)): escape_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_value(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN (an abstaining reward) is not valid JSON
        return None
    return value


def sample_rows(logs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of (prompt, completion, rewards, advantage) from GRPOTrainer's ``_logs`` buffers."""
    prompts = list(logs["prompt"])
    completions = list(logs["completion"])
    rewards = {name: list(values) for name, values in logs["rewards"].items()}
    advantages = list(logs["advantages"])
    rows = []
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=False)):
        rows.append(
            {
                "prompt": prompt,
                "completion": completion,
                "rewards": {name: values[i] for name, values in rewards.items() if i < len(values)},
                "advantage": advantages[i] if i < len(advantages) else None,
            }
        )
    return rows


def write_samples(output_dir: Path, step: int, logs: Mapping[str, Any]) -> Path:
    """Write the latest generation batch to ``completions/step-NNNNN.jsonl`` (atomically)."""
    folder = output_dir / SAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:05d}.jsonl"
    tmp = folder / f".{path.name}.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        for row in sample_rows(logs):
            fh.write(json.dumps({"step": step, **escape_value(row)}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path
