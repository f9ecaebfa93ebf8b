"""Synthetic viewers: a realistic dataset in the row schema, drawn from a known choice model.

Viewers get a survey profile and a stance on their issue (-1 opposes regulation / a higher minimum wage,
+1 supports it), correlated with ideology. Each issue has a catalogue of videos with a slant on the same
scale, a channel, a duration and engagement counts. A session starts on a seed video; at each step the
viewer sees a slate of 2 to 5 options and clicks one with probability softmax(u), where

    u_j = ALIGN * stance * slant_j + POSITION[j] + POPULARITY * z(log views_j)

Sessions run several steps; the opinion direction comes from the pre/post stance change (a drift toward
the slant of what was watched, plus noise). The split is grouped by viewer (10 % validation). The ideal
predictor picks argmax u (the choice model's most likely option); its validation accuracy is the ceiling a
trained model can be measured against. Everything is drawn from ``random.Random(seed)``: deterministic.

Run: ``grail-rl data synth --n 2000 --seed 0 --out DIR`` or ``generate(2000, 0, DIR)``.
"""

from __future__ import annotations

import json
import math
import random
import string
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grail_rl.files import atomic_output, ensure_writable_folder, write_json_atomically

ALIGN = 2.0
POSITION = (0.6, 0.3, 0.1, 0.0, -0.1)
POPULARITY = 0.4
SLATE_SIZES = ((2, 0.08), (3, 0.05), (4, 0.75), (5, 0.12))
ISSUES = ("gun_control", "minimum_wage")
SUMMARY_FILE = "summary.json"
SET_FILES = ("train.jsonl", "validation.jsonl", SUMMARY_FILE)

_SUBJECTS = {
    "gun_control": ("background checks", "assault weapons", "concealed carry", "the Second Amendment", "red flag laws",
                    "school safety", "handgun ownership", "gun violence"),
    "minimum_wage": ("a $15 minimum wage", "fast food workers", "small business owners", "living wages", "automation",
                     "teen employment", "inflation and pay", "tipped workers"),
}  # fmt: skip
_TEMPLATES = {
    1: ("Why We Need Action on {s}", "The Case for Reform: {s}", "{s}: What the Research Really Shows",
        "Voices From the Front Line on {s}", "It's Time to Talk About {s}"),
    -1: ("The Truth About {s} They Won't Tell You", "Why More Rules on {s} Backfire", "{s}: A Reality Check",
         "Debunking the Myths About {s}", "Leave {s} Alone"),
    0: ("{s} Explained in 5 Minutes", "Both Sides Debate {s}", "What You Should Know About {s}"),
}  # fmt: skip
_CHANNELS = {
    1: ("NowThis News", "Vox", "The Young Turks", "MSNBC", "AJ+", "Senator Bernie Sanders"),
    -1: ("Fox News", "PragerU", "Colion Noir", "Reason TV", "Learn Liberty", "BlazeTV"),
    0: ("PBS NewsHour", "CNBC Television", "The New York Times", "VOA News"),
}
_INCOMES = ("$20,000-$24,999", "$30,000-$39,999", "$40,000-$49,999", "$60,000-$69,999", "$80,000-$99,999",
            "$120,000-$149,999")  # fmt: skip
_RACES = ("White (non-Hispanic)", "Black or African-American (non-Hispanic)", "Hispanic or Latino", "Asian")
_STATES = ("Ohio", "Texas", "Georgia", "New York", "California", "Florida", "Pennsylvania")
_INTEREST = ("not at all interested in politics", "not very interested in politics",
             "somewhat interested in politics", "very interested in politics")  # fmt: skip


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote and how well the choice model's own best guess does."""

    n: int
    seed: int
    out_dir: str
    train_rows: int
    validation_rows: int
    ideal_accuracy: float
    expected_ideal_accuracy: float
    random_accuracy: float
    choice_model: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _video_id(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(11))


def _catalogue(rng: random.Random, issue: str) -> list[dict[str, Any]]:
    videos, seen = [], set()
    for subject in _SUBJECTS[issue]:
        for side, templates in _TEMPLATES.items():
            for template in templates:
                title = template.format(s=" ".join(w[0].upper() + w[1:] for w in subject.split()))
                if title in seen:
                    continue
                seen.add(title)
                views = int(math.exp(rng.gauss(11, 1.6)))
                videos.append({
                    "id": _video_id(rng),
                    "title": title,
                    "channel_title": rng.choice(_CHANNELS[side]),
                    "duration": rng.randint(60, 1200),
                    "view_count": views,
                    "like_count": int(views * rng.uniform(0.005, 0.05)),
                    "comment_count": int(views * rng.uniform(0.0005, 0.005)),
                    "slant": round(max(-1.0, min(1.0, side * rng.uniform(0.4, 1.0) + rng.gauss(0, 0.15))), 3),
                })  # fmt: skip
    logs = [math.log(v["view_count"]) for v in videos]
    mean, sd = sum(logs) / len(logs), (sum((x - sum(logs) / len(logs)) ** 2 for x in logs) / len(logs)) ** 0.5
    for video, x in zip(videos, logs, strict=True):
        video["pop_z"] = (x - mean) / sd
    return videos


