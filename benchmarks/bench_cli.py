"""Benchmark: wall time of `grail-rl list-rewards` (and `validate`) as a ratio to a bare `python -c pass`.

Absolute times on shared machines vary a lot, so the commands are run interleaved, side by side, and
the ratio of medians is what to read. Run: ``python benchmarks/bench_cli.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = """\
model: {name_or_path: ./model}
data: {train: [{path: train.jsonl}]}
rewards: [{name: accuracy}, {name: format, weight: 0.2}]
trainer: {per_device_train_batch_size: 8, num_generations: 8, learning_rate: 1e-6}
output: {dir: out}
"""


def _time(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("grail-rl")
    grail = [str(script)] if script.exists() else [sys.executable, "-m", "grail_rl"]
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "train.jsonl").write_text("")
        (cwd / "recipe.yaml").write_text(RECIPE)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "grail-rl list-rewards": [*grail, "list-rewards"],
            "grail-rl list-rewards --json": [*grail, "list-rewards", "--json"],
            "grail-rl validate recipe.yaml": [*grail, "validate", "recipe.yaml"],
        }
        for cmd in commands.values():  # warm the file cache once
            _time(cmd, cwd)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():  # interleaved, so drift hits every command alike
                times[name].append(_time(cmd, cwd))
    base = statistics.median(times["python -c pass"])
    print(f"CLI startup, median of {args.runs} interleaved runs")
    print(f"{'command':34} {'median s':>9} {'ratio to python -c pass':>24}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:34} {median:9.3f} {median / base:24.1f}")


if __name__ == "__main__":
    main()
