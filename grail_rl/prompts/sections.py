"""The built-in prompt sections, each one block of the user prompt (DOMAIN.md section 3).

They read the normalised row of :func:`grail_rl.data.schema.normalize_row`. Their default output is the
study's exact text: re-rendering a row imported from ``../shared/data/grail-validation`` reproduces the
original user prompt. A section with ``attach_to_previous = True`` continues the previous block on the
next line instead of starting a new block after a blank line (the Initial Viewpoint under VIEWER).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from grail_rl.errors import GrailError
from grail_rl.files import read_text_limited
from grail_rl.plugins.base import PluginConfig, PromptSection
from grail_rl.prompts import profile
from grail_rl.recipe.fields import ExistingFile


class ViewerSection(PromptSection):
    """VIEWER: age, identity, politics, income, education, YouTube habit and state, on one line."""

    name = "viewer"

    def render(self, row: Mapping[str, Any]) -> str | None:
        text = profile.viewer_line(row.get("survey") or {}) or row.get("viewer_text")
        return f"VIEWER {text}" if text else None


class InitialViewpointSection(PromptSection):
    """Initial Viewpoint: the viewer's stance on the issue before the session (left out when unknown)."""

    name = "initial_viewpoint"
    attach_to_previous: ClassVar[bool] = True

    def render(self, row: Mapping[str, Any]) -> str | None:
        text = profile.initial_viewpoint(row.get("issue", ""), row.get("survey") or {}) or row.get("viewpoint_text")
        return f"Initial Viewpoint: {text}" if text else None


class CurrentlyWatchingSection(PromptSection):
    """CURRENTLY WATCHING: the title and channel of the video playing."""

    name = "currently_watching"

    def render(self, row: Mapping[str, Any]) -> str | None:
        current = row.get("current") or {}
        title = current.get("title") or current.get("id")
        if not title:
            return None
        channel = current.get("channel_title")
        return f"CURRENTLY WATCHING {title} (from {channel})" if channel else f"CURRENTLY WATCHING {title}"


class RecentlyWatchedSection(PromptSection):
    """RECENTLY WATCHED (NEWEST LAST): the videos watched before the current one, with watch time."""

    name = "recently_watched"

    class Config(PluginConfig):
        max_history: int = Field(12, ge=0, description="Show at most this many of the latest videos; 0 = all.")

    EMPTY: ClassVar[str] = "(no recently watched videos available)"

    def render(self, row: Mapping[str, Any]) -> str | None:
        history = row.get("history") or []
        limit = self.config.max_history  # type: ignore[attr-defined]
        if limit:
            history = history[-limit:]
        lines = ["RECENTLY WATCHED (NEWEST LAST)"]
        for i, entry in enumerate(history, 1):
            title = entry.get("title") or entry.get("id") or "untitled video"
            details = []
            watched, total = entry.get("watch_seconds"), entry.get("total_seconds")
            if watched is not None and total:
                pct = entry.get("percent_complete")
                pct = round(100 * watched / total) if pct is None else pct
                details.append(f"watched {watched}s of {total}s ({pct}% complete)")
            elif watched is not None:
                details.append(f"watched {watched}s")
            if entry.get("channel_title"):
                details.append(f"from {entry['channel_title']}")
            lines.append(f"{i}. {title} ({', '.join(details)})" if details else f"{i}. {title}")
        if len(lines) == 1:
            lines.append(self.EMPTY)
        return "\n".join(lines)


class SurveyHighlightsSection(PromptSection):
    """SURVEY HIGHLIGHTS: one sentence of the viewer's survey answers (left out when there are none)."""

    name = "survey_highlights"

    def render(self, row: Mapping[str, Any]) -> str | None:
        text = profile.survey_highlights(row.get("issue", ""), row.get("survey") or {}) or row.get("highlights_text")
        return f"SURVEY HIGHLIGHTS\n{text}" if text else None


# video_stats.json of the study is 60 KB for 412 videos; a file 1000 times larger is still a plausible catalogue.
MAX_VIDEO_STATS = 256 * 1024 * 1024


@lru_cache(maxsize=8)
def load_video_stats(path: str) -> dict[str, dict[str, Any]]:
    """Engagement counts by video id from a JSON object such as ``video_stats.json``."""
    try:
        stats = json.loads(read_text_limited(Path(path), "video_stats", limit=MAX_VIDEO_STATS))
    except (RecursionError, ValueError) as exc:
        raise GrailError(f"{path}: cannot read video stats ({exc}); expected a JSON object keyed by video id") from None
    if not isinstance(stats, dict):
        raise GrailError(f"{path}: video stats must be a JSON object keyed by video id")
    return stats


