"""Read raw records from one data source, streaming: JSONL, rendered-prompt JSONL, Parquet, CSV, a folder
saved by ``datasets.save_to_disk``, or a hub dataset id.

:func:`iter_records` yields ``(row_number, record)`` where ``record`` is a mapping or, for a line that is
not even JSON, a :class:`RowDropped`. A file that is not the format its extension says raises one
:class:`GrailError` naming the file (and the row, where there is one), never a traceback.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from grail_rl.data.schema import RowDropped, parse_json_text
from grail_rl.errors import GrailError, describe_exception
from grail_rl.files import check_readable_path

Record = Mapping[str, Any] | RowDropped
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".csv": "csv"}
_BATCH = 4096
# One row of the study is a few kilobytes; a line or CSV field this long is not a row, and reading it whole
# would hold it all in memory.
MAX_LINE = 32 * 1024 * 1024


def detect_format(path: Path, declared: str = "auto") -> str:
    """The reader for ``path``: the declared format, else by extension; a folder is a saved dataset.
    JSONL whose first record has ``messages`` and no slate is rendered-prompt JSONL."""
    fmt = declared if declared != "auto" else "arrow" if path.is_dir() else EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise GrailError(
            f"{path}: cannot tell the format from the extension '{path.suffix}'; "
            "use .jsonl, .parquet, .csv or a saved dataset folder, or set format: in the data source"
        )
    check_readable_path(path, "data", folder_ok=True)  # a FIFO or a device would block or never end
    if path.is_dir():
        if fmt != "arrow":
            raise GrailError(
                f"{path} is a folder, but format: {fmt} reads a file; a folder is read as a dataset saved by "
                "datasets.save_to_disk (format: arrow or auto)"
            )
        for inner in sorted(path.rglob("*")):  # the saved dataset's own files must be plain files too
            if not inner.is_dir():
                check_readable_path(inner, "data", folder_ok=False)
    if declared == "auto" and fmt == "jsonl" and _looks_rendered(path):
        return "rendered"
    return fmt


def _looks_rendered(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            for line in bounded_lines(fh):
                if line is not None and line.strip():
                    first = json.loads(line)
                    return isinstance(first, dict) and "messages" in first and not (
                        "slate_items_json" in first or "slate_items" in first
                    )
    except (ValueError, OSError, RecursionError):
        return False
    return False


def bounded_lines(fh: Any) -> Iterator[bytes | None]:
    """The lines of a binary file, each read with at most :data:`MAX_LINE` bytes in memory; a longer line
    is skipped to its end and yielded as None, so the row count stays right."""
    while True:
        line = fh.readline(MAX_LINE)
        if not line:
            return
        if len(line) < MAX_LINE or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):  # discard the rest of the over-long line
            line = fh.readline(MAX_LINE)
        yield None


def appended_lines(path: Path, *, torn_ok: Callable[[bytes], bool] | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) of an append-only JSONL log grail-rl writes (a progress log, generations), each line
    bounded as :func:`bounded_lines` bounds it (None for an over-long one). A last line without its newline was
    cut by a kill mid-write: once every earlier line has been read, it is cut off the file, so the next append
    starts on a fresh line. ``torn_ok`` decides whether such a line is one grail-rl wrote (else it is yielded
    as it is, for the caller to refuse, and the file is left alone)."""
    good_end, torn = 0, False
    with path.open("rb") as fh:
        for n, line in enumerate(bounded_lines(fh), 1):
            if line is not None and not line.endswith(b"\n"):
                if torn_ok is not None and not torn_ok(line):
                    yield n, line
                    return
                torn = True
                break
            good_end += len(line) if line is not None else 0
            yield n, line
    if torn:
        with path.open("r+b") as fh:
            fh.truncate(good_end)


