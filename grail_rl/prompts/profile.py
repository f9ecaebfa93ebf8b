"""Viewer profile text from survey fields: the VIEWER line, the Initial Viewpoint and SURVEY HIGHLIGHTS.

Each function returns ``None`` when the row's survey fields say nothing; the sections then fall back to
the text an imported row carries (``viewer_text``, ``viewpoint_text``, ``highlights_text``). The phrasing
follows the study's rendered prompts (``../shared/data/grail-validation``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# freq_youtube is coded 0 (rarely) .. 6 (several times a day) in the survey.
YOUTUBE_FREQUENCY = (
    "rarely",
    "occasionally",
    "a few times a month",
    "weekly",
    "several times a week",
    "daily",
    "multiple times per day",
)
_GENDER_WORDS = {"female": "woman", "woman": "woman", "f": "woman", "male": "man", "man": "man", "m": "man"}

# (field, phrase when the viewer supports it, phrase when they oppose it), by issue, in priority order.
_STANCES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "gun_control": (
        ("stricter_laws", "Supports stricter gun laws", "Opposes stricter gun laws"),
        ("assault_ban", "Supports an assault weapons ban", "Opposes an assault weapons ban"),
        ("handgun_ban", "Supports a handgun ban", "Opposes a handgun ban"),
    ),
    "minimum_wage": (
        ("minwage15_w1", "Supports a $15 minimum wage", "Opposes a $15 minimum wage"),
        ("mw_support_w1", "Supports raising the minimum wage", "Opposes raising the minimum wage"),
    ),
}


def _present(value: Any) -> bool:
    return value is not None and value != "" and not (isinstance(value, float) and math.isnan(value))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "y", "support", "supports"}
    return bool(value) and float(value) >= 0.5


def youtube_frequency(value: Any) -> str | None:
    if not _present(value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return YOUTUBE_FREQUENCY[max(0, min(6, int(value)))]
    return str(value)


def percent(value: Any) -> str | None:
    """A 0-1 score (or a 0-100 number) as a whole percentage."""
    if not _present(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{round(number * 100 if number <= 1 else number)}%"


def viewer_line(survey: Mapping[str, Any]) -> str | None:
    """'32-year-old, White (non-Hispanic) woman; republican conservative; $60,000-$69,999; ...'."""
    parts: list[str] = []
    who = " ".join(
        p
        for p in (
            str(survey["race"]) if _present(survey.get("race")) else "",
            _GENDER_WORDS.get(str(survey.get("gender", "")).strip().lower(), ""),
        )
        if p
    )
    age = survey.get("age")
    if _present(age):
        age_text = f"{int(float(age))}-year-old" if str(age).replace(".", "", 1).isdigit() else str(age)
        parts.append(f"{age_text}, {who}" if who else age_text)
    elif who:
        parts.append(who)
    politics = " ".join(str(survey[k]).lower() for k in ("pid1", "ideo1") if _present(survey.get(k)))
    if politics:
        parts.append(politics)
    if _present(survey.get("income")):
        parts.append(str(survey["income"]))
    if _present(survey.get("college")) and _truthy(survey["college"]):
        parts.append("college-educated")
    freq = youtube_frequency(survey.get("freq_youtube"))
    if freq:
        parts.append(f"watches YouTube {freq}")
    if _present(survey.get("state")):
        parts.append(f"lives in {survey['state']}")
    return "; ".join(parts) + "." if parts else None


def initial_viewpoint(issue: str, survey: Mapping[str, Any]) -> str | None:
    """The viewer's stance on the issue before the session, from the first stance field present."""
    for field, supports, opposes in _STANCES.get(issue, ()):
        if _present(survey.get(field)):
            return supports if _truthy(survey[field]) else opposes
    if issue == "gun_control" and _present(survey.get("gun_importance")):
        return f"Gun policy importance is {survey['gun_importance']}"
    if issue == "minimum_wage" and _present(survey.get("minwage_text_w1")):
        return f"Preferred minimum wage is {_dollars(survey['minwage_text_w1'])}"
    return None


def _dollars(value: Any) -> str:
    text = str(value)
    return text if text.startswith("$") else f"${text}"


def survey_highlights(issue: str, survey: Mapping[str, Any]) -> str | None:
    """'party identification is Republican, ideology is Conservative, ..., and identifies as ...'."""
    facts: list[str] = []

    def add(field: str, template: str) -> None:
        if _present(survey.get(field)):
            facts.append(template.format(survey[field]))

    add("pid1", "party identification is {}")
    add("pid_lean", "party lean is {}")
    add("ideo1", "ideology is {}")
    add("pol_interest", "political interest is {}")
    add("religpew", "religious affiliation is {}")
    freq = youtube_frequency(survey.get("freq_youtube"))
    if freq:
        facts.append(f"watches YouTube {freq}")
    add("newsint", "news interest is {}")
    if issue == "gun_control":
        add("gun_importance", "gun policy importance is {}")
        if _present(survey.get("gun_index")):
            facts.append(f"gun regulation support score is {percent(survey['gun_index'])}")
        if _present(survey.get("gun_enthusiasm")):
            keen = _truthy(survey["gun_enthusiasm"])
            facts.append(("identifies" if keen else "does not identify") + " as enthusiastic about guns")
    elif issue == "minimum_wage":
        if _present(survey.get("minwage_text_w1")):
            facts.append(f"preferred minimum wage target is {_dollars(survey['minwage_text_w1'])}")
        if _present(survey.get("mw_index_w1")):
            facts.append(f"minimum wage support score is {percent(survey['mw_index_w1'])}")
        if _present(survey.get("minwage15_w1")):
            facts.append(f"$15 minimum wage support is {percent(survey['minwage15_w1'])}")
    if not facts:
        return None
    if len(facts) == 1:
        return facts[0] + "."
    return ", ".join(facts[:-1]) + ", and " + facts[-1] + "."
