"""Generating from a served model over a recipe's rows (``grail-rl generate``), incrementally and resumably.

Each row's prompt is the recipe's prompt (the chat messages training uses), or a template whose ``{{ field }}``
placeholders are filled from the row's columns (a placeholder naming a column the rows lack is refused before
any request). Rows are generated concurrently through the one serving client (:mod:`grail_rl.serving.client`);
each finished row is appended to the output JSONL at once, flushed to disk (``row_id``, ``prompt_hash``,
``model``, ``generations``). A rerun resumes: rows already in the file are skipped, each row is written once,
and a file whose rows belong to other data (a row id whose prompt hash differs) is refused. A line cut short
by a kill is cut off before appending. The API key never reaches the file.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grail_rl.data.sources import appended_lines
from grail_rl.errors import GrailError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def template_fields(template: str) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def render_template(template: str, row: dict[str, Any]) -> str:
    """The template with every ``{{ field }}`` replaced by the row's value (lists joined by newlines)."""

    def value(match: re.Match[str]) -> str:
        item = row[match[1]]
        if isinstance(item, list | tuple):
            return "\n".join(str(v) for v in item)
        return "" if item is None else str(item)

    return PLACEHOLDER.sub(value, template)


def read_done(path: Path, hashes: Sequence[str]) -> set[int]:
    """The row ids an earlier run wrote to ``path``; a torn last line is cut; rows of other data are refused."""
    if not path.exists():
        return set()
    done: set[int] = set()
    for n, line in appended_lines(path):
        try:
            record = json.loads(line) if line is not None else None
            row, key = record["row_id"], record["prompt_hash"]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise GrailError(f"--out {path}: line {n} is not a generation record; move the file away or choose another --out") from None
        if type(row) is not int or not 0 <= row < len(hashes) or hashes[row] != key:
            raise GrailError(
                f"--out {path}: line {n} holds a row of other data (row {row!r} has another prompt here); it is "
                "not this recipe's output: choose another --out"
            )
        done.add(row)
    return done


async def generate_rows(
    served: Any,
    prompts: Sequence[Any],
    hashes: Sequence[str],
    todo: Sequence[int],
    out: Path,
    *,
    n: int,
    max_tokens: int,
    temperature: float,
    on_row: Callable[[bool], None] | None = None,
) -> int:
    """Generate ``n`` replies for every row in ``todo`` and append each finished row to ``out``; returns the
    number of rows written. A row whose request fails after the client's retries stops the run (the rows
    written so far stay; a rerun resumes)."""
    written = 0
    with out.open("a", encoding="utf-8") as fh:

        async def one(row: int) -> None:
            nonlocal written
            replies = [await served.chat(_messages(prompts[row]), max_tokens=max_tokens, temperature=temperature)
                       for _ in range(n)]  # fmt: skip
            record = {"row_id": row, "prompt_hash": hashes[row], "model": served.endpoint.model, "generations": replies}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            written += 1
            if on_row is not None:
                on_row(True)

        window = max(served.endpoint.concurrency * 8, 8)  # bounded memory however many rows are left
        for start in range(0, len(todo), window):
            await asyncio.gather(*(one(row) for row in todo[start : start + window]))
    return written


def _messages(prompt: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
