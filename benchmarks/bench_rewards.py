"""Benchmark: reward throughput on the real model outputs, in completions per second on one core.

Run it standalone::

    python benchmarks/bench_rewards.py            # print the table
    python benchmarks/bench_rewards.py --check    # also exit 1 when a target is missed

The 100,000 completions repeat the real ``gpt_output`` texts of ../shared/data/grail-validation (or
$GRAIL_RL_VALIDATION_DIR), with their ``gold_index``, ``n_options`` and ``issue`` columns, as TRL would
pass them. Each measurement is the best of several runs, all in this one process and pinned to one CPU
where the OS allows. No result is cached between calls: every completion is parsed each time.

Targets (issue 4): the accuracy reward alone >= 600,000 completions/s; accuracy + format >= 300,000.
The runtime wrapper with every diagnostic (signal statistics per prompt group included) against calling the
plugin directly: at most 1.10 (the reward-framework issue).
The reference line is a plain loop doing one regex search per completion (DOMAIN.md's answer pattern).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grail_rl.rewards.accuracy import AccuracyReward
from grail_rl.rewards.format import FormatReward
from grail_rl.rewards.runtime import build_reward_functions

TARGETS = {"accuracy": 600_000, "accuracy + format": 300_000}
FILES = ("gun_study1.jsonl", "wage_study2_study3.jsonl")
PLAIN_RE = re.compile(r"<answer>\s*(option\s*)?(\d+)\s*</answer>", re.IGNORECASE)


def data_dir() -> Path:
    env = os.environ.get("GRAIL_RL_VALIDATION_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data" / "grail-validation"


def load_batch(n: int) -> tuple[list[str], dict[str, list[Any]]]:
    rows = []
    for name in FILES:
        with (data_dir() / name).open(encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle)
    picked = [rows[i % len(rows)] for i in range(n)]
    columns = {key: [row[key] for row in picked] for key in ("gold_index", "n_options", "issue")}
    return [row["gpt_output"] for row in picked], columns


def plain_loop(completions: list[str], columns: dict[str, list[Any]]) -> list[Any]:
    search = PLAIN_RE.search
    return [search(text) for text in completions]


def best_rate(run: Callable[[], Any], n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def pin_to_one_cpu() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity on this OS)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="completions per batch (default 100,000)")
    parser.add_argument("--repeats", type=int, default=7, help="runs per measurement; the best counts")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    if not (data_dir() / FILES[0]).is_file():
        print(f"validation data not found in {data_dir()} (set GRAIL_RL_VALIDATION_DIR)", file=sys.stderr)
        return 2
    where = pin_to_one_cpu()
    completions, columns = load_batch(args.n)
    accuracy, fmt = AccuracyReward(), FormatReward()
    # Built as a run builds it, from the installed registry, with the shared diagnostics (signal statistics per
    # group of 8 generations). The same plugin registered by a third party is also given private copies of the
    # batch (a plugin that edits its arguments cannot change the next reward's): measured beside it.
    from dataclasses import replace

    from grail_rl.plugins.manager import load_plugins
    from grail_rl.plugins.registry import PluginSource

    spec = load_plugins(use_entry_points=False).registry("reward").get("accuracy")
    [guarded], _ = build_reward_functions([(spec, None, 1.0, "stop")], group_size=8)
    third_party = replace(spec, source=PluginSource(plugin="someone_elses"))
    [isolated], _ = build_reward_functions([(third_party, None, 1.0, "stop")], group_size=8)
    metrics: dict[str, float] = {}
    # Prompt groups of 8 completions, as TRL passes them: the signal diagnostics compute per group.
    prompts = [f"prompt {i // 8}" for i in range(args.n)]

    cases: dict[str, Callable[[], Any]] = {
        "plain one-regex loop": lambda: plain_loop(completions, columns),
        "accuracy": lambda: accuracy(completions, **columns),
        "accuracy + format": lambda: (accuracy(completions, **columns), fmt(completions, **columns)),
        "format": lambda: fmt(completions, **columns),
        # What the wrapper calls: the plugin with TRL's arguments (its own metrics logged too).
        "accuracy, direct, as TRL calls it": lambda: accuracy(
            completions=completions, log_metric=metrics.__setitem__, prompts=prompts, **columns
        ),
        "accuracy, wrapped, with diagnostics": lambda: guarded(
            completions=completions, log_metric=metrics.__setitem__, prompts=prompts, **columns
        ),
        "... as a third-party plugin (copies)": lambda: isolated(
            completions=completions, log_metric=metrics.__setitem__, prompts=prompts, **columns
        ),
    }
    rates = {name: best_rate(run, args.n, args.repeats) for name, run in cases.items()}

    plain = rates["plain one-regex loop"]
    distinct = len(set(completions))
    print(f"{args.n:,} completions ({distinct:,} distinct texts), best of {args.repeats}, {where}")
    print(f"{'case':<38} {'completions/s':>14} {'vs plain':>9} {'target':>10}")
    missed = []
    for name, rate in rates.items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"{target:>10,}" + (" ok" if rate >= target else " MISSED")
            if rate < target:
                missed.append(name)
        print(f"{name:<38} {rate:>14,.0f} {rate / plain:>8.2f}x {verdict}")
    direct = rates["accuracy, direct, as TRL calls it"]
    overhead = direct / rates["accuracy, wrapped, with diagnostics"]
    copied = direct / rates["... as a third-party plugin (copies)"]
    print(f"runtime wrapper + diagnostics overhead (wrapped time / direct time): {overhead:.2f} (goal <= 1.10); "
          f"with private copies for a third-party plugin: {copied:.2f}")
    if missed and args.check:
        print(f"missed targets: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
