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

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

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
    return sorted(folder.glob(f"eval-{name}.progress-*.jsonl")) if folder.is_dir() else []


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

    def load(self, prompt_hashes: Sequence[str | None]) -> dict[int, Prediction]:
        """The rows an earlier run finished, by row id (empty when there is no log); a torn last line is cut."""
        if not self.path.exists():
            return {}
        done: dict[int, Prediction] = {}
        good_end = 0
        with self.path.open("rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        torn = lines.pop()  # after the last newline: empty, or a line a kill cut short
        for n, line in enumerate(lines, 1):
            record = self._record(line, n)
            good_end += len(line) + 1
            if record is None:
                continue
            row = record.pop("row_id")
            if not isinstance(row, int) or not 0 <= row < len(prompt_hashes):
                raise self._corrupt(n, f"row_id {row!r} is not a row of this set")
            if record.get("prompt_hash") != prompt_hashes[row] or row in done:
                continue  # another prompt now, or a repeat: never counted (twice)
            done[row] = Prediction(**{k: v for k, v in record.items() if k in _FIELDS}, row_id=row)
        if torn:
            with self.path.open("r+b") as fh:
                fh.truncate(good_end)
        return done

    def _record(self, line: bytes, n: int) -> dict[str, Any] | None:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise self._corrupt(n, "is not JSON") from None
        if not isinstance(record, dict):
            raise self._corrupt(n, "is not a JSON object")
        if "header" in record:
            if record["header"].get("settings") != json.loads(json.dumps(self.settings, default=str)):
                raise self._corrupt(n, "was written with other settings than its name says")
            return None
        if "row_id" not in record or "gold_index" not in record or "n_options" not in record:
            raise self._corrupt(n, "is not a prediction record")
        return record

    def _corrupt(self, n: int, what: str) -> GrailError:
        return GrailError(
            f"{self.path}: line {n} {what}; it is not a progress log grail-rl can resume from. Move it away, or "
            "pass --overwrite to start the evaluation over"
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
