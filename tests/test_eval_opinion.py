"""Opinion-direction accuracy beside the always-no_change and majority baselines, each with N and interval."""

from __future__ import annotations

import pytest

from grail_rl.evaluation.baselines import FitRows
from grail_rl.evaluation.metrics import Prediction
from grail_rl.evaluation.opinion import opinion_accuracy
from grail_rl.evaluation.report import build_report, summary_lines
from grail_rl.evaluation.rows import prediction_for


def pred(gold, pick):
    return Prediction(gold_index=1, n_options=2, parsed_index=1, opinion_gold=gold, opinion_pick=pick)


def test_accuracy_and_baselines_on_the_labelled_rows_only():
    preds = [pred("increase", "increase"), pred("increase", "decrease"), pred("no_change", None),
             pred(None, "increase")]  # fmt: skip
    result = opinion_accuracy(preds)
    assert result["n"] == 3
    assert result["accuracy"]["k"] == 1 and result["accuracy"]["value"] == pytest.approx(1 / 3)
    assert result["answered_rate"]["k"] == 2
    assert result["baselines"]["always_no_change"]["k"] == 1
    majority = result["baselines"]["majority"]
    assert majority["label"] == "increase" and majority["k"] == 2 and "in-sample" in majority["fitted_on"]
    lo, hi = result["accuracy"]["ci95"]
    assert 0 <= lo < 1 / 3 < hi <= 1


def test_the_majority_is_fitted_on_the_training_labels_when_given():
    preds = [pred("increase", "increase"), pred("decrease", "decrease")]
    result = opinion_accuracy(preds, ["decrease", "decrease", None, "increase"], "3 rows of the train split")
    majority = result["baselines"]["majority"]
    assert (majority["label"], majority["k"], majority["fitted_on"]) == ("decrease", 1, "3 rows of the train split")


def test_no_labelled_row_is_said_not_scored():
    assert opinion_accuracy([pred(None, "increase")]) == {
        "n": 0, "note": "no evaluated row has a known opinion direction",
    }
    report = build_report("x", [pred(None, None)], expected_rows=1)
    assert not any("opinion direction" in line for line in summary_lines(report))


def test_the_model_output_and_the_row_give_the_opinion_fields_and_the_summary_shows_them():
    row = {"prompt": "p", "gold_index": 2, "n_options": 3, "opinion_direction": "Increase"}
    made = prediction_for(row, "<answer>2</answer><opinion>higher</opinion>", False)
    assert (made.opinion_gold, made.opinion_pick) == ("increase", "increase")
    fit = FitRows([(1, 2)], "1 row of the train split", ["no_change"])
    report = build_report("x", [made], expected_rows=1, train_rows=fit)
    line = next(line for line in summary_lines(report) if "opinion direction" in line)
    assert "1.000" in line and "always no_change 0.000" in line and "fitted on 1 row of the train split" in line
