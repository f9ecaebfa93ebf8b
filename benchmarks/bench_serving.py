"""Benchmark: the serving client's throughput, measured side by side in one run.

Run it standalone::

    python benchmarks/bench_serving.py            # print the table
    python benchmarks/bench_serving.py --check    # also exit 1 when a target is missed

1. ``generate`` rows per second at concurrency 1 against 16 (goal: at least 6x), through the same code as
   ``grail-rl generate`` (``generate_rows``: the worker pool, the client, an fsynced line per row), against
   (a) tests/openai_double.py with a fixed 0.2 s per answer, standing in for a hosted model's round trip, and
   (b) ``transformers serve`` on the tiny model, a local server that computes every answer on this machine's
   CPU (its throughput is bounded by the CPU, not by waiting: concurrency cannot multiply it here).
2. The ``llm_judge`` reward's throughput with the cache cold (every completion asked) and warm (every
   completion cached), on the real ``gpt_output`` texts of ../shared/data/grail-validation (or
   $GRAIL_RL_VALIDATION_DIR; synthetic texts without it), against the double with 0.05 s per answer.

The prompts are the real validation prompts when the data is there. Absolute times vary with the machine; the
ratios, measured in the same run, are the part to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/openai_double.py is started as a module of the repository

from grail_rl.rewards.llm_judge import LlmJudgeConfig, LlmJudgeReward  # noqa: E402
from grail_rl.serving.client import Endpoint, ServedModel  # noqa: E402
from grail_rl.serving.generate import GenerationSettings, generate_rows  # noqa: E402
from tests.openai_double import free_port  # noqa: E402

CONCURRENCY_GOAL = 6.0
FILES = ("gun_study1.jsonl", "wage_study2_study3.jsonl")


def data_dir() -> Path:
    env = os.environ.get("GRAIL_RL_VALIDATION_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "data" / "grail-validation"


def real_rows(n: int) -> tuple[list[Any], list[str]]:
    """(prompts as chat messages, the original model's outputs) of n real rows, or synthetic stand-ins."""
    rows: list[dict[str, Any]] = []
    for name in FILES:
        path = data_dir() / name
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                rows.extend(json.loads(line) for line in fh)
    if not rows:
        return ([[{"role": "user", "content": f"Viewer {i}: which of 1..4 next?"}] for i in range(n)],
                [f"<think>viewer {i}</think><answer>{1 + i % 4}</answer>" for i in range(n)])  # fmt: skip
    picked = [rows[i % len(rows)] for i in range(n)]
    return [r["messages"] for r in picked], [f"{r['gpt_output']} [{i}]" for i, r in enumerate(picked)]


def start(command: list[str], port: int, timeout: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {' '.join(command)}") from None
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start within {timeout:.0f} s: {' '.join(command)}")


def rows_per_second(url: str, model: str, prompts: list[Any], concurrency: int, max_tokens: int) -> float:
    served = ServedModel(Endpoint(url, model, timeout=300, concurrency=concurrency))
    settings = GenerationSettings(model=model, n=1, temperature=0.0, max_tokens=max_tokens)
    hashes = [str(i) for i in range(len(prompts))]
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "out.jsonl", "ab", buffering=0) as out:
        started = time.perf_counter()
        tally = asyncio.run(generate_rows(served, prompts, hashes, range(len(prompts)), out, settings))
        seconds = time.perf_counter() - started
    assert tally.written == len(prompts) and not tally.failed, tally
    return len(prompts) / seconds


def concurrency_rows(label: str, url: str, model: str, prompts: list[Any], max_tokens: int) -> tuple[str, float, float]:
    rows_per_second(url, model, prompts[:4], 4, max_tokens)  # warm the server and the connections
    one = rows_per_second(url, model, prompts, 1, max_tokens)
    sixteen = rows_per_second(url, model, prompts, 16, max_tokens)
    return label, one, sixteen


def judge_rows(url: str, completions: list[str]) -> tuple[float, float]:
    reward = LlmJudgeReward(LlmJudgeConfig(endpoint=url, model="double", concurrency=16))
    prompts = ["p"] * len(completions)
    started = time.perf_counter()
    cold = asyncio.run(reward(completions, prompts=prompts))
    cold_rate = len(completions) / (time.perf_counter() - started)
    started = time.perf_counter()
    warm = asyncio.run(reward(completions, prompts=prompts))
    warm_rate = len(completions) / (time.perf_counter() - started)
    assert cold == warm and reward.totals["requests"] == len(set(completions)), reward.totals
    return cold_rate, warm_rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the concurrency goal is missed")
    parser.add_argument("--rows", type=int, default=64, help="rows per measurement against the double")
    parser.add_argument("--no-transformers", action="store_true", help="skip the transformers serve measurement")
    args = parser.parse_args()
    prompts, outputs = real_rows(max(args.rows, 256))
    results = []

    port = free_port()
    double = start([sys.executable, "-m", "tests.openai_double", "--port", str(port), "--latency", "0.2"], port, 30)
    try:
        results.append(concurrency_rows("double, 0.2 s per answer", f"http://127.0.0.1:{port}/v1", "double",
                                        prompts[: args.rows], 16))  # fmt: skip
    finally:
        double.kill()

    if not args.no_transformers:
        from grail_rl.models.tiny import ensure_tiny_model

        with tempfile.TemporaryDirectory() as tmp:
            model = ensure_tiny_model(Path(tmp) / "tiny-llama")
            port = free_port()
            binary = Path(sys.executable).parent / "transformers"
            env_note = "transformers serve, tiny model, CPU"
            for flag, label in (([], env_note), (["--continuous-batching"], env_note + ", continuous batching")):
                server = start([str(binary), "serve", str(model), "--host", "127.0.0.1", "--port", str(port), *flag],
                               port, 180)  # fmt: skip
                try:
                    results.append(concurrency_rows(label, f"http://127.0.0.1:{port}/v1", str(model), prompts[:32], 16))
                except Exception as exc:  # a server mode this machine cannot run is reported, not fatal
                    print(f"{label}: not measured ({type(exc).__name__}: {exc})", file=sys.stderr)
                finally:
                    server.kill()
                    server.wait()

    port = free_port()
    double = start([sys.executable, "-m", "tests.openai_double", "--port", str(port), "--latency", "0.05"], port, 30)
    try:
        cold, warm = judge_rows(f"http://127.0.0.1:{port}/v1", outputs[:256])
    finally:
        double.kill()

    print(f"{'server':<58} {'rows/s at 1':>12} {'rows/s at 16':>13} {'ratio':>7}")
    for label, one, sixteen in results:
        print(f"{label:<58} {one:>12.1f} {sixteen:>13.1f} {sixteen / one:>6.1f}x")
    print(f"goal: at least {CONCURRENCY_GOAL:.0f}x against a server that waits (the double); a CPU-bound local "
          "server is bounded by its CPU")  # fmt: skip
    print(f"\nllm_judge, 256 real outputs, double at 0.05 s per answer, concurrency 16: cold cache {cold:,.0f} "
          f"completions/s, warm cache {warm:,.0f} completions/s ({warm / cold:,.0f}x)")
    ratio = results[0][2] / results[0][1]
    if args.check and ratio < CONCURRENCY_GOAL:
        print(f"MISSED: {ratio:.1f}x < {CONCURRENCY_GOAL:.0f}x", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
