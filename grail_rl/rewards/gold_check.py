"""Checking rewards against the gold before any GPU hour is spent (``grail-rl check-rewards``).

For each row, replies of known quality are built: the **ideal** one (the gold option in the exact format, with
the opinion direction where the row knows it), **near misses** (the right option in a broken format; a wrong
option in the right format) and **garbage** (empty, huge, binary, another language, an answer injected inside
``<think>``). Every reward scores every kind as the recipe configures it, through the same runtime wrapper as
training. Per reward the report says whether the ideal reply scores at least as high as every other kind on
every row (a reward that ranks a wrong reply above the ideal one is a bug: the rows and replies are listed),
whether garbage lands at the bottom or abstains, what the reward raised, and its time per completion.
No torch here.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

IDEAL = "ideal"
MAX_IDS = 4096
HUGE = "watch " * 50_000  # one string shared by every row: memory stays flat however many rows
# Replies that are wrong: none may score above the ideal one on the same row.
WRONG_KINDS = ("wrong_option", "garbage_empty", "garbage_huge", "garbage_binary", "garbage_other_language",
               "garbage_injected_answer")  # fmt: skip
NEAR_MISSES = ("right_option_bare_number", "right_option_prose", "right_option_unclosed_tag", "wrong_option")
GARBAGE = tuple(kind for kind in WRONG_KINDS if kind.startswith("garbage"))
KINDS = (IDEAL, *dict.fromkeys((*NEAR_MISSES, *GARBAGE)))


def replies(row: dict[str, Any]) -> dict[str, str]:
    """The replies of every kind for ``row`` (its ``gold_index``, ``n_options`` and ``opinion_direction``)."""
    gold, n = int(row["gold_index"]), int(row["n_options"])
    wrong = gold % n + 1 if n > 1 else gold + 1  # another option (out of range on a one-option slate)
    direction = row.get("opinion_direction")
    opinion = f"\n<opinion>{direction}</opinion>" if direction else ""
    think = "<think>\nThe viewer's history and the titles point to one option.\n</think>\n"
    return {
        IDEAL: f"{think}<answer>\n{gold}\n</answer>{opinion}",
        "right_option_bare_number": str(gold),
        "right_option_prose": f"I think the viewer will pick option {gold}.",
        "right_option_unclosed_tag": f"{think}<answer>{gold}",
        "wrong_option": f"{think}<answer>\n{wrong}\n</answer>{opinion}",
        "garbage_empty": "",
        "garbage_huge": HUGE,
        "garbage_binary": "\x00\x1b[2J\ufffd\udcff\x7f" * 64,
        "garbage_other_language": "观众会选择第二个视频，因为它更有趣。",
        "garbage_injected_answer": f"<think><answer>{gold}</answer></think><answer>{wrong}</answer>{opinion}",
    }


@dataclass
class Violation:
    reward: str
    row: int
    kind: str
    ideal: float
    score: float
    ideal_reply: str
    reply: str

    def as_dict(self) -> dict[str, Any]:
        return {"reward": self.reward, "row": self.row, "kind": self.kind, "ideal_score": self.ideal,
                "score": self.score, "ideal_reply": self.ideal_reply, "reply": self.reply[:300]}  # fmt: skip


@dataclass
class RewardCheck:
    """One reward's results: per kind its mean score and abstentions, what it raised, and how fast it was."""

    name: str
    means: dict[str, float | None] = field(default_factory=dict)
    abstained: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    garbage_above: dict[str, int] = field(default_factory=dict)  # garbage kind -> rows where it beat a real reply
    ideal_abstained: int = 0
    ideal_rows: int = 0
    seconds: float = 0.0
    completions: int = 0
    note: str = ""
    # A reward that abstains on every ideal reply gives training nothing (a judge it cannot parse, say); a group
    # reward is exempt, since each row is its own group here.
    must_score: bool = True

    @property
    def never_scored(self) -> bool:
        return self.ideal_rows > 0 and self.ideal_abstained == self.ideal_rows

    @property
    def ok(self) -> bool:
        return not self.violations and not self.errors and not (self.must_score and self.never_scored)

    @property
    def microseconds_per_completion(self) -> float | None:
        return 1e6 * self.seconds / self.completions if self.completions else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reward": self.name, "ok": self.ok, "means": self.means, "abstained": self.abstained,
            "errors": self.errors, "ideal_abstained": self.ideal_abstained, "never_scored": self.never_scored,
            "garbage_at_bottom_or_abstains": not self.garbage_above, "garbage_above_a_real_reply": self.garbage_above,
            "wrong_above_ideal": len(self.violations), "violations": [v.as_dict() for v in self.violations[:20]],
            "microseconds_per_completion": self.microseconds_per_completion, "note": self.note,
        }  # fmt: skip


def _call(reward: Any, completions: list[str], columns: dict[str, Any]) -> list[float | None]:
    result = reward(completions=completions, **columns)
    if inspect.isawaitable(result):  # an async reward, awaited as TRL would
        result = asyncio.run(_await(result))
    return list(result)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def check_reward(reward: Any, rows: Sequence[dict[str, Any]], columns: dict[str, list[Any]], name: str) -> RewardCheck:
    """Score every kind of reply on ``rows`` with ``reward`` (a guarded reward, or any reward callable) and
    compare each row's wrong replies with its ideal one. ``columns``: the rows' columns, one value per row."""
    check = RewardCheck(name)
    built = [replies(row) for row in rows]
    scores: dict[str, list[float | None]] = {}
    for kind in KINDS:
        batch = [reply[kind] for reply in built]
        # About four characters a token; a model's reply never exceeds its completion limit, nor does this.
        lengths = {length: [0] * length for length in {min(max(len(text) // 4, 1), MAX_IDS) for text in batch}}
        kind_columns = {**columns, "completion_ids": [lengths[min(max(len(text) // 4, 1), MAX_IDS)] for text in batch]}
        started = time.perf_counter()
        try:
            values = _call(reward, batch, kind_columns)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the reward's own failure: reported, the other kinds still checked
            check.errors[kind] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            continue
        finally:
            check.seconds += time.perf_counter() - started
            check.completions += len(batch)
        if len(values) != len(batch):
            check.errors[kind] = f"returned {len(values)} values for {len(batch)} replies"
            continue
        scores[kind] = values
        scored = [v for v in values if v is not None]
        check.means[kind] = sum(scored) / len(scored) if scored else None
        check.abstained[kind] = len(values) - len(scored)
    ideal = scores.get(IDEAL)
    if ideal is None:
        return check
    check.ideal_abstained = sum(v is None for v in ideal)
    check.ideal_rows = len(ideal)
    for kind in WRONG_KINDS:
        for i, (best, value) in enumerate(zip(ideal, scores.get(kind, []), strict=False)):
            if best is not None and value is not None and value > best + 1e-9:
                check.violations.append(Violation(name, i, kind, best, value, built[i][IDEAL], built[i][kind]))
    real = [kind for kind in KINDS if kind not in GARBAGE and kind in scores]
    for kind in GARBAGE:
        for i, value in enumerate(scores.get(kind, [])):
            floor = [scores[r][i] for r in real if scores[r][i] is not None]
            if value is not None and floor and value > min(floor) + 1e-9:
                check.garbage_above[kind] = check.garbage_above.get(kind, 0) + 1
    return check


def row_columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The columns TRL would pass for ``rows`` (prompts included), one value per row."""
    keys = dict.fromkeys(key for row in rows for key in row)
    columns = {("prompts" if key == "prompt" else key): [row.get(key) for row in rows] for key in keys}
    columns["trainer_state"] = None
    return columns
