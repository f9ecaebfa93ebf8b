"""The Turing AUC: the trained discriminator's AUC of the viewers' choices against the model's."""

from __future__ import annotations

import json

import pytest

from grail_rl.evaluation.metrics import Prediction
from grail_rl.evaluation.report import build_report, summary_lines
from grail_rl.evaluation.turing import turing_auc
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.run import run_training
from tests.conftest_training import tiny_model, write_recipe  # noqa: F401  (fixture)


class ByChoice:
    """Scores a text by the option it names: option 1 looks real, every other option fake."""

    def score(self, texts):
        return [0.9 if text.startswith("CHOSEN: option 1 ") else 0.1 for text in texts]


def rows(n):
    return [{"prompt": [{"role": "user", "content": f"viewer {i}"}], "gold_index": 1, "n_options": 3,
             "slate_titles": ["a", "b", "c"], "slate_channels": [None, None, None]} for i in range(n)]  # fmt: skip


def test_a_discriminator_that_tells_them_apart_scores_one_and_identical_choices_half():
    data = rows(10)
    wrong = [Prediction(gold_index=1, n_options=3, parsed_index=2) for _ in data]
    right = [Prediction(gold_index=1, n_options=3, parsed_index=1) for _ in data]
    assert turing_auc(data, wrong, ByChoice(), source="x")["value"] == 1.0
    same = turing_auc(data, right, ByChoice(), source="x")
    assert same["value"] == 0.5 and same["n"] == 10 and same["ci95"] == [0.5, 0.5]


def test_rows_without_a_valid_answer_are_left_out_and_none_at_all_is_said():
    data = rows(3)
    preds = [Prediction(gold_index=1, n_options=3, parsed_index=p) for p in (None, 9, 2)]
    assert turing_auc(data, preds, ByChoice(), source="x")["n"] == 1
    nothing = turing_auc(data, preds[:2], ByChoice(), source="x")
    assert nothing["n"] == 0 and "value" not in nothing and nothing["note"] == "no valid answers to compare"


def test_the_summary_shows_the_turing_auc_when_there_is_one():
    report = build_report("x", [Prediction(gold_index=1, n_options=3, parsed_index=2)], expected_rows=1)
    assert not any("Turing AUC" in line for line in summary_lines(report))
    report.turing = {"n": 1, "value": 0.75, "ci95": [0.5, 1.0], "discriminator": "d"}
    assert any(line.strip().startswith("Turing AUC             0.750 [0.500, 1.000] (n=1)") for line in summary_lines(report))
    assert report.as_dict()["fidelity"]["turing_auc"]["value"] == 0.75


@pytest.mark.slow
def test_a_grail_runs_evaluation_reports_the_turing_auc_of_its_discriminator(tmp_path, tiny_model):  # noqa: F811
    disc = {"name": "ngram", "warmup_steps": 5, "minibatch_size": 8, "extra_negatives": 1}
    path = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 2}, discriminator=disc,
                        rewards=[{"name": "accuracy"}, {"name": "gail", "weight": 0.5}])  # fmt: skip
    run_training(load_recipe(path), console=False, evaluate=True)
    report = json.loads((tmp_path / "out" / "eval" / "eval-eval.json").read_text())
    turing = report["fidelity"]["turing_auc"]
    assert turing["discriminator"] == "the run's discriminator at the end of training"
    stored = [json.loads(line) for line in (tmp_path / "out" / "eval" / "eval-eval.predictions.jsonl").open()]
    valid = [p for p in stored if p["parsed_index"] is not None and 1 <= p["parsed_index"] <= p["n_options"]]
    assert turing["n"] == len(valid) and report["evaluated_rows"] == len(stored)
