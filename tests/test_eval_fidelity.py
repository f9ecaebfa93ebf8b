"""Position fidelity: the Jensen-Shannon divergence of the model's picks from the viewers' clicks."""

from __future__ import annotations

import math

import pytest

from grail_rl.evaluation.fidelity import js_divergence, position_fidelity
from grail_rl.evaluation.metrics import Prediction
from grail_rl.evaluation.report import build_report, summary_lines


def preds(pairs, size=4):
    return [Prediction(gold_index=g, n_options=size, parsed_index=p) for g, p in pairs]


def test_jsd_is_zero_for_the_same_distribution_one_for_disjoint_and_symmetric():
    assert js_divergence([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_divergence([0.7, 0.3], [0.2, 0.8]) == pytest.approx(js_divergence([0.2, 0.8], [0.7, 0.3]))
    p, q = [0.5, 0.5], [0.9, 0.1]
    m = [0.7, 0.3]
    expected = 0.5 * sum(a * math.log2(a / b) for a, b in zip(p, m, strict=True)) + 0.5 * sum(a * math.log2(a / b) for a, b in zip(q, m, strict=True))
    assert js_divergence(p, q) == pytest.approx(expected)
    with pytest.raises(ValueError):
        js_divergence([0, 0], [1, 1])


def test_a_model_that_picks_like_the_viewers_is_near_zero_and_a_constant_one_is_not():
    human = [1] * 40 + [2] * 30 + [3] * 20 + [4] * 10
    alike = position_fidelity(preds([(g, p) for g, p in zip(human, [2] * 30 + [1] * 40 + [4] * 10 + [3] * 20, strict=True)]))
    constant = position_fidelity(preds([(g, 1) for g in human]))
    assert alike["overall"]["jsd"] == pytest.approx(0.0)
    assert constant["overall"]["jsd"] > constant["overall"]["uniform_pick_jsd"] > 0
    lo, hi = constant["by_slate_size"]["4"]["ci95"]
    assert lo <= constant["overall"]["jsd"] <= hi


def test_slate_sizes_are_compared_apart_and_unparsed_answers_left_out():
    rows = preds([(1, 1), (2, 2)], size=2) + preds([(3, None), (3, 3), (1, 7)], size=3)
    fidelity = position_fidelity(rows)
    three = fidelity["by_slate_size"]["3"]
    assert (three["rows"], three["parsed"]) == (3, 1)  # None and an off-slate 7 are not picks
    assert three["human"] == pytest.approx([1 / 3, 0, 2 / 3]) and three["model"] == [0, 0, 1]
    assert fidelity["overall"]["rows"] == 5


def test_no_parsed_answer_is_said_not_divided_by_zero():
    report = build_report("x", preds([(1, None), (2, None)]), expected_rows=2)
    assert "jsd" not in report.as_dict()["fidelity"]["positions"]["overall"]
    assert any("no parsed answers to compare" in line for line in summary_lines(report))


def test_the_report_and_its_summary_carry_the_fidelity():
    report = build_report("x", preds([(1, 1), (2, 1), (3, 1), (1, 1)]), expected_rows=4)
    lines = summary_lines(report)
    assert any(line.strip().startswith("position fidelity      JSD") for line in lines)
    assert any("4 options" in line for line in lines)
