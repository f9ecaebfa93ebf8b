"""Benchmark: build prompts for synthetic rows; rows per second and peak memory at 10k and 100k rows.

Run: ``python benchmarks/bench_prompts.py [--sizes 10000 100000]`` (also part of ``nox -s bench``).
Each size runs in its own subprocess so peak RSS is not shared. Two timings per size: rendering the
prompts of already-validated rows (the prompt builder alone), and the whole ``build_split`` (read JSONL,
validate, render, Arrow table). Goal: >= 20,000 rows/s for the builder on one core; peak memory that
grows only by the output table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(n: int, work: Path) -> dict:
    from grail_rl.data.dataset import PathSource, build_split, read_source, render_rows
    from grail_rl.data.drops import DropReport
    from grail_rl.data.synth import generate
    from grail_rl.plugins.manager import load_plugins
    from grail_rl.prompts.builder import PromptBuilder

    folder = work / f"synth-{n}"
    if not (folder / "train.jsonl").is_file():
        generate(n, 0, folder)
    plugins = load_plugins()
    builder = PromptBuilder.default(plugins)
    rows = read_source(PathSource(folder / "train.jsonl"), "train", 0, DropReport())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    count = 0
    for row in rows.take(range(len(rows))):
        builder.messages(row)
        count += 1
    render_s = time.perf_counter() - start

    recipe = _Recipe(folder / "train.jsonl")
    start = time.perf_counter()
    table = render_rows(((("x", r) for r in rows.take(range(len(rows))))), builder, DropReport())
    table_s = time.perf_counter() - start
    start = time.perf_counter()
    dataset, _ = build_split(recipe, plugins, "train", builder=builder)
    split_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": count,
        "builder_rows_per_s": round(count / render_s),
        "render_to_arrow_rows_per_s": round(count / table_s),
        "build_split_rows_per_s": round(len(dataset) / split_s),
        "output_table_mb": round(table.nbytes / 2**20, 1),
        "peak_rss_mb": round(peak / 1024, 1),
        "rss_growth_during_build_mb": round((peak - rss_before) / 1024, 1),
    }


class _Recipe:
    """The few recipe fields build_split reads, for one JSONL source without limits."""

    def __init__(self, path: Path):
        source = type("Source", (), {"path": path, "hub": None, "format": "auto", "split": None, "weight": None,
                                     "max_rows": None, "label": lambda self: path.name})()  # fmt: skip
        self.data = type("Data", (), {"train": [source], "eval": [], "synthetic": None, "seed": 0,
                                      "train_rows": None, "max_eval_samples": None})()  # fmt: skip
        self.prompt = type("Prompt", (), {"max_prompt_tokens": None, "long_prompts": "drop"})()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.work)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for n in args.sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(n), "--work", str(work)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            result = json.loads(out.strip().splitlines()[-1])
            print(f"{n:>7} rows: " + ", ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