class OptionsSection(PromptSection):
    """OPTIONS: the numbered slate with channel, length and engagement counts."""

    name = "options"

    class Config(PluginConfig):
        show_ids: bool = Field(False, description="Add ', id <video id>' to every option (always when untitled).")
        engagement: Literal["item", "stats", "none"] = Field(
            "item",
            description="Engagement counts from the slate item, from video_stats (by id, else the item), or none.",
        )
        video_stats: ExistingFile | None = Field(
            None, description="JSON object of engagement counts by video id, e.g. video_stats.json."
        )

        @model_validator(mode="after")
        def _stats_file_with_stats(self) -> Any:
            if self.engagement == "stats" and self.video_stats is None:
                raise ValueError("engagement: stats needs video_stats: <file>")
            if self.engagement != "stats" and self.video_stats is not None:
                raise ValueError(
                    f"video_stats is read only with engagement: stats (it is '{self.engagement}'); set "
                    "engagement: stats, or remove video_stats"
                )
            return self

    def __init__(self, config: PluginConfig | None = None):
        super().__init__(config)
        cfg: Any = self.config
        if cfg.engagement == "stats" and cfg.video_stats is None:
            raise GrailError("prompt section 'options': engagement: stats needs video_stats: <file>")
        self._stats = load_video_stats(str(cfg.video_stats)) if cfg.engagement == "stats" else {}
        # Read once: pydantic attribute access per option is a measurable share of prompt building.
        self._show_ids = bool(cfg.show_ids)
        self._engagement = cfg.engagement != "none"

    def option_line(self, i: int, item: Mapping[str, Any]) -> str:
        get = item.get
        title = get("title")
        video_id = get("id")
        details = []
        if get("channel_title"):
            details.append(item["channel_title"])
        duration = get("duration")
        if duration is not None:
            details.append(f"{duration}s long")
        if video_id and (self._show_ids or not title):
            details.append(f"id {video_id}")
        line = f"{i}. {title or 'untitled video'}"
        if details:
            line = f"{line} ({', '.join(details)})"
        if self._engagement:
            counts = self._stats.get(video_id or "", item) if self._stats else item
            # Unrolled rather than a loop over the three counts: this runs for every option of every row.
            parts = []
            if isinstance(views := counts.get("view_count"), int):
                parts.append("views " + format(views, ","))
            if isinstance(likes := counts.get("like_count"), int):
                parts.append("likes " + format(likes, ","))
            if isinstance(comments := counts.get("comment_count"), int):
                parts.append("comments " + format(comments, ","))
            if parts:
                line = f"{line} — Engagement: {', '.join(parts)}"
        return line

    def render(self, row: Mapping[str, Any]) -> str | None:
        line = self.option_line
        return "\n".join(["OPTIONS", *[line(i, item) for i, item in enumerate(row.get("slate") or (), 1)]])


def issue_label(issue: str) -> str:
    """'gun_control' -> 'Gun control'."""
    return issue.replace("_", " ").strip().capitalize()


class QuestionsSection(PromptSection):
    """QUESTIONS: which option the viewer clicks next and, optionally, where their opinion moves."""

    name = "questions"

    class Config(PluginConfig):
        opinion: bool = Field(True, description="Also ask whether the viewer's opinion on the issue changes.")

    def render(self, row: Mapping[str, Any]) -> str | None:
        lines = ["QUESTIONS", "1. Which option number will the viewer watch next?"]
        if self.config.opinion:  # type: ignore[attr-defined]
            lines.append(
                f"2. After this recommendation, will the viewer's opinion on {issue_label(row.get('issue', ''))} "
                "increase, decrease, or stay the same?"
            )
        return "\n".join(lines)


BUILTIN_SECTIONS: tuple[type[PromptSection], ...] = (
    ViewerSection,
    InitialViewpointSection,
    CurrentlyWatchingSection,
    RecentlyWatchedSection,
    SurveyHighlightsSection,
    OptionsSection,
    QuestionsSection,
)
DEFAULT_SECTION_NAMES: tuple[str, ...] = tuple(cls.name for cls in BUILTIN_SECTIONS)
