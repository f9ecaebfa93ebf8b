"""Import rendered-prompt files (the format of ``../shared/data/grail-validation``) back into step rows.

A rendered record holds ``messages`` (system + user prompt), ``gold_index``, ``n_options``, ``issue`` and
``participant_study``. The user prompt is parsed block by block: the slate (title, channel, duration,
engagement) from OPTIONS, the current video, the history, and the viewer's profile, which is carried as
text (``viewer_text``, ``viewpoint_text``, ``highlights_text``) because the survey answers behind it
cannot be recovered. Re-rendering an imported row with the default sections gives back the original
user prompt; :func:`import_rendered` measures how often.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grail_rl.data.drops import DropReport
from grail_rl.data.schema import RowDropped, normalize_row
from grail_rl.files import atomic_output

_OPTION = re.compile(r"^(\d+)\. (.*)$")
_WITH_LENGTH = re.compile(r"^(.*) \((?:(.*), )?(\d+)s long(?:, id (\S+))?\)$")
_WITH_CHANNEL = re.compile(r"^(.*) \(([^()]*)\)$")
_WATCHED = re.compile(r"^(.*) \(watched (\d+)s of (\d+)s \((\d+)% complete\)(?:, from (.*))?\)$")
_FROM = re.compile(r"^(.*) \(from (.*)\)$")
_ENGAGEMENT = {"views": "view_count", "likes": "like_count", "comments": "comment_count"}


def _user_prompt(record: Mapping[str, Any]) -> str:
    messages = record.get("messages")
    if not isinstance(messages, list):
        raise RowDropped("missing_field", "messages")
    for message in messages:
        if isinstance(message, Mapping) and message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    raise RowDropped("missing_field", "messages has no user message")


def _option(text: str) -> dict[str, Any]:
    item: dict[str, Any] = {}
    head, sep, engagement = text.rpartition(" — Engagement: ")
    if not sep:
        head = text
    else:
        for part in engagement.split(", "):
            label, _, number = part.partition(" ")
            if label not in _ENGAGEMENT or not number.replace(",", "").isdigit():
                raise RowDropped("unparsed_prompt", f"engagement part {part!r}")
            item[_ENGAGEMENT[label]] = int(number.replace(",", ""))
    match = _WITH_LENGTH.match(head)
    if match:
        item.update(title=match[1], channel_title=match[2], duration=int(match[3]), id=match[4])
        return item
    match = _WITH_CHANNEL.match(head)
    if match:
        item.update(title=match[1], channel_title=match[2])
        return item
    item["title"] = head
    return item


def _history_entry(text: str) -> dict[str, Any]:
    match = _WATCHED.match(text)
    if match:
        return {
            "title": match[1],
            "watch_seconds": int(match[2]),
            "total_seconds": int(match[3]),
            "percent_complete": int(match[4]),
            "channel_title": match[5],
        }
    match = _FROM.match(text)
    if match:
        return {"title": match[1], "channel_title": match[2]}
    return {"title": text}


def _numbered(lines: list[str], what: str) -> list[str]:
    out = []
    for line in lines:
        match = _OPTION.match(line)
        if not match or int(match[1]) != len(out) + 1:
            raise RowDropped("unparsed_prompt", f"{what} line {line[:60]!r}")
        out.append(match[2])
    return out


def rendered_to_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A raw step record (see :mod:`grail_rl.data.schema`) recovered from one rendered record."""
    out: dict[str, Any] = {
        key: record.get(key) for key in ("issue", "participant_study", "participant_id", "gold_index", "n_options")
    }
    for block in _user_prompt(record).split("\n\n"):
        header, _, body = block.partition("\n")
        if header.startswith("VIEWER "):
            out["viewer_text"] = header[len("VIEWER ") :]
            for line in body.split("\n") if body else []:
                if line.startswith("Initial Viewpoint: "):
                    out["viewpoint_text"] = line[len("Initial Viewpoint: ") :]
        elif header.startswith("CURRENTLY WATCHING "):
            text = header[len("CURRENTLY WATCHING ") :]
            match = _FROM.match(text)
            out["current_video_title"], out["current_video_channel"] = (match[1], match[2]) if match else (text, None)
        elif header == "RECENTLY WATCHED (NEWEST LAST)":
            lines = body.split("\n") if body else []
            if lines and lines[0].startswith("(no recently watched"):
                lines = []
            out["watched_detailed"] = [_history_entry(t) for t in _numbered(lines, "history")]
        elif header == "SURVEY HIGHLIGHTS":
            out["highlights_text"] = body
        elif header == "OPTIONS":
            out["slate_items"] = [_option(t) for t in _numbered(body.split("\n") if body else [], "option")]
    if "slate_items" not in out:
        raise RowDropped("unparsed_prompt", "the user prompt has no OPTIONS block")
    return out


@dataclass
class ImportSummary:
    """What :func:`import_rendered` wrote and how faithfully the rows re-render."""

    source: str
    out: str
    rows: int
    report: DropReport
    checked: int = 0
    matched: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def match_rate(self) -> float:
        return self.matched / self.checked if self.checked else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "out": self.out,
            "rows": self.rows,
            "checked": self.checked,
            "matched": self.matched,
            "match_rate": round(self.match_rate, 6),
            "mismatches": self.mismatches,
            "drops": self.report.as_dict(),
        }


def first_difference(a: str, b: str) -> dict[str, Any]:
    """Where two prompts first differ, with a little context from each."""
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return {"char": i, "original": a[max(0, i - 40) : i + 40], "rendered": b[max(0, i - 40) : i + 40]}


def import_rendered(path: Path, out: Path, *, check: bool = True, builder: Any = None) -> ImportSummary:
    """Convert ``path`` into row-schema JSONL at ``out``; with ``check``, re-render every row with the
    default sections (or ``builder``) and count exact matches with the original user prompt."""
    from grail_rl.data.sources import iter_records
    from grail_rl.prompts.builder import PromptBuilder

    if check and builder is None:
        builder = PromptBuilder.default()
    report = DropReport(split="import")
    summary = ImportSummary(str(path), str(out), 0, report)
    with atomic_output(out) as fh:  # all rows or none: an interrupted import leaves ``out`` as it was
        for n, record in iter_records(path, fmt="jsonl"):
            report.read += 1
            try:
                if isinstance(record, RowDropped):
                    raise record
                raw = rendered_to_record(record)
                row = normalize_row(raw)
            except RowDropped as exc:
                report.add(exc.reason, path.name, n, exc.detail)
                continue
            report.kept += 1
            summary.rows += 1
            fh.write(json.dumps({k: v for k, v in raw.items() if v is not None}, ensure_ascii=False) + "\n")
            if check:
                summary.checked += 1
                original = _user_prompt(record)
                rendered = builder.user_prompt(row)
                if rendered == original:
                    summary.matched += 1
                elif len(summary.mismatches) < 20:
                    summary.mismatches.append({"row": n, **first_difference(original, rendered)})
    return summary
