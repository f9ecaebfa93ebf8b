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
    get = survey.get
    parts: list[str] = []
    race = get("race")
    race = str(race) if _present(race) else ""
    gender = _GENDER_WORDS.get(str(get("gender", "")).strip().lower(), "")
    who = f"{race} {gender}" if race and gender else race or gender
    age = get("age")
    if _present(age):
        age_text = f"{int(float(age))}-year-old" if str(age).replace(".", "", 1).isdigit() else str(age)
        parts.append(f"{age_text}, {who}" if who else age_text)
    elif who:
        parts.append(who)
    party, ideology = get("pid1"), get("ideo1")
    politics = [str(v).lower() for v in (party, ideology) if _present(v)]
    if politics:
        parts.append(" ".join(politics))
    if _present(income := get("income")):
        parts.append(str(income))
    if _present(college := get("college")) and _truthy(college):
        parts.append("college-educated")
    freq = youtube_frequency(get("freq_youtube"))
    if freq:
        parts.append(f"watches YouTube {freq}")
    if _present(state := get("state")):
        parts.append(f"lives in {state}")
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


# (field, text before the value) of the SURVEY HIGHLIGHTS facts that quote a field as it is, in order.
_PLAIN_FACTS = (
    ("pid1", "party identification is "),
    ("pid_lean", "party lean is "),
    ("ideo1", "ideology is "),
    ("pol_interest", "political interest is "),
    ("religpew", "religious affiliation is "),
)


def survey_highlights(issue: str, survey: Mapping[str, Any]) -> str | None:
    """'party identification is Republican, ideology is Conservative, ..., and identifies as ...'."""
    get = survey.get
    facts = [f"{text}{value}" for field, text in _PLAIN_FACTS if _present(value := get(field))]
    freq = youtube_frequency(get("freq_youtube"))
    if freq:
        facts.append(f"watches YouTube {freq}")
    if _present(value := get("newsint")):
        facts.append(f"news interest is {value}")
    if issue == "gun_control":
        if _present(value := get("gun_importance")):
            facts.append(f"gun policy importance is {value}")
        if _present(value := get("gun_index")):
            facts.append(f"gun regulation support score is {percent(value)}")
        if _present(value := get("gun_enthusiasm")):
            facts.append(("identifies" if _truthy(value) else "does not identify") + " as enthusiastic about guns")
    elif issue == "minimum_wage":
        if _present(value := get("minwage_text_w1")):
            facts.append(f"preferred minimum wage target is {_dollars(value)}")
        if _present(value := get("mw_index_w1")):
            facts.append(f"minimum wage support score is {percent(value)}")
        if _present(value := get("minwage15_w1")):
            facts.append(f"$15 minimum wage support is {percent(value)}")
    if not facts:
        return None
    if len(facts) == 1:
        return facts[0] + "."
    return ", ".join(facts[:-1]) + ", and " + facts[-1] + "."
