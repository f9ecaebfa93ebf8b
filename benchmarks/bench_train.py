"""Benchmark: the same GRPO configuration through grail-rl and through a bare TRL script, side by side.

Each side runs in its own fresh subprocess (so peak memory is its own), alternating, ``--repeats`` times.
Reported: the median step time of each side and their ratio (goal: grail-rl / bare <= 1.05), the peak
RSS ratio, and tokens per second (prompt + completion tokens processed per second of step time).

    python benchmarks/bench_train.py                      # tiny model on the CPU (builds it offline)
    python benchmarks/bench_train.py --shape qwen2.5-1.5b # GPU: Qwen2.5-1.5B's shape, random weights, no hub

Not a test: timings on shared machines are noisy; read the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_model(shape: str, folder: Path) -> Path:
    if shape == "tiny":
        from grail_rl.models.tiny import ensure_tiny_model

        return ensure_tiny_model(folder / "tiny-llama")
    # Qwen2.5-1.5B's architecture with random weights, saved with the tiny tokenizer (vocab sized to it).
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from grail_rl.models.tiny import TinySpec, build_tokenizer, pin_tokenizer_class

    out = folder / "qwen2.5-1.5b-shape"
    if (out / "config.json").is_file():
        return out
    tokenizer = build_tokenizer(TinySpec())
    config = Qwen2Config(
        vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
        num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1e6, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, torch_dtype="bfloat16",
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    pin_tokenizer_class(out)
    return out


def settings(args: argparse.Namespace) -> dict:
    gpu = args.shape != "tiny"
    return {
        "max_steps": args.steps, "per_device_train_batch_size": args.batch, "num_generations": 4,
        "max_completion_length": args.completion, "learning_rate": 1e-5, "optim": "adamw_torch",
        "logging_steps": 1, "save_strategy": "no", "report_to": ["none"], "seed": 0, "use_cpu": not gpu,
        "bf16": gpu, "disable_tqdm": True,
    }  # fmt: skip


def rows(n: int) -> list[dict]:
    text = "VIEWER 32-year-old woman; watches YouTube weekly.\n\nOPTIONS\n" + "\n".join(
        f"{i}. A video about the minimum wage, part {i} (News channel, 300s long)" for i in range(1, 5)
    )
    return [{"prompt": [{"role": "user", "content": f"{text}\nviewer {i}"}], "gold_index": 1 + i % 4,
             "n_options": 4} for i in range(n)]  # fmt: skip


def reward(completions, **kwargs):
    return [float(len(str(c)) % 7) / 7 for c in completions]


def worker(args: argparse.Namespace) -> None:
    """One side of the comparison, in this process; prints one JSON line."""
    import datasets
    from transformers import TrainerCallback

    times: list[float] = []
    tokens: list[int] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            times.append(time.perf_counter() - self.t)

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs:
                tokens.append(int(logs["num_tokens"]))

    dataset = datasets.Dataset.from_list(rows(64))
    kwargs = settings(args)
    out = Path(args.workdir) / args.worker
    if args.worker == "bare":
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import GRPOConfig, GRPOTrainer

        tokenizer = AutoTokenizer.from_pretrained(args.model)
        tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype="auto")
        config = GRPOConfig(output_dir=str(out), **kwargs)
        trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[Timer()])  # fmt: skip
        trainer.train()
    else:
        import yaml

        from grail_rl.recipe.loader import load_recipe
        from grail_rl.training.run import run_training

        trainer_keys = {k: v for k, v in kwargs.items() if k not in ("logging_steps", "save_strategy", "report_to",
                                                                     "disable_tqdm")}  # fmt: skip
        recipe = {
            "model": {"name_or_path": args.model, "dtype": "auto"},
            "data": {"synthetic": {"n": 20, "cache_dir": str(Path(args.workdir) / "synth")}},
            "rewards": [{"name": "accuracy"}], "trainer": trainer_keys,
            "logging": {"logging_steps": 1}, "output": {"dir": str(out), "save_strategy": "no", "overwrite": True},
        }  # fmt: skip
        path = Path(args.workdir) / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        run_training(load_recipe(path), train_dataset=dataset, reward_funcs=[reward], reward_weights=[1.0],
                     evaluate=False, callbacks=[Timer()])  # fmt: skip
    steady = times[2:] or times  # the first steps pay for warm-up
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu_peak = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu_peak = torch.cuda.max_memory_allocated() / 2**20
    except ImportError:
        pass
    tok_s = (tokens[-1] - tokens[1]) / sum(times[2:]) if len(tokens) > 2 and sum(times[2:]) else None
    print(json.dumps({"median_step_s": statistics.median(steady), "peak_rss_mb": peak_kb / 1024,
                      "gpu_peak_mb": gpu_peak, "tokens_per_s": tok_s}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["tiny", "qwen2.5-1.5b"], default="tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--completion", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=["grail", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(args.shape, Path(tmp))
        results: dict[str, list[dict]] = {"grail": [], "bare": []}
        for _ in range(args.repeats):
            for side in ("bare", "grail"):
                cmd = [sys.executable, __file__, "--worker", side, "--model", str(model), "--workdir", tmp,
                       "--shape", args.shape, "--steps", str(args.steps), "--batch", str(args.batch),
                       "--completion", str(args.completion)]  # fmt: skip
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode:
                    sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
                results[side].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = {s: statistics.median(r["median_step_s"] for r in results[s]) for s in results}
    rss = {s: statistics.median(r["peak_rss_mb"] for r in results[s]) for s in results}
    summary = {
        "shape": args.shape, "steps": args.steps, "repeats": args.repeats,
        "median_step_s": med, "step_time_ratio_grail_over_bare": med["grail"] / med["bare"],
        "peak_rss_mb": rss, "peak_rss_ratio": rss["grail"] / rss["bare"], "runs": results,
    }  # fmt: skip
    tps = {s: [r["tokens_per_s"] for r in results[s] if r["tokens_per_s"]] for s in results}
    if all(tps.values()):
        summary["tokens_per_s_ratio_grail_over_bare"] = statistics.median(tps["grail"]) / statistics.median(tps["bare"])
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
