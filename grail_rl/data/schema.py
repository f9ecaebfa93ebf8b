"""The cleaned step row: one viewer at one step, "current video -> next click" (DOMAIN.md section 2).

:func:`normalize_row` turns one raw record (from JSONL, Parquet, CSV, a saved dataset or the hub) into
the *normalised row* every prompt section reads, or raises :class:`RowDropped` with a reason from
:data:`DROP_REASONS`. It never raises anything else for bad data, so one broken row never stops a run.

Raw record fields (``*_json`` fields may be JSON strings or already-parsed lists):

==========================  =========================================================================
``issue``                   required; ``gun_control`` or ``minimum_wage`` (any non-empty string)
``slate_items_json``        required (or ``slate_items``); ordered options, each with ``id`` and/or
                            ``title``, optional ``channel_title``, ``duration`` (s), ``view_count``,
                            ``like_count``, ``comment_count``
``next_video_id``           the gold click, resolved by id, then by canonical title (``next_video_title``)
``gold_index``              1-based gold position; used when ``next_video_id`` is absent
``watched_detailed_json``   history before the current video (or ``watched_detailed``): ``id``, ``title``,
                            ``channel_title``, ``watch_ms``/``total_length_ms`` or ``watch_seconds``/
                            ``total_seconds``, optional ``percent_complete``
``current_video_*``         ``id``, ``title``, ``channel`` of the video playing
``participant_id``, ``participant_study``, ``session_id``, ``step_index``, ``opinion_direction``
survey fields               :data:`SURVEY_FIELDS`; kept under ``survey`` in the normalised row
``viewer_text``             carried VIEWER line (used when the survey fields cannot rebuild it)
``viewpoint_text``          carried "Initial Viewpoint:" text
``highlights_text``         carried SURVEY HIGHLIGHTS sentence
==========================  =========================================================================
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

DROP_REASONS: dict[str, str] = {
    "missing_field": "a required field is missing or empty",
    "malformed_json": "a JSON field (or the whole line) could not be parsed",
    "wrong_type": "a field holds a value of the wrong type",
    "empty_slate": "the slate has no options",
    "duplicate_ids": "the slate lists the same video id twice",
    "malformed_slate": "a slate option has neither id nor title",
    "gold_unresolved": "the clicked video is not on the slate (by id or canonical title)",
    "gold_out_of_range": "gold_index is outside 1..n_options",
    "bad_opinion_direction": "opinion_direction is not increase, decrease or no_change",
    "unparsed_prompt": "a rendered prompt could not be parsed back into a row (e.g. no OPTIONS block)",
    "prompt_too_long": "the rendered prompt is longer than prompt.max_prompt_tokens (long_prompts: drop)",
}

OPINION_DIRECTIONS = ("increase", "decrease", "no_change")

SURVEY_FIELDS: tuple[str, ...] = (
    "age", "gender", "race", "pid1", "pid_lean", "ideo1", "income", "college", "freq_youtube",
    "pol_interest", "religpew", "newsint", "state",
    # gun control
    "stricter_laws", "assault_ban", "handgun_ban", "concealed_safe", "gun_index", "gun_enthusiasm",
    "gun_importance",
    # minimum wage
    "minwage15_w1", "mw_support_w1", "minwage_text_w1", "mw_index_w1",
)  # fmt: skip

ITEM_FIELDS = ("id", "title", "channel_title", "duration", "view_count", "like_count", "comment_count")
COUNT_FIELDS = ("view_count", "like_count", "comment_count")
_TEXT_FIELDS = ("viewer_text", "viewpoint_text", "highlights_text")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


class RowDropped(Exception):
    """A raw record that cannot become a row; ``reason`` is a key of :data:`DROP_REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def canonical_title(title: Any) -> str:
    """Lowercase alphanumerics only: how a click is matched to the slate when ids disagree."""
    return _NON_ALNUM.sub("", str(title).lower()) if title else ""


def clean_text(value: Any) -> str | None:
    """A display string: control characters (tabs, newlines, NUL) become spaces so a title can never
    break the prompt's line structure; blank strings and NaN become None. Other spacing is kept as is,
    because re-rendering an imported prompt must reproduce it byte for byte."""
    if value is None:
        return None
    if type(value) is not str:  # the common case, a plain str, skips the NaN check and the copy
        if isinstance(value, float) and math.isnan(value):
            return None
        value = str(value)
    if not value.isprintable():  # every character _CONTROL matches is unprintable: skip the regex mostly
        value = _CONTROL.sub(" ", value)
    return value if value and not value.isspace() else None  # the same test as value.strip(), no copy


def _number(value: Any, where: str, key: str = "", *, integer: bool = True) -> int | float | None:
    """``value`` as a number (None when absent); the field is named ``where.key`` in errors only, so the
    name is not formatted for every valid value."""
    if type(value) is int:  # the common case first: a plain int (never a bool) is already valid
        return value
    if value is None or value == "":
        return None
    field = f"{where}.{key}" if key else where
    if isinstance(value, bool):
        raise RowDropped("wrong_type", f"{field} is a boolean")
    if isinstance(value, str):
        try:
            value = float(value.replace(",", ""))
        except ValueError:
            raise RowDropped("wrong_type", f"{field} is not a number: {value[:40]!r}") from None
    if not isinstance(value, int | float):
        raise RowDropped("wrong_type", f"{field} is {type(value).__name__}, not a number")
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not math.isfinite(value):
            raise RowDropped("wrong_type", f"{field} is infinite")
        return int(round(value)) if integer else value
    return value


def _json_list(raw: Mapping[str, Any], names: tuple[str, ...], *, required: bool) -> list[Any] | None:
    for name in names:
        value = raw.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, str):
            if not value.strip():
                continue
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise RowDropped("malformed_json", f"{name}: {exc.msg} at char {exc.pos}") from None
        if hasattr(value, "tolist"):  # numpy arrays from Parquet/pandas
            value = value.tolist()
        if not isinstance(value, list):
            raise RowDropped("wrong_type", f"{name} is {type(value).__name__}, not a list")
        return value
    if required:
        raise RowDropped("missing_field", f"{' or '.join(names)}")
    return None


def _item(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise RowDropped("wrong_type", f"{where} is {type(entry).__name__}, not an object")
    get = entry.get
    return {
        "id": clean_text(get("id")),
        "title": clean_text(get("title")),
        "channel_title": clean_text(get("channel_title", get("channel"))),
        "duration": _number(get("duration"), where, "duration"),
        "view_count": _number(get("view_count"), where, "view_count"),
        "like_count": _number(get("like_count"), where, "like_count"),
        "comment_count": _number(get("comment_count"), where, "comment_count"),
    }


def _history_entry(entry: Any, where: str) -> dict[str, Any]:
    item = _item(entry, where)
    get = entry.get
    watch = _number(get("watch_seconds"), where, "watch_seconds")
    total = _number(get("total_seconds"), where, "total_seconds")
    watch_ms = _number(get("watch_ms"), where, "watch_ms", integer=False)
    total_ms = _number(get("total_length_ms"), where, "total_length_ms", integer=False)
    pct = _number(get("percent_complete"), where, "percent_complete")
    if watch is None and watch_ms is not None:
        watch = int(round(watch_ms / 1000))
    if total is None and total_ms is not None:
        total = int(round(total_ms / 1000))
    if pct is None and watch_ms is not None and total_ms:
        pct = int(round(100 * watch_ms / total_ms))
    return {
        "id": item["id"],
        "title": item["title"],
        "channel_title": item["channel_title"],
        "watch_seconds": watch,
        "total_seconds": total,
        "percent_complete": pct,
    }


def _resolve_gold(raw: Mapping[str, Any], slate: list[dict[str, Any]]) -> int:
    gold_id = clean_text(raw.get("next_video_id"))
    if gold_id is not None:
        for i, item in enumerate(slate, 1):
            if item["id"] == gold_id:
                return i
        wanted = canonical_title(raw.get("next_video_title"))
        if wanted:
            for i, item in enumerate(slate, 1):
                if canonical_title(item["title"]) == wanted:
                    return i
        raise RowDropped("gold_unresolved", f"next_video_id {gold_id!r} matches no option by id or title")
    gold = _number(raw.get("gold_index"), "gold_index", integer=False)
    if gold is None:
        raise RowDropped("missing_field", "next_video_id or gold_index")
    if not float(gold).is_integer():
        raise RowDropped("wrong_type", f"gold_index {gold!r} is not a whole number")
    if not 1 <= gold <= len(slate):
        raise RowDropped("gold_out_of_range", f"gold_index {int(gold)} with {len(slate)} options")
    return int(gold)


def _survey(raw: Mapping[str, Any]) -> dict[str, Any]:
    survey: dict[str, Any] = {}
    source = raw.get("survey") if isinstance(raw.get("survey"), Mapping) else raw
    for key in SURVEY_FIELDS:
        value = source.get(key)
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        survey[key] = clean_text(value) if isinstance(value, str) else value
    return survey


def normalize_row(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised row for ``raw``; raises :class:`RowDropped` when it cannot be used."""
    if not isinstance(raw, Mapping):
        raise RowDropped("wrong_type", f"the record is {type(raw).__name__}, not an object")
    issue = raw.get("issue")
    if not isinstance(issue, str) or not issue.strip():
        raise RowDropped("missing_field" if not issue else "wrong_type", "issue")
    entries = _json_list(raw, ("slate_items", "slate_items_json"), required=True)
    if not entries:
        raise RowDropped("empty_slate", "the slate has no options")
    slate = [_item(entry, f"slate[{i}]") for i, entry in enumerate(entries, 1)]
    ids = [item["id"] for item in slate if item["id"]]
    if len(ids) != len(set(ids)):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise RowDropped("duplicate_ids", f"video id {dup!r} appears twice on the slate")
    for i, item in enumerate(slate, 1):
        if item["id"] is None and item["title"] is None:
            raise RowDropped("malformed_slate", f"option {i} has neither id nor title")
    gold_index = _resolve_gold(raw, slate)
    n_options = _number(raw.get("n_options"), "n_options")
    if n_options is not None and n_options != len(slate):
        raise RowDropped("wrong_type", f"n_options is {n_options} but the slate has {len(slate)} options")
    history = _json_list(raw, ("watched_detailed", "watched_detailed_json"), required=False) or []
    direction = raw.get("opinion_direction")
    if direction is not None and not (isinstance(direction, float) and math.isnan(direction)):
        direction = str(direction).strip().lower()
        if direction not in OPINION_DIRECTIONS:
            raise RowDropped("bad_opinion_direction", f"opinion_direction is {raw.get('opinion_direction')!r}")
    else:
        direction = None
    step = _number(raw.get("step_index"), "step_index")
    row: dict[str, Any] = {
        "issue": issue.strip(),
        "participant_id": clean_text(raw.get("participant_id")),
        "participant_study": clean_text(raw.get("participant_study")),
        "session_id": clean_text(raw.get("session_id")),
        "step_index": step,
        "current": {
            "id": clean_text(raw.get("current_video_id")),
            "title": clean_text(raw.get("current_video_title")),
            "channel_title": clean_text(raw.get("current_video_channel")),
        },
        "slate": slate,
        "history": [_history_entry(entry, f"watched[{i}]") for i, entry in enumerate(history, 1)],
        "gold_index": gold_index,
        "n_options": len(slate),
        "opinion_direction": direction,
        "survey": _survey(raw),
    }
    for key in _TEXT_FIELDS:
        value = raw.get(key)
        row[key] = value if isinstance(value, str) and value.strip() else None
    return row
