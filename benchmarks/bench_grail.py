"""Benchmark: discriminator throughput, and the GRAIL step time against the GRPO step time.

1. Scoring and update throughput (pairs per second; a pair is one real and one fake text) of the ``ngram``
   and ``encoder`` (MiniLM) discriminators on texts of about 128 and 256 tokens, on the CPU.
2. The demo configuration (recipes/demo/recipe.yaml) trained for ``--steps`` steps with and without the
   GAIL reward and discriminator (recipes/demo/grail.yaml), each side in a fresh subprocess, alternating,
   ``--repeats`` times: the median step time of each side and their ratio.

    python benchmarks/bench_grail.py                 # both parts
    python benchmarks/bench_grail.py --part disc     # only the discriminators
    python benchmarks/bench_grail.py --part step --shape qwen2.5-1.5b --disc encoder   # on a GPU

Not a test: timings on shared machines are noisy; read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def texts(tokens: int, n: int, seed: int) -> list[str]:
    """Discriminator texts of about ``tokens`` MiniLM tokens (a choice line, then a viewer's context)."""
    import random

    from grail_rl.grail.texts import choice_text

    rng = random.Random(seed)
    words = "viewer watches videos about guns wages policy news channel debate reform rights safety jobs".split()
    out = []
    for i in range(n):
        context = " ".join(rng.choice(words) for _ in range(tokens - 12))
        out.append(choice_text(f"Video title number {i} about {rng.choice(words)}", "Some Channel", context, (1, 4)))
    return out


def throughput(name: str, tokens: int, pairs: int, rounds: int) -> dict[str, float]:
    from grail_rl.plugins.base import PluginContext
    from grail_rl.testing import isolated_plugins

    options = {"max_length": tokens + 8} if name == "encoder" else {}
    plugin = isolated_plugins().discriminators.get(name).build(options)
    plugin.setup(PluginContext(device="cpu"))
    real, fake = texts(tokens, pairs, 1), texts(tokens, pairs, 2)
    plugin.update(real, fake)  # warm-up
    start = time.perf_counter()
    for _ in range(rounds):
        plugin.score(real + fake)
    score = pairs * rounds / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(rounds):
        plugin.update(real, fake)
    update = pairs * rounds / (time.perf_counter() - start)
    return {"score_pairs_per_s": score, "update_pairs_per_s": update}


def discriminators(args: argparse.Namespace) -> None:
    print("discriminator throughput on the CPU (pairs per second; batch of", args.pairs, "pairs)")
    print(f"{'discriminator':<14} {'tokens':>6} {'score':>10} {'update':>10}")
    for name in ("ngram", "encoder"):
        for tokens in (128, 256):
            result = throughput(name, tokens, args.pairs, args.rounds if name == "encoder" else args.rounds * 20)
            print(f"{name:<14} {tokens:>6} {result['score_pairs_per_s']:>10.1f} {result['update_pairs_per_s']:>10.1f}")


RUN = """
import json, sys, time
sys.path.insert(0, {repo!r})
from transformers import TrainerCallback
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.run import run_training

times = []
class Clock(TrainerCallback):
    def on_step_begin(self, *a, **k):
        self.t = time.perf_counter()
    def on_step_end(self, *a, **k):
        times.append(time.perf_counter() - self.t)

sets = json.loads(sys.argv[2])
run_training(load_recipe(sys.argv[1], sets=sets), console=False, evaluate=False, callbacks=[Clock()])
print("TIMES", json.dumps(times))
"""


def step_times(recipe: Path, sets: list[str], work: Path) -> list[float]:
    script = work / "run.py"
    script.write_text(RUN.format(repo=str(REPO)))
    proc = subprocess.run([sys.executable, str(script), str(recipe), json.dumps(sets)], capture_output=True, text=True,
                          cwd=work)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    line = next(line for line in proc.stdout.splitlines() if line.startswith("TIMES "))
    return json.loads(line[len("TIMES ") :])


def warmed_model(work: Path) -> Path:
    """The demo's format-warmed tiny model (so that the policy gives valid answers the discriminator scores)."""
    from grail_rl.cli.demo_cmd import DEMO_RECIPE, synthetic_train_rows
    from grail_rl.models.warmup import ensure_format_warmed
    from grail_rl.recipe.loader import load_recipe

    model = work / "tiny-llama"
    loaded = load_recipe(DEMO_RECIPE, sets=[f"model.name_or_path={model}", f"data.synthetic.cache_dir={work / 'synth'}"])
    return Path(ensure_format_warmed(model, synthetic_train_rows(loaded)))


def grail_vs_grpo(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.shape == "tiny":
            model = warmed_model(work)
            device = []
        else:  # Qwen2.5-1.5B's shape with random weights (benchmarks/bench_train.py), on the GPU
            from bench_train import build_model

            model = build_model(args.shape, work)
            device = ["trainer.use_cpu=false", "trainer.bf16=true", "model.dtype=bfloat16"]
        # No checkpoint inside the timed steps (save_steps past the end), no sample files.
        common = [f"model.name_or_path={model}", f"data.synthetic.cache_dir={work / 'synth'}",
                  f"trainer.max_steps={args.steps}", "output.save_steps=100000", "output.save_total_limit=1",
                  "logging.save_completions=false", *device]  # fmt: skip
        grail_only = [] if args.disc == "ngram" else ["discriminator.name=encoder", "discriminator.max_length=256"]
        sides = {"grpo": REPO / "recipes" / "demo" / "recipe.yaml", "grail": REPO / "recipes" / "demo" / "grail.yaml"}
        medians: dict[str, list[float]] = {name: [] for name in sides}
        for repeat in range(args.repeats):
            for name, recipe in sides.items():
                extra = grail_only if name == "grail" else []
                times = step_times(recipe, [*common, *extra, f"output.dir={work / f'{name}-{repeat}'}"], work)
                medians[name].append(statistics.median(times[2:]))
        grpo, grail = statistics.median(medians["grpo"]), statistics.median(medians["grail"])
        print(f"\ndemo configuration, {args.steps} steps x {args.repeats} repeats (median of per-repeat medians):")
        print(f"  GRPO step  {grpo:.3f} s   GRAIL step  {grail:.3f} s   ratio GRAIL / GRPO  {grail / grpo:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "disc", "step"], default="all")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shape", choices=["tiny", "qwen2.5-1.5b"], default="tiny", help="The policy (step part).")
    parser.add_argument("--disc", choices=["ngram", "encoder"], default="ngram", help="The discriminator (step part).")
    args = parser.parse_args()
    if args.part in ("all", "disc"):
        discriminators(args)
    if args.part in ("all", "step"):
        grail_vs_grpo(args)


if __name__ == "__main__":
    main()
