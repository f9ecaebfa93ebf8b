"""The choice-logprob mode: each option's probability after a forced answer prefix, in one forward pass per
batch of rows when option numbers are single tokens, and the calibration metrics it makes possible."""

from __future__ import annotations

import math

import pytest

from grail_rl.evaluation.choice_logprob import (
    _continuation_logprob,
    _normalise,
    _render,
    calibration,
    option_probabilities,
)
from grail_rl.evaluation.metrics import Prediction
from grail_rl.evaluation.report import build_report, summary_lines
from tests.conftest_training import tiny_model, toy_rows  # noqa: F401  (fixture)


def pred(gold, probabilities):
    pick = 1 + max(range(len(probabilities)), key=probabilities.__getitem__)
    return Prediction(gold_index=gold, n_options=len(probabilities), parsed_index=pick, probabilities=probabilities)


def test_calibration_of_a_sure_and_right_model_and_of_a_uniform_one():
    sure = calibration([pred(1, [1.0, 0.0]), pred(2, [0.0, 1.0])])
    assert sure["log_likelihood"] == pytest.approx(0.0) and sure["brier"] == 0.0 and sure["ece"] == 0.0
    flat = calibration([pred(1, [0.25] * 4), pred(3, [0.25] * 4)])
    assert flat["log_likelihood"] == pytest.approx(math.log(0.25)) == pytest.approx(flat["uniform_log_likelihood"])
    assert flat["brier"] == pytest.approx(0.75)
    assert calibration([Prediction(gold_index=1, n_options=2, parsed_index=1)]) == {"n": 0}


def test_the_summary_shows_calibration_instead_of_the_forced_format():
    report = build_report("x", [pred(1, [0.7, 0.3])], expected_rows=1, meta={"decoding": "choice-logprob"})
    lines = summary_lines(report)
    assert any(line.strip().startswith("calibration            log-likelihood") for line in lines)
    assert not any("format rate" in line for line in lines)
    assert report.as_dict()["calibration"]["n"] == 1


@pytest.mark.slow
def test_one_forward_pass_per_batch_and_the_same_distribution_as_scoring_each_option(tiny_model):  # noqa: F811
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    rows = toy_rows(5, n_options=3)
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    try:
        distributions = option_probabilities(model, tokenizer, [r["prompt"] for r in rows], [3] * 5, batch_size=8)
    finally:
        handle.remove()
    assert len(calls) == 1  # five rows, one batch, one forward pass
    for row, probabilities in zip(rows, distributions, strict=True):
        assert len(probabilities) == 3 and sum(probabilities) == pytest.approx(1.0)
        text = _render(tokenizer, row["prompt"], None)
        one_by_one = _normalise([_continuation_logprob(model, tokenizer, text, tokenizer(str(k), add_special_tokens=False)["input_ids"])
                                 for k in (1, 2, 3)])  # fmt: skip
        assert probabilities == pytest.approx(one_by_one, abs=1e-5)  # left padding changes nothing
    assert not model.training


def test_mode_applies_to_a_model_not_to_stored_predictions(tmp_path):
    import subprocess
    import sys

    from tests.conftest_training import cli_env

    (tmp_path / "recipe.yaml").write_text("model: {name_or_path: m}\ndata: {synthetic: {n: 60, cache_dir: s}}\n"
                                          "rewards: [{name: accuracy}]\ntrainer: {per_device_train_batch_size: 8}\n"
                                          "output: {dir: out}\n")  # fmt: skip
    (tmp_path / "p.jsonl").write_text('{"prompt_hash": "ab", "output": "x"}\n')
    proc = subprocess.run([sys.executable, "-m", "grail_rl", "evaluate", "recipe.yaml", "--predictions", "p.jsonl",
                           "--mode", "choice-logprob"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "--mode applies to a model" in proc.stderr
