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

# No YouTube title or channel comes near this; a longer text field is broken data, not a long title.
MAX_TEXT = 5_000
# Counts, durations and indexes are non-negative; anything past a quadrillion is a broken value.
MAX_NUMBER = 10**15

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
    "line_too_long": "a line of the file is longer than any row could be (no newline for megabytes)",
    "text_too_long": f"a text field (title, channel, ...) is longer than {MAX_TEXT:,} characters",
    "invalid_text": "a text field holds a lone surrogate, which is not valid Unicode",
    "bad_value": f"a count, duration or index is negative or larger than {MAX_NUMBER:.0e}",
    "prompt_too_long": "the rendered prompt does not fit the prompt limit (prompt.max_prompt_tokens, else the "
    "model's context window minus trainer.max_completion_length), even after truncation where long_prompts is "
    "truncate",
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
_SURROGATE = re.compile(r"[\ud800-\udfff]")
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


def check_text(value: str, field: str) -> str:
    """``value`` unless it is too long or not valid Unicode (a lone surrogate cannot be written as UTF-8, so
    it would crash the Arrow file or the tokenizer later); raises :class:`RowDropped` then."""
    if len(value) > MAX_TEXT:
        raise RowDropped("text_too_long", f"{field} has {len(value):,} characters (limit {MAX_TEXT:,})")
    if not value.isprintable() and _SURROGATE.search(value):  # surrogates are unprintable: regex rarely runs
        raise RowDropped("invalid_text", f"{field} holds a lone surrogate (not valid Unicode)")
    return value


def clean_text(value: Any, field: str = "a text field") -> str | None:
    """A display string: control characters (tabs, newlines, NUL) become spaces so a title can never
    break the prompt's line structure; blank strings and NaN become None. Other spacing is kept as is,
    because re-rendering an imported prompt must reproduce it byte for byte. Numbers become text (ids
    read from CSV); a list, a mapping or any other object is a wrong type, as are over-long and invalid
    texts (see :func:`check_text`)."""
    if value is None:
        return None
    if type(value) is not str:  # the common case, a plain str, skips the NaN check and the copy
        if isinstance(value, float) and math.isnan(value):
            return None
        if not isinstance(value, int | float) or isinstance(value, float) and not math.isfinite(value):
            raise RowDropped("wrong_type", f"{field} is {type(value).__name__} {_short(value)}, not text")
        value = str(value)
    check_text(value, field)
    if not value.isprintable():  # every character _CONTROL matches is unprintable: skip the regex mostly
        value = _CONTROL.sub(" ", value)
    return value if value and not value.isspace() else None  # the same test as value.strip(), no copy


def _short(value: Any) -> str:
    """A bounded description of an unexpected value (a nested one could be huge, or too deep to print)."""
    if isinstance(value, dict | list):
        return f"of {len(value)} item(s)"
    try:
        return repr(value)[:40]
    except Exception:  # noqa: BLE001 - an object whose repr fails is still just a wrong type
        return ""


def _number(value: Any, where: str, key: str = "", *, integer: bool = True) -> int | float | None:
    """``value`` as a number (None when absent); the field is named ``where.key`` in errors only, so the
    name is not formatted for every valid value."""
    if type(value) is int and 0 <= value <= MAX_NUMBER:  # the common case first (a bool is never exactly int)
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
    if not 0 <= value <= MAX_NUMBER:
        raise RowDropped("bad_value", f"{field} is {value:.6g}, outside 0..{MAX_NUMBER:.0e}")
    if isinstance(value, float):
        return int(round(value)) if integer else value
    return value


def parse_json_text(text: str | bytes, name: str) -> Any:
    """``json.loads(text)``, with every way JSON can fail (bad syntax, nesting deeper than the parser allows,
    integers with thousands of digits) turned into a ``malformed_json`` :class:`RowDropped`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowDropped("malformed_json", f"{name}: {exc.msg} (char {exc.pos})") from None
    except RecursionError:
        raise RowDropped("malformed_json", f"{name}: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts from text
        raise RowDropped("malformed_json", f"{name}: {str(exc)[:120]}") from None


def _json_list(raw: Mapping[str, Any], names: tuple[str, ...], *, required: bool) -> list[Any] | None:
    for name in names:
        value = raw.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, str):
            if not value.strip():
                continue
            value = parse_json_text(value, name)
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
        "id": clean_text(get("id"), f"{where}.id"),
        "title": clean_text(get("title"), f"{where}.title"),
        "channel_title": clean_text(get("channel_title", get("channel")), f"{where}.channel_title"),
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
    gold_id = clean_text(raw.get("next_video_id"), "next_video_id")
    if gold_id is not None:
        for i, item in enumerate(slate, 1):
            if item["id"] == gold_id:
                return i
        wanted = canonical_title(clean_text(raw.get("next_video_title"), "next_video_title"))
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
        if isinstance(value, str):
            value = clean_text(value, f"survey field {key}")
        elif not isinstance(value, int | float) or isinstance(value, float) and not math.isfinite(value):
            raise RowDropped("wrong_type", f"survey field {key} is {type(value).__name__} {_short(value)}")
        survey[key] = value
    return survey


def normalize_row(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised row for ``raw``; raises :class:`RowDropped` when it cannot be used."""
    if not isinstance(raw, Mapping):
        raise RowDropped("wrong_type", f"the record is {type(raw).__name__}, not an object")
    issue = raw.get("issue")
    if not isinstance(issue, str) or not issue.strip():
        raise RowDropped("missing_field" if not issue else "wrong_type", "issue")
    check_text(issue, "issue")
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
        direction = str(direction).strip().lower() if isinstance(direction, str) else direction
        if direction not in OPINION_DIRECTIONS:
            raise RowDropped("bad_opinion_direction", f"opinion_direction is {_short(raw.get('opinion_direction'))}")
    else:
        direction = None
    step = _number(raw.get("step_index"), "step_index")
    row: dict[str, Any] = {
        "issue": issue.strip(),
        "participant_id": clean_text(raw.get("participant_id"), "participant_id"),
        "participant_study": clean_text(raw.get("participant_study"), "participant_study"),
        "session_id": clean_text(raw.get("session_id"), "session_id"),
        "step_index": step,
        "current": {
            "id": clean_text(raw.get("current_video_id"), "current_video_id"),
            "title": clean_text(raw.get("current_video_title"), "current_video_title"),
            "channel_title": clean_text(raw.get("current_video_channel"), "current_video_channel"),
        },
        "slate": slate,
        "history": [_history_entry(entry, f"watched[{i}]") for i, entry in enumerate(history, 1)],
        "gold_index": gold_index,
        "n_options": len(slate),
        "opinion_direction": direction,
        "survey": _survey(raw),
    }
    for key in _TEXT_FIELDS:  # carried as written (an imported prompt re-renders byte for byte)
        value = raw.get(key)
        row[key] = check_text(value, key) if isinstance(value, str) and value.strip() else None
    return row
