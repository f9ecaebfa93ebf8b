"""Benchmark: build prompts for synthetic rows; rows per second and peak memory at 10k and 100k rows.

Run: ``python benchmarks/bench_prompts.py [--sizes 10000 100000]`` (also part of ``nox -s bench``).
Goal: >= 20,000 rows/s for prompt building on one core; peak memory that does not grow with the rows.

For each size the synthetic rows (``train.jsonl`` + ``validation.jsonl`` of ``generate(n)``, about n
rows) are written first; then each measurement runs in its own fresh subprocess pinned to one CPU core,
so neither imports nor an earlier measurement leak into its peak RSS (``ru_maxrss`` of that child):

``builder``      ``PromptBuilder.messages`` on already-validated rows. Rows are validated a chunk at a time
                 outside the timed region, so the timing is the builder alone and memory stays flat.
``render``       the same plus building the Arrow record batches of every output column
                 (``render_batches``): prompt building as the trainer's dataset needs it.
``build_split``  everything: read the JSONL, validate, render, write the Arrow file the returned
                 ``datasets.Dataset`` memory-maps.
``mixture``      ``build_split`` with a mixture weight on the source, so every valid row is first held
                 (as JSON in a temporary Arrow file) and then read back by index: the slower path.

``peak_rss_mb`` is the child's peak; ``rss_growth_mb`` its growth over the baseline taken after imports and
a warm-up (what the work itself costs). ``output_mb`` is the size of the split's Arrow file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = ("builder", "render", "build_split", "mixture")
_CHUNK = 1000


def write_rows(n: int, work: Path) -> Path:
    """About ``n`` synthetic rows in one JSONL file (the generator splits them into train and validation)."""
    from grail_rl.data.synth import generate

    path = work / f"rows-{n}.jsonl"
    if not path.is_file():
        folder = work / f"synth-{n}"
        generate(n, 0, folder)
        with path.open("wb") as out:
            for name in ("train.jsonl", "validation.jsonl"):
                out.write((folder / name).read_bytes())
    return path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _chunks(path: Path, size: int):
    """Validated rows of ``path``, ``size`` at a time (validation is not part of the timed work)."""
    from grail_rl.data.dataset import iter_valid
    from grail_rl.data.drops import DropReport

    chunk = []
    for row in iter_valid(path, DropReport()):
        chunk.append(("rows", row))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def measure(kind: str, path: Path, cache: Path) -> dict:
    """One measurement in this (fresh) process."""
    from grail_rl.data.dataset import build_split, render_batches
    from grail_rl.data.drops import DropReport
    from grail_rl.plugins.manager import load_plugins
    from grail_rl.prompts.builder import PromptBuilder

    plugins = load_plugins()
    builder = PromptBuilder.default(plugins)
    for _, row in next(_chunks(path, 200)):  # warm-up: first-call costs (imports, caches) are not per-row
        builder.messages(row)
    list(render_batches(next(_chunks(path, 200)), builder, DropReport()))
    baseline = _rss_mb()
    rows, elapsed, output_mb = 0, 0.0, None
    if kind in {"build_split", "mixture"}:
        recipe = _Recipe(path, weight=1.0 if kind == "mixture" else None)
        start = time.perf_counter()
        dataset, _ = build_split(recipe, plugins, "train", builder=builder, cache_dir=cache)
        elapsed = time.perf_counter() - start
        rows = len(dataset)
        output_mb = round(sum(os.path.getsize(f["filename"]) for f in dataset.cache_files) / 2**20, 1)
    else:
        for chunk in _chunks(path, _CHUNK):
            start = time.perf_counter()
            if kind == "builder":
                for _, row in chunk:
                    builder.messages(row)
            else:
                for _ in render_batches(chunk, builder, DropReport()):
                    pass
            elapsed += time.perf_counter() - start
            rows += len(chunk)
    peak = _rss_mb()
    result = {"rows_per_s": round(rows / elapsed), "rows": rows, "peak_rss_mb": round(peak, 1)}
    result["rss_growth_mb"] = round(peak - baseline, 1)
    if output_mb is not None:
        result["output_mb"] = output_mb
    return result


class _Recipe:
    """The few recipe fields build_split reads, for one JSONL source without limits."""

    def __init__(self, path: Path, weight: float | None = None):
        source = type("Source", (), {"path": path, "hub": None, "format": "auto", "split": None, "weight": weight,
                                     "max_rows": None, "label": lambda self: path.name})()  # fmt: skip
        self.data = type("Data", (), {"train": [source], "eval": [], "synthetic": None, "seed": 0,
                                      "train_rows": None, "max_eval_samples": None})()  # fmt: skip
        self.prompt = type("Prompt", (), {"max_prompt_tokens": None, "long_prompts": "drop"})()
        self.trainer = type("Trainer", (), {"chat_template_kwargs": None})()


def _pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):  # Linux: the goal is per core, so measure on exactly one
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--work", type=Path, default=None, help="keep the generated rows here between runs")
    parser.add_argument("--json", action="store_true", help="print one JSON object per measurement")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "PATH", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _pin_to_one_core()
        print(json.dumps(measure(args.one[0], Path(args.one[1]), Path(args.one[2]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            path = write_rows(n, work)
            for kind in KINDS:
                with tempfile.TemporaryDirectory(dir=work) as cache:
                    out = subprocess.run(
                        [sys.executable, __file__, "--one", kind, str(path), cache],
                        capture_output=True, text=True, check=True,
                    ).stdout  # fmt: skip
                result = {"size": n, "kind": kind, **json.loads(out.strip().splitlines()[-1])}
                if args.json:
                    print(json.dumps(result), flush=True)
                else:
                    extra = ", ".join(f"{k} {v}" for k, v in result.items() if k not in {"size", "kind"})
                    print(f"{n:>7} rows  {kind:<11}  {extra}", flush=True)


if __name__ == "__main__":
    main()
