"""The incremental predictions log of an evaluation in progress, and resuming from it.

While a set is evaluated, every finished chunk of rows is appended to ``eval-NAME.progress-KEY.jsonl``
beside the reports and flushed to disk: a header line with the evaluation's settings, then one line per row
(its ``row_id``, the prompt hash, the output or the option distribution, the parsed index, the gold, whether
it is correct). ``KEY`` is a digest of the settings (the model and its files, the scoring mode and decoding,
and the evaluated rows themselves), so a rerun with the same settings finds its own log and evaluates only
the rows the log lacks; a rerun with other settings never mixes its rows in.

On reading, a record is kept once per ``row_id`` (nothing is counted twice) and only when its prompt hash is
the one the row has now; a torn last line (a kill mid-write) is cut off; anything else that is not a record
is an error naming the file and line. The log is removed only after the complete report is written.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from grail_rl.data.sources import appended_lines
from grail_rl.errors import GrailError
from grail_rl.evaluation.metrics import Prediction

FORMAT = "grail-rl evaluation progress"
_FIELDS = {f.name for f in fields(Prediction)}


def settings_key(settings: dict[str, Any]) -> str:
    """12 hex digits that change whenever anything in ``settings`` (JSON-able) changes."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def rows_digest(prompt_hashes: Sequence[str | None], golds: Sequence[tuple[int, int]]) -> str:
    """A digest of the evaluated rows, in order: a resumed log must be about exactly these rows."""
    digest = hashlib.sha256()
    for key, (gold, size) in zip(prompt_hashes, golds, strict=True):
        digest.update(f"{key}:{gold}:{size}\n".encode())
    return digest.hexdigest()[:16]


def progress_path(folder: Path, name: str, key: str) -> Path:
    return folder / f"eval-{name}.progress-{key}.jsonl"


def progress_logs(folder: Path, name: str) -> list[Path]:
    """Every progress log of set ``name`` in ``folder`` (any settings)."""
    return sorted(folder.glob(f"eval-{glob.escape(name)}.progress-*.jsonl")) if folder.is_dir() else []


def model_fingerprint(location: str) -> dict[str, Any]:
    """Size and modification time of a model folder's files: an evaluation of a model that was replaced
    since (retrained into the same folder) does not resume from the old model's rows."""
    folder = Path(location)
    if not folder.is_dir():
        return {"location": location}
    files = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in {".json", ".safetensors", ".bin", ".gguf", ".model"}:
            stat = path.stat()
            files[path.name] = [stat.st_size, stat.st_mtime_ns]
    return {"location": str(folder.resolve()), "files": files}


@dataclass
class ProgressLog:
    """The progress log of one evaluated set with one set of settings."""

    path: Path
    settings: dict[str, Any]

    def load(self, rows: Sequence[tuple[str | None, int, int]]) -> dict[int, Prediction]:
        """The rows an earlier run finished, by row id (empty when there is no log). ``rows``: each evaluated
        row's (prompt hash, gold, slate size); a record counts only where all three still match, once. A torn last
        line (a kill mid-write) is cut off; any other line that is not a valid record is one error."""
        if not self.path.exists():
            return {}
        done: dict[int, Prediction] = {}
        for n, line in appended_lines(self.path):
            if line is None:
                raise self._corrupt(n, "is longer than any record")
            record = self._record(line, n)
            if record is None:
                continue
            row = record.pop("row_id")
            if type(row) is not int or not 0 <= row < len(rows):
                raise self._corrupt(n, f"has row_id {row!r}, not a row of this set")
            key, gold, size = rows[row]
            if (record.get("prompt_hash"), record.get("gold_index"), record.get("n_options")) != (key, gold, size):
                continue  # another row now (the data changed under the same position): never trusted
            if row not in done:  # a repeat (a retried append) is counted once
                done[row] = self._prediction(record, row, n)
        return done

    def _prediction(self, record: dict[str, Any], row: int, n: int) -> Prediction:
        """The record as a Prediction, every field of the type a report relies on."""
        size = record["n_options"]
        parsed = record.get("parsed_index")
        if parsed is not None and (type(parsed) is not int or not -(10**9) < parsed < 10**9):
            raise self._corrupt(n, f"has parsed_index {parsed!r}, not a whole number or null")
        for key in ("formatted",):
            if type(record.get(key, False)) is not bool:
                raise self._corrupt(n, f"has {key} {record.get(key)!r}, not true or false")
        for key in ("output", "issue", "participant_study", "participant_id", "opinion_gold", "opinion_pick", "prompt_hash"):
            if record.get(key) is not None and not isinstance(record.get(key), str):
                raise self._corrupt(n, f"has {key} {record.get(key)!r}, not text or null")
        probabilities = record.get("probabilities")
        if probabilities is not None and not (
            isinstance(probabilities, list) and len(probabilities) == size
            and all(type(q) in (int, float) and math.isfinite(q) and 0 <= q <= 1 for q in probabilities)
        ):  # fmt: skip
            raise self._corrupt(n, "has probabilities that are not one finite number in 0..1 per option")
        return Prediction(**{k: v for k, v in record.items() if k in _FIELDS and k != "row_id"}, row_id=row)

    def _record(self, line: bytes, n: int) -> dict[str, Any] | None:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise self._corrupt(n, "is not JSON") from None
        if not isinstance(record, dict):
            raise self._corrupt(n, "is not a JSON object")
        if "header" in record:
            header = record["header"]
            if not isinstance(header, dict) or header.get("settings") != json.loads(json.dumps(self.settings, default=str)):
                raise self._corrupt(n, "was written with other settings than its name says")
            return None
        if "row_id" not in record or "gold_index" not in record or "n_options" not in record:
            raise self._corrupt(n, "is not a prediction record")
        return record

    def _corrupt(self, n: int, what: str) -> GrailError:
        return GrailError(
            f"{self.path}: line {n} {what}; it is not a progress log grail-rl can resume from. Move it away (or "
            "delete it) to start the evaluation over"
        )

    def append(self, predictions: Sequence[Prediction]) -> None:
        """Add finished rows (with their ``row_id``) and make them durable before going on."""
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", encoding="utf-8") as fh:
            if new:
                fh.write(json.dumps({"header": {"format": FORMAT, "settings": self.settings}}, default=str) + "\n")
            for pred in predictions:
                fh.write(json.dumps(pred.as_dict()) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
