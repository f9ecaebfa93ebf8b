"""The row fields a reward may ask for, beyond the columns every split carries.

Every built split has the columns of :data:`grail_rl.data.dataset.OUTPUT_COLUMNS` (``prompt``, ``gold_index``,
``n_options``, ``issue``, ``slate_titles``, ...). A reward that needs more of the row (the current video's
title, the history, the survey answers) declares it (``RewardFunction.row_fields``, or a ``row_fields`` entry
of its Config); the data pipeline then carries exactly the fields the recipe's rewards ask for into the
splits, one Arrow column each, so memory grows only by what is used. A field the schema does not have is a
validation error naming the reward and the field.

Each field is read from the normalised row (:func:`grail_rl.data.schema.normalize_row`). ``survey`` is a
mapping of whatever answers the row has: it travels as JSON text and the reward receives the mapping.
No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RowField:
    """One optional row field: its column name, what it holds, its Arrow type, and how to read it."""

    name: str
    description: str
    kind: str  # "string", "int", "strings", "ints", "json"
    read: Callable[[Mapping[str, Any]], Any]


def _slate(key: str) -> Callable[[Mapping[str, Any]], list[Any]]:
    return lambda row: [item.get(key) for item in row["slate"]]


def _history(key: str) -> Callable[[Mapping[str, Any]], list[Any]]:
    return lambda row: [entry.get(key) for entry in row.get("history") or []]


_FIELDS = (
    RowField("current_video_id", "the id of the video playing now", "string", lambda r: r["current"]["id"]),
    RowField("current_video_title", "the title of the video playing now", "string", lambda r: r["current"]["title"]),
    RowField("current_video_channel", "the channel of the video playing now", "string",
             lambda r: r["current"]["channel_title"]),  # fmt: skip
    RowField("session_id", "the viewing session", "string", lambda r: r.get("session_id")),
    RowField("step_index", "the step within the session (0 = first click)", "int", lambda r: r.get("step_index")),
    RowField("slate_durations", "each option's length in seconds (None where unknown)", "ints", _slate("duration")),
    RowField("slate_view_counts", "each option's view count", "ints", _slate("view_count")),
    RowField("slate_like_counts", "each option's like count", "ints", _slate("like_count")),
    RowField("slate_comment_counts", "each option's comment count", "ints", _slate("comment_count")),
    RowField("history_ids", "the ids of the videos watched before, oldest first", "strings", _history("id")),
    RowField("history_titles", "the titles of the videos watched before, oldest first", "strings", _history("title")),
    RowField("viewer_text", "the viewer's rendered profile line, where the data carries one", "string",
             lambda r: r.get("viewer_text")),  # fmt: skip
    RowField("survey", "the viewer's survey answers (age, pid1, gun_index, mw_index_w1, ...) as a mapping", "json",
             lambda r: r.get("survey") or {}),  # fmt: skip
)
ROW_FIELDS: dict[str, RowField] = {field.name: field for field in _FIELDS}


def arrow_type(field: RowField) -> Any:
    import pyarrow as pa

    return {
        "string": pa.string(), "int": pa.int64(), "strings": pa.list_(pa.string()), "ints": pa.list_(pa.int64()),
        "json": pa.string(),
    }[field.kind]  # fmt: skip


def stored_value(field: RowField, row: Mapping[str, Any]) -> Any:
    """The field's value for ``row`` as its column stores it (JSON text for a mapping)."""
    value = field.read(row)
    if field.kind == "json":
        return json.dumps(value, sort_keys=True, allow_nan=False)
    if field.kind == "ints":
        return [int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in value]
    return value


def decode_columns(fields: Iterable[str], kwargs: dict[str, Any]) -> None:
    """Turn the JSON columns among ``fields`` back into mappings, in place, as a reward receives them."""
    for name in fields:
        field = ROW_FIELDS.get(name)
        if field is None or field.kind != "json" or name not in kwargs:
            continue
        values = kwargs[name]
        if isinstance(values, str):  # one value for the whole batch, as a caller may pass it
            kwargs[name] = json.loads(values)
        elif not isinstance(values, bytes | Mapping) and hasattr(values, "__iter__"):
            kwargs[name] = [json.loads(v) if isinstance(v, str) else v for v in values]


def unknown_fields(names: Iterable[str], always: Iterable[str]) -> list[str]:
    """The names in ``names`` that are neither an optional row field nor a column every split has."""
    known = set(ROW_FIELDS) | set(always)
    return [name for name in names if name not in known]
