"""The demo's format warm-up: it teaches the reply shape on TRAIN prompts with random (not gold) answers,
after it greedy replies to held-out prompts parse, and the run summary says the model was warmed."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from grail_rl.models.warmup import (
    WARMUP_MARKER,
    WarmupSpec,
    ensure_format_warmed,
    format_target,
    greedy_replies,
    is_warmed,
    read_warmup,
)
from grail_rl.rewards.format import VALID, structure
from grail_rl.rewards.parser import parse_answer
from tests.conftest_training import write_recipe


@pytest.fixture(scope="module")
def warmed(tmp_path_factory: pytest.TempPathFactory):
    """A format-warmed tiny model built exactly as ``grail-rl demo`` builds it, and its recipe."""
    from grail_rl.cli.demo_cmd import synthetic_train_rows
    from grail_rl.recipe.loader import load_recipe

    folder = tmp_path_factory.mktemp("warm")
    model_dir = folder / "tiny-llama"
    recipe = write_recipe(folder, model_dir, data={"synthetic": {"n": 300, "seed": 3, "cache_dir": str(folder / "s")},
                                                   "max_eval_samples": 12})  # fmt: skip
    loaded = load_recipe(recipe)
    calls = []

    def rows(tokenizer):
        calls.append(1)
        return synthetic_train_rows(loaded)(tokenizer)

    ensure_format_warmed(model_dir, rows)
    return model_dir, loaded, calls


def test_targets_have_the_rewarded_shape_and_ignore_the_gold():
    rng = random.Random(0)
    targets = [format_target(rng, 4) for _ in range(4000)]
    assert all(structure(t) == VALID for t in targets)  # the strict format reward accepts every target
    counts = Counter(parse_answer(t) for t in targets)
    assert set(counts) == {1, 2, 3, 4}
    assert all(900 < c < 1100 for c in counts.values()), counts  # uniform: no option is preferred


def test_greedy_replies_to_held_out_prompts_parse_after_the_warm_up(warmed):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grail_rl.data.dataset import build_split

    model_dir, loaded, _ = warmed
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    # The validation split: prompts the warm-up never saw.
    held_out, _ = build_split(loaded.recipe, loaded.plugins, "eval", tokenizer=tokenizer)
    replies = greedy_replies(model, tokenizer, held_out["prompt"][:12], WarmupSpec().max_new_tokens)
    answers = [parse_answer(r) for r in replies]
    good = sum(
        a is not None and 1 <= a <= n for a, n in zip(answers, held_out["n_options"][:12], strict=True)
    )
    assert good >= 9, replies


def test_the_marker_records_what_was_done_and_the_build_is_cached(warmed):
    model_dir, _, calls = warmed
    record = read_warmup(model_dir)
    assert record is not None and is_warmed(model_dir)
    assert record["spec"]["steps"] == WarmupSpec().steps and "not the gold" in record["what"]
    assert record["held_out_parsed_rate"] >= 0.75 and record["final_loss"] < record["first_loss"]
    assert ensure_format_warmed(model_dir, lambda tokenizer: pytest.fail("rebuilt")) == model_dir
    assert calls == [1]
    assert not is_warmed(model_dir, WarmupSpec(steps=1))  # a changed spec means a rebuild


def test_warm_up_rows_come_from_the_train_split_only(warmed):
    from grail_rl.cli.demo_cmd import synthetic_train_rows
    from grail_rl.data.synth import SUMMARY_FILE

    _, loaded, _ = warmed
    prompts, n_options = synthetic_train_rows(loaded)(None)
    summary = json.loads((loaded.recipe.data.synthetic.folder() / SUMMARY_FILE).read_text())
    assert len(prompts) == len(n_options) == summary["train_rows"]


def test_the_summary_says_the_model_was_format_warmed(warmed, tmp_path):
    from grail_rl.training.summary import model_lines

    model_dir, _, _ = warmed
    (tmp_path / "run.json").write_text(json.dumps({"recipe": {"model": {"name_or_path": str(model_dir)}}}))
    text = "\n".join(model_lines(tmp_path))
    assert "format-warmed before GRPO" in text and "never the gold" in text
    (model_dir.parent / "plain").mkdir()
    (tmp_path / "run.json").write_text(
        json.dumps({"recipe": {"model": {"name_or_path": str(model_dir.parent / "plain")}}})
    )
    assert "format-warmed" not in "\n".join(model_lines(tmp_path))
    assert WARMUP_MARKER == "grail_format_warmup.json"


def test_a_model_path_relative_to_the_recipe_is_found(warmed, tmp_path):
    from grail_rl.training.summary import model_lines

    model_dir, _, _ = warmed
    recipe_file = model_dir.parent / "recipes" / "recipe.yaml"
    recipe_file.parent.mkdir(exist_ok=True)
    run = {
        "recipe": {"model": {"name_or_path": "../tiny-llama"}},
        "sessions": [{"recipe_file": str(recipe_file)}],
    }
    (tmp_path / "run.json").write_text(json.dumps(run))
    lines = model_lines(tmp_path)
    assert lines[0] == f"starting model: {model_dir.resolve()}" and "format-warmed" in lines[1]
