"""The end-of-run summary says what GRPO itself changed: before and after with intervals, never more."""

from __future__ import annotations

from grail_rl.evaluation.baselines import FitRows
from grail_rl.evaluation.metrics import Prediction
from grail_rl.evaluation.report import build_report
from grail_rl.training.summary import learning_lines

GOLDS = [1] * 40 + [2] * 30 + [3] * 30  # the viewers click option 1 most often
FIT = FitRows([(1, 3)] * 5 + [(2, 3)], "6 rows of the recipe's train split")


def report(answer_of, n=100, expected=None):
    preds = [Prediction(g, 3, answer_of(i, g), formatted=True) for i, g in enumerate(GOLDS[:n])]
    return build_report("eval", preds, expected_rows=expected or n, train_rows=FIT, synthetic_ceiling=0.6)


def test_learning_the_position_prior_is_reported_as_a_change_beyond_the_interval():
    lines = learning_lines(report(lambda i, g: 1), report(lambda i, g: 2))
    assert "accuracy 0.300" in lines[0] and "-> 0.400" in lines[0] and "beyond the starting model's interval" in lines[0]
    assert "answers before: option 2 100%; after: option 1 100%" in lines[1]
    assert "what was learned: the viewers' position prior. The model now answers option 1" in lines[2]
    assert "most frequent position scores 0.400" in lines[3] and "0.600" in lines[3]


def test_no_change_is_said_plainly():
    lines = learning_lines(report(lambda i, g: 2), report(lambda i, g: 2))
    assert "no change beyond the intervals" in lines[0]


def test_a_partial_evaluation_gives_no_comparison():
    lines = learning_lines(report(lambda i, g: 1, n=50, expected=100), report(lambda i, g: 2))
    assert lines == ["what GRPO changed on 'eval': not measured (an evaluation is PARTIAL)"]
