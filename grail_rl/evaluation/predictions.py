"""Re-scoring stored model outputs without a model (``grail-rl evaluate --predictions FILE``).

A predictions file is JSONL with one model output per row, matched to the evaluated rows by a hash of the
row's user prompt (:func:`prompt_hash`; the system prompt is a recipe setting and is left out). Two layouts
are read:

- grail-rl's own ``eval-NAME.predictions.jsonl``: ``prompt_hash`` and ``output``;
- the study's rendered outputs (``../shared/data/grail-validation``): ``messages`` and ``gpt_output``.

A prompt that appears several times takes the file's outputs for it in file order, each once, so nothing
is counted twice. A file none of whose prompts is among the evaluated rows is refused (it belongs to
another dataset); a file that covers only some rows gives a report marked partial.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grail_rl.data.sources import MAX_LINE, bounded_lines
from grail_rl.errors import GrailError
from grail_rl.files import check_readable_path
from grail_rl.grail.texts import prompt_context


def prompt_hash(prompt: Any) -> str:
    """sha256 (first 16 hex digits) of the user prompt of ``prompt`` (chat messages or a plain string)."""
    return hashlib.sha256(prompt_context(prompt).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def full_prompt_hash(prompt: Any) -> str:
    """A digest of the whole prompt as the model reads it (every message, the system prompt included)."""
    text = json.dumps(prompt, sort_keys=True, ensure_ascii=False) if not isinstance(prompt, str) else prompt
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass
class StoredOutputs:
    """The outputs of a predictions file, by prompt hash, each to be used once."""

    path: Path
    by_hash: dict[str, deque[str]]
    rows: int

    def take(self, key: str) -> str | None:
        """The next unused output for the prompt ``key``, or None."""
        queue = self.by_hash.get(key)
        return queue.popleft() if queue else None


def read_predictions(path: Path, wanted: set[str] | None = None) -> StoredOutputs:
    """Read a predictions file; any line that is not a usable record is one error naming the file and line.

    With ``wanted`` (the prompt hashes of the evaluated rows), only those prompts' outputs are kept, so a huge
    file costs one pass and memory for the evaluated rows only; ``rows`` still counts every prediction.
    """
    check_readable_path(path, "--predictions")
    by_hash: dict[str, deque[str]] = {}
    rows = 0
    with path.open("rb") as fh:
        for n, line in enumerate(bounded_lines(fh), 1):
            if line is None:
                raise GrailError(f"--predictions {path}: line {n} is longer than {MAX_LINE // 2**20} MiB")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise GrailError(f"--predictions {path}: line {n} is not JSON ({type(exc).__name__})") from None
            key, output = _hash_and_output(record)
            if key is None or output is None:
                raise GrailError(
                    f"--predictions {path}: line {n} has neither prompt_hash and output (grail-rl's predictions) nor "
                    "messages and gpt_output (the study's outputs)"
                )
            if wanted is None or key in wanted:
                by_hash.setdefault(key, deque()).append(output)
            rows += 1
    if rows == 0:
        raise GrailError(f"--predictions {path}: the file holds no predictions")
    return StoredOutputs(path, by_hash, rows)


def _hash_and_output(record: Any) -> tuple[str | None, str | None]:
    if not isinstance(record, dict):
        return None, None
    if isinstance(record.get("prompt_hash"), str) and isinstance(record.get("output"), str):
        return record["prompt_hash"], record["output"]
    messages = record.get("messages", record.get("prompt"))
    output = record.get("gpt_output", record.get("output"))
    if isinstance(messages, list | str) and isinstance(output, str):
        return prompt_hash(messages), output
    return None, None


def match_outputs(stored: StoredOutputs, prompts: Sequence[Any], *, set_name: str) -> list[str | None]:
    """The stored output of each prompt in order (None where the file has none); a file that matches none of
    the prompts is refused: it holds another dataset's predictions."""
    outputs = [stored.take(prompt_hash(prompt)) for prompt in prompts]
    matched = sum(output is not None for output in outputs)
    if matched == 0:
        raise GrailError(
            f"--predictions {stored.path}: none of its {stored.rows:,} predictions is for a prompt of '{set_name}' "
            f"({len(prompts):,} rows): it holds another dataset's predictions (or another prompt layout)"
        )
    return outputs