def _viewer(rng: random.Random, k: int) -> dict[str, Any]:
    ideology = rng.gauss(0, 1)
    party, ideo = (("Democrat", "Liberal") if ideology < -0.4 else ("Republican", "Conservative") if ideology > 0.4
                   else ("Independent", "Moderate"))  # fmt: skip
    issue = rng.choice(ISSUES)
    stance = max(-1.0, min(1.0, -0.6 * ideology + rng.gauss(0, 0.4)))
    survey: dict[str, Any] = {
        "age": rng.randint(18, 80), "gender": rng.choice(("female", "male")), "race": rng.choice(_RACES),
        "pid1": party, "ideo1": ideo, "income": rng.choice(_INCOMES), "college": rng.random() < 0.45,
        "freq_youtube": rng.randint(0, 6), "pol_interest": rng.choice(_INTEREST), "state": rng.choice(_STATES),
    }  # fmt: skip
    index = round((stance + 1) / 2 / 0.05) * 0.05
    if issue == "gun_control":
        survey.update(stricter_laws=stance > 0, gun_index=round(index, 2), gun_enthusiasm=stance < -0.3)
    else:
        survey.update(minwage15_w1=round(index, 2), mw_index_w1=round(index, 2))
    return {"participant_id": f"synth-{k:06d}", "issue": issue, "stance": stance, "survey": survey}


def _utilities(viewer: dict[str, Any], slate: list[dict[str, Any]]) -> list[float]:
    return [
        ALIGN * viewer["stance"] * v["slant"] + POSITION[j] + POPULARITY * v["pop_z"] for j, v in enumerate(slate)
    ]


def _session(rng: random.Random, viewer: dict[str, Any], catalogue: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of one viewer's session, each with its utilities (for the ideal predictor)."""
    sizes, weights = zip(*SLATE_SIZES, strict=True)
    current = rng.choice(catalogue)
    history: list[dict[str, Any]] = []
    drift, rows = 0.0, []
    for step in range(rng.randint(3, 6)):
        watched = {current["id"], *(h["id"] for h in history)}
        pool = [v for v in catalogue if v["id"] not in watched]
        slate = rng.sample(pool, min(len(pool), rng.choices(sizes, weights)[0]))
        utils = _utilities(viewer, slate)
        top = max(utils)
        probs = [math.exp(u - top) for u in utils]
        gold = rng.choices(range(len(slate)), probs)[0]
        rows.append({
            "issue": viewer["issue"], "participant_id": viewer["participant_id"], "participant_study": "synthetic",
            "session_id": f"{viewer['participant_id']}-s1", "step_index": step,
            "current_video_id": current["id"], "current_video_title": current["title"],
            "current_video_channel": current["channel_title"],
            "slate_items_json": [{k: v[k] for k in v if k not in ("slant", "pop_z")} for v in slate],
            "watched_detailed_json": [dict(h) for h in history],
            "next_video_id": slate[gold]["id"], "next_video_title": slate[gold]["title"],
            "gold_index": gold + 1, "n_options": len(slate), **viewer["survey"],
            "_ideal": utils.index(top) + 1, "_p_ideal": 1 / sum(probs),
        })  # fmt: skip
        total_ms = current["duration"] * 1000
        history.append({
            "id": current["id"], "title": current["title"], "channel_title": current["channel_title"],
            "watch_ms": int(total_ms * rng.uniform(0.1, 1.0)), "total_length_ms": total_ms,
        })  # fmt: skip
        drift += current["slant"]
        current = slate[gold]
    delta = 0.08 * drift / len(rows) + rng.gauss(0, 0.05)
    direction = "increase" if delta > 0.03 else "decrease" if delta < -0.03 else "no_change"
    for row in rows:
        row["opinion_direction"] = direction
    return rows


def generate(n: int, seed: int, out_dir: str | Path) -> SynthSummary:
    """Write ``train.jsonl``, ``validation.jsonl`` and ``summary.json`` (about ``n`` rows in all) into ``out_dir``."""
    rng = random.Random(seed)
    catalogues = {issue: _catalogue(rng, issue) for issue in ISSUES}
    out = ensure_writable_folder(Path(out_dir), "synthetic data folder")
    counts = {"train": 0, "validation": 0}
    hits = expected = chance = 0.0
    k = 0
    # Each file is replaced only once complete; summary.json, written last, marks a complete set.
    with atomic_output(out / "train.jsonl") as train, atomic_output(out / "validation.jsonl") as validation:
        while sum(counts.values()) < n:
            viewer = _viewer(rng, k)
            k += 1
            split = "validation" if rng.random() < 0.1 else "train"
            for row in _session(rng, viewer, catalogues[viewer["issue"]])[: n - sum(counts.values())]:
                ideal, p_ideal = row.pop("_ideal"), row.pop("_p_ideal")
                if split == "validation":
                    hits += ideal == row["gold_index"]
                    expected += p_ideal
                    chance += 1 / row["n_options"]
                counts[split] += 1
                (validation if split == "validation" else train).write(json.dumps(row, ensure_ascii=False) + "\n")
    m = max(counts["validation"], 1)
    summary = SynthSummary(
        n=n, seed=seed, out_dir=str(out), train_rows=counts["train"], validation_rows=counts["validation"],
        ideal_accuracy=round(hits / m, 4), expected_ideal_accuracy=round(expected / m, 4),
        random_accuracy=round(chance / m, 4),
        choice_model={"align": ALIGN, "position": list(POSITION), "popularity": POPULARITY,
                      "utility": "align*stance*slant + position[j] + popularity*z(log views)"},
    )  # fmt: skip
    write_json_atomically(out / SUMMARY_FILE, summary.as_dict())
    return summary


def ensure_generated(n: int, seed: int, out_dir: Path) -> Path:
    """``out_dir`` holding the set for (n, seed), generated unless a matching summary is already there."""
    summary = out_dir / SUMMARY_FILE
    if summary.is_file():
        try:
            info = json.loads(summary.read_text(encoding="utf-8"))
            if info.get("n") == n and info.get("seed") == seed and (out_dir / "validation.jsonl").is_file():
                return out_dir
        except ValueError:
            pass
    generate(n, seed, out_dir)
    return out_dir