def iter_records(
    path: Path | None = None, *, fmt: str = "auto", hub: str | None = None, split: str | None = None
) -> Iterator[tuple[int, Record]]:
    """Every record of one source with its 1-based row number, streamed."""
    if hub is not None:
        yield from _iter_hub(hub, split)
        return
    assert path is not None
    fmt = detect_format(path, fmt)
    if fmt == "jsonl":
        yield from _iter_jsonl(path)
    elif fmt == "rendered":
        from grail_rl.data.rendered import rendered_to_record

        for n, rec in _iter_jsonl(path):
            if isinstance(rec, RowDropped):
                yield n, rec
                continue
            try:
                yield n, rendered_to_record(rec)
            except RowDropped as exc:
                yield n, exc
    elif fmt == "csv":
        yield from _iter_csv(path)
    elif fmt == "parquet":
        yield from _iter_parquet(path)
    elif fmt == "arrow":
        yield from _iter_saved(path, split)
    else:  # pragma: no cover - DataSource.format is a Literal
        raise GrailError(f"{path}: unknown format {fmt!r}")


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Record]]:
    parsed_any = False
    with path.open("rb") as fh:
        for n, raw in enumerate(bounded_lines(fh), 1):
            if raw is None:
                yield n, RowDropped("line_too_long", f"line {n} is longer than {MAX_LINE // (1024 * 1024)} MiB")
                continue
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise GrailError(
                    f"{path}: row {n} is not UTF-8 text; is this really a JSONL file (one JSON object per line)?"
                ) from None
            try:
                record = parse_json_text(text, "line")
            except RowDropped as exc:
                if not parsed_any and n == 1 and not raw.lstrip().startswith((b"{", b"[")):
                    raise GrailError(
                        f"{path}: row 1 is not JSON ({exc.detail}); is this really a JSONL file "
                        "(one JSON object per line)?"
                    ) from None
                yield n, exc
                continue
            parsed_any = True
            if not isinstance(record, dict):
                yield n, RowDropped("wrong_type", f"the line holds a JSON {type(record).__name__}, not an object")
                continue
            yield n, record


def _bounded_text_lines(fh: Any, path: Path) -> Iterator[str]:
    """The lines of a text file for the csv reader, none longer than :data:`MAX_LINE` characters in memory."""
    n = 0
    while True:
        line = fh.readline(MAX_LINE)
        if not line:
            return
        n += 1
        if len(line) >= MAX_LINE and not line.endswith("\n"):
            raise GrailError(
                f"{path}: line {n} is longer than {MAX_LINE // (1024 * 1024)} MiB; is this really a CSV file?"
            )
        yield line


def _iter_csv(path: Path) -> Iterator[tuple[int, Record]]:
    csv.field_size_limit(MAX_LINE)  # slate/history JSON columns are long, but not this long
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(_bounded_text_lines(fh, path))
            for n, record in enumerate(reader, 1):
                if None in record:  # more cells than header columns
                    yield n, RowDropped("wrong_type", f"row has {len(record[None]) } extra cells")  # type: ignore[index]
                    continue
                yield n, {k: (v if v != "" else None) for k, v in record.items()}
    except UnicodeDecodeError:
        raise GrailError(f"{path}: not UTF-8 text; is this really a CSV file?") from None
    except csv.Error as exc:
        raise GrailError(f"{path}: not a readable CSV file ({exc})") from None


def _iter_parquet(path: Path) -> Iterator[tuple[int, Record]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise GrailError(f"{path}: not a Parquet file ({exc})") from None
    n = 0
    batches = parquet.iter_batches(batch_size=_BATCH)
    while True:
        try:
            batch = next(batches, None)
            records = batch.to_pylist() if batch is not None else None
        except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
            raise GrailError(f"{path}: cannot read the Parquet data after row {n} ({describe_exception(exc)[:200]})") from None
        if records is None:
            return
        for record in records:
            n += 1
            yield n, record


def _rows_of(dataset: Any, where: str) -> Iterator[tuple[int, Record]]:
    import pyarrow as pa

    n = 0
    batches = iter(dataset.iter(batch_size=_BATCH))
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
            raise GrailError(f"{where}: cannot read the data after row {n} ({describe_exception(exc)[:200]})") from None
        if batch is None:
            return
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys), strict=True):
            n += 1
            yield n, dict(zip(keys, values, strict=True))


def _iter_saved(path: Path, split: str | None) -> Iterator[tuple[int, Record]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - a broken folder fails in many ways inside datasets and pyarrow
        raise GrailError(f"{path}: not a readable folder saved by datasets.save_to_disk ({describe_exception(exc)[:200]})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split is None or split not in loaded:
            raise GrailError(f"{path}: holds splits {', '.join(loaded)}; set split: to one of them")
        loaded = loaded[split]
    yield from _rows_of(loaded, str(path))


def _iter_hub(hub: str, split: str | None) -> Iterator[tuple[int, Record]]:
    import datasets

    try:
        stream = datasets.load_dataset(hub, split=split or "train", streaming=True)
    except Exception as exc:  # the hub raises many types (offline, missing repo, gated...)
        raise GrailError(f"hub dataset {hub!r} (split {split or 'train'!r}) could not be loaded: {exc}") from None
    yield from enumerate(stream, 1)
