"""The end-of-run summary: the starting model, a reward curve per reward (from ``metrics.jsonl``) and accuracy
vs baselines.

When the starting model was format-warmed (the demo's tiny model, :mod:`grail_rl.models.warmup`), the summary
says so and how, because a reader must know that the format reward did not start from random weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from grail_rl.run_layout import METRICS_FILE

_BARS = "▁▂▃▄▅▆▇█"


# The discriminator's health curves (GRAIL runs), by metrics.jsonl key.
DISCRIMINATOR_CURVES = {
    "discriminator/auc": "held-out AUC",
    "discriminator/p_real_gold": "P(real) of gold",
    "discriminator/p_real_policy": "P(real) of policy",
    "discriminator/loss": "loss",
}


def reward_curves(output_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) per reward (``rewards/<name>/mean``) and for the weighted ``reward``, training only."""
    return _curves(output_dir, _reward_name)


def discriminator_curves(output_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of the discriminator's health metrics (empty for a run without a discriminator)."""
    return _curves(output_dir, DISCRIMINATOR_CURVES.get)


def _reward_name(key: str) -> str | None:
    if key == "reward":
        return "reward (weighted)"
    if key.startswith("rewards/") and key.endswith("/mean"):
        return key[len("rewards/") : -len("/mean")]
    return None


def _curves(output_dir: Path, name_of: Any) -> dict[str, list[tuple[int, float]]]:
    curves: dict[str, list[tuple[int, float]]] = {}
    path = output_dir / METRICS_FILE
    if not path.is_file():
        return curves
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # a line cut short (a full disk, a kill), or not ours: read the others
            continue
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            continue
        for key, value in record.items():
            if not isinstance(value, int | float):
                continue
            name = name_of(key)
            if name is not None:
                curves.setdefault(name, []).append((record["step"], float(value)))
    return curves


def sparkline(values: list[float], width: int = 40) -> str:
    if not values:
        return ""
    if len(values) > width:  # average into ``width`` buckets
        size = len(values) / width
        values = [
            sum(values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
            / len(values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
            for i in range(width)
        ]
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    return "".join(_BARS[min(int((v - lo) / span * (len(_BARS) - 1)), len(_BARS) - 1)] for v in values)


def model_lines(output_dir: Path) -> list[str]:
    """The starting model (from ``run.json``) and, when it was format-warmed, what the warm-up did."""
    from grail_rl.models.warmup import read_warmup
    from grail_rl.run_layout import RUN_FILE

    try:
        run = json.loads((output_dir / RUN_FILE).read_text(encoding="utf-8"))
        location = run["recipe"]["model"]["name_or_path"]
        recipe_file = (run.get("sessions") or [{}])[-1].get("recipe_file")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    # A relative model path is relative to the recipe file, as when the model was loaded.
    if recipe_file and not Path(location).is_absolute() and (Path(recipe_file).parent / location).is_dir():
        location = str((Path(recipe_file).parent / location).resolve())
    warm = read_warmup(location) if Path(location).is_dir() else None
    if warm is None:
        return [f"starting model: {location}"]
    spec = warm.get("spec", {})
    return [
        f"starting model: {location}",
        f"  format-warmed before GRPO: {spec.get('steps')} supervised steps on "
        f"{warm.get('train_prompts_used')} synthetic TRAIN prompts, target <think>…</think><answer>k</answer> "
        "with k uniform in 1..n_options (never the gold)",
        f"  after the warm-up, greedy replies to {warm.get('held_out_prompts')} held-out train prompts: "
        f"{_share(warm.get('held_out_parsed_rate'))} parseable, {_share(warm.get('held_out_in_range_rate'))} "
        "in range (the warm-up's answer numbers carry no information about the gold)",
    ]


def _share(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "?"


def starting_model_lines(report: Any) -> list[str]:
    """One line: the starting model on the same split with the same greedy decoding, before any GRPO step."""
    data = report.as_dict()
    overall = data["overall"]
    acc, fmt = overall["accuracy"], overall["format_rate"]
    line = (
        f"before GRPO, the starting model on '{report.name}' ({overall['n']} rows): accuracy {acc['value']:.3f} "
        f"[{acc['ci95'][0]:.3f}, {acc['ci95'][1]:.3f}], format rate {fmt['value']:.3f} (same greedy decoding)"
    )
    degenerate = data["degenerate"]
    if degenerate:
        answer = "no parseable answer" if degenerate["answer"] is None else f"option {degenerate['answer']}"
        line += f"; it too gave {answer} on {degenerate['share']:.0%} of the rows"
    return [line]


def _top_answers(answers: dict[str, int]) -> str:
    total = sum(answers.values()) or 1
    ranked = sorted(answers.items(), key=lambda item: -item[1])[:3]
    return ", ".join(f"{'unparsed' if k == 'unparsed' else 'option ' + k} {v / total:.0%}" for k, v in ranked)


def learning_lines(final: Any, starting: Any) -> list[str]:
    """What GRPO itself changed on one split: the accuracy before and after with their intervals, whether the
    change lies beyond the starting model's interval, how the answers moved against the viewers' clicks, and
    where that leaves the model between the most-frequent-position baseline and the synthetic ceiling."""
    after, before = final.as_dict(), starting.as_dict()
    if not final.complete or not starting.complete:
        return [f"what GRPO changed on '{final.name}': not measured (an evaluation is PARTIAL)"]
    acc, base = after["overall"]["accuracy"], before["overall"]["accuracy"]
    if acc["ci95"][0] > base["ci95"][1]:
        verdict = "up, beyond both intervals"
    elif acc["value"] > base["ci95"][1]:
        verdict = "up, beyond the starting model's interval (the intervals overlap)"
    elif acc["ci95"][1] < base["ci95"][0]:
        verdict = "DOWN, beyond both intervals"
    else:
        verdict = "no change beyond the intervals: GRPO did not measurably change the accuracy"
    lines = [
        f"what GRPO changed on '{final.name}': accuracy {base['value']:.3f} [{base['ci95'][0]:.3f}, {base['ci95'][1]:.3f}] "
        f"-> {acc['value']:.3f} [{acc['ci95'][0]:.3f}, {acc['ci95'][1]:.3f}]: {verdict}",
        f"  answers before: {_top_answers(before['answers'])}; after: {_top_answers(after['answers'])}; the viewers "
        f"clicked: {_top_answers(after['gold_positions'])}",
    ]
    frequent = after["baselines"].get("most_frequent_position")
    ceiling = after["baselines"].get("synthetic_ceiling")
    constant = after["degenerate"]
    if frequent is not None and constant and constant["answer"] is not None and f"always option {constant['answer']};" in frequent["note"]:
        lines.append(
            f"  what was learned: the viewers' position prior. The model now answers option {constant['answer']}, the "
            f"most frequent click, on {constant['share']:.0%} of the rows: exactly the most-frequent-position "
            "baseline's rule, not a reading of who the viewer is or what the videos are"
        )
    if frequent is not None:
        where = (
            f"  against the position prior: always answering the most frequent position scores {frequent['value']:.3f}"
        )
        if ceiling is not None:
            where += (f"; the synthetic viewers' own choice model (stance, slant, position, popularity) reaches "
                      f"{ceiling['value']:.3f}, which reading the viewer and the videos would add")  # fmt: skip
        lines.append(where)
    return lines


def curve_lines(curves: dict[str, list[tuple[int, float]]]) -> list[str]:
    lines = []
    for name, points in curves.items():
        values = [v for _, v in points]
        head = sum(values[: max(len(values) // 4, 1)]) / max(len(values) // 4, 1)
        tail = sum(values[-max(len(values) // 4, 1) :]) / max(len(values) // 4, 1)
        lines.append(f"  {name:<22} {sparkline(values)}  first quarter {head:.3f} -> last quarter {tail:.3f}")
    return lines


def summary_lines(result: Any) -> list[str]:
    from grail_rl.evaluation.report import summary_lines as eval_lines

    lines = [f"run: {result.output_dir.resolve()} (step {result.global_step})"]
    lines += model_lines(result.output_dir)
    curves = reward_curves(result.output_dir)
    if curves:
        lines.append("reward curves (mean per logged step):")
    lines += curve_lines(curves)
    mixing = _curves(result.output_dir, lambda key: key[len("reward_mixer/"):] if key.startswith("reward_mixer/") else None)
    if mixing:
        lines.append("learned reward weights (reward_mixer.learnable):")
        lines += curve_lines(mixing)
    health = discriminator_curves(result.output_dir)
    if health:
        lines.append("discriminator (mean per logged step; see docs/grail.md):")
        lines += curve_lines(health)
    starting = {report.name: report for report in result.starting_reports}
    for report in result.eval_reports:
        lines += eval_lines(report)
        if report.name in starting:
            lines += starting_model_lines(starting[report.name])
            lines += learning_lines(report, starting[report.name])
    if not result.eval_reports and result.no_eval_reason:
        lines.append(f"no evaluation: {result.no_eval_reason}")
    if result.final_dir is not None:
        lines.append(f"final model: {result.final_dir.resolve()}")
    return lines


def print_summary(result: Any) -> None:
    if int(os.environ.get("RANK", "0")) != 0:
        return
    from rich.console import Console

    console = Console()
    console.rule("summary")
    for line in summary_lines(result):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
