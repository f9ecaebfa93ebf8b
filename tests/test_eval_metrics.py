"""Accuracy with Wilson intervals, breakdowns, baselines, and the refusal to report a partial run."""

from __future__ import annotations

import json

import pytest

from grail_rl.evaluation.baselines import FitRows, baselines
from grail_rl.evaluation.metrics import Prediction, breakdowns, summarise, wilson_interval
from grail_rl.evaluation.report import IncompleteEvaluationError, build_report, summary_lines


def test_wilson_interval_matches_known_values():
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert wilson_interval(0, 0) == (0.0, 1.0)  # no rows: nothing known
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.16 < hi < 0.17


def test_accuracy_counts_unparsed_and_out_of_range_answers_as_wrong():
    preds = [
        Prediction(2, 4, 2, True, "gun_control", "study1"),
        Prediction(3, 4, None, False, "gun_control", "study1"),
        Prediction(5, 4, 5, True, "minimum_wage", "study2"),  # outside the slate: never correct
        Prediction(1, 3, 1, False, "minimum_wage", "study3"),
    ]
    overall = summarise(preds)
    assert overall["accuracy"]["k"] == 2 and overall["parsed_rate"]["k"] == 3 and overall["format_rate"]["k"] == 2
    parts = breakdowns(preds)
    assert parts["issue"]["gun_control"]["accuracy"]["value"] == 0.5
    assert set(parts["study"]) == {"study1", "study2", "study3"}
    assert set(parts["n_options"]) == {"3", "4"}


def test_baselines_random_position_rules_and_ceiling():
    rows = [(4, 4), (4, 4), (1, 4), (2, 2)]
    base = baselines(rows, train_rows=FitRows([(1, 4)] * 3 + [(4, 4)], "4 rows of the train split"), synthetic_ceiling=0.61)
    assert base["random"]["value"] == pytest.approx((0.25 * 3 + 0.5) / 4)
    assert base["most_frequent_position"]["value"] == 0.25 and "in-sample" not in base["most_frequent_position"]["note"]
    assert base["always_last"]["value"] == 0.75 and base["always_first"]["value"] == 0.25
    assert base["synthetic_ceiling"]["value"] == 0.61
    assert "fitted on 4 rows of the train split" in base["most_frequent_position"]["note"]
    assert "in-sample" in baselines(rows)["most_frequent_position"]["note"]


def test_partial_runs_are_never_reported_as_complete(tmp_path):
    preds = [Prediction(1, 2, 1), Prediction(2, 2, 1)]
    partial = build_report("wage", preds, expected_rows=5)
    assert not partial.complete
    with pytest.raises(IncompleteEvaluationError, match="covered 2 of 5 rows"):
        partial.require_complete()
    assert "PARTIAL: 2 of 5 rows" in summary_lines(partial)[0]
    path = partial.write(tmp_path)
    assert path.name == "eval-wage.partial.json" and json.loads(path.read_text())["complete"] is False
    done = build_report("wage", preds, expected_rows=2).require_complete()
    assert done.write(tmp_path).name == "eval-wage.json"


def test_interrupted_evaluation_writes_a_partial_report(tmp_path):
    from grail_rl.evaluation.runner import evaluate_set

    class CutAfterOneChunk:
        description, chunk_size, calls = "a generator interrupted after one chunk", 1, 0

        def generate(self, prompts):
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt
            return ["<answer>1</answer>"]

    rows = [{"prompt": f"p{i}", "gold_index": 1, "n_options": 2} for i in range(3)]
    with pytest.raises(KeyboardInterrupt):
        evaluate_set(CutAfterOneChunk(), rows, name="cut", out_dir=tmp_path)
    report = json.loads((tmp_path / "eval-cut.partial.json").read_text())
    assert report["evaluated_rows"] == 1 and report["expected_rows"] == 3 and not report["complete"]


def test_the_participant_bootstrap_is_wider_than_wilson_when_viewers_cluster():
    from grail_rl.evaluation.metrics import participant_bootstrap, wilson_interval

    # Ten viewers with 30 rows each; a viewer is either always right or always wrong.
    preds = [Prediction(1, 2, 1 if v < 4 else 2, participant_id=f"v{v}") for v in range(10) for _ in range(30)]
    viewers = participant_bootstrap(preds)
    lo, hi = wilson_interval(120, 300)
    assert viewers["participants"] == 10 and viewers["rows"] == 300 and viewers["value"] == 0.4
    assert viewers["ci95"][1] - viewers["ci95"][0] > 2 * (hi - lo)
    assert participant_bootstrap(preds) == viewers  # seeded
    assert "no participant bootstrap" in participant_bootstrap([Prediction(1, 2, 1)] * 5)["note"]


def test_the_report_shows_the_viewer_bootstrap_only_with_ids():
    with_ids = [Prediction(1, 2, 1 + (i % 3 == 0), participant_id=f"p{i % 7}") for i in range(40)]
    assert any("viewer bootstrap" in line for line in summary_lines(build_report("s", with_ids, expected_rows=40)))
    without = [Prediction(1, 2, 1) for _ in range(40)]
    assert not any("viewer bootstrap" in line for line in summary_lines(build_report("s", without, expected_rows=40)))


def test_a_model_that_never_answers_in_format_is_said_so_without_a_division_by_zero():
    preds = [Prediction(1 + i % 3, 3, None, output="The answer is 1.") for i in range(4)]
    report = build_report("s", preds, expected_rows=4)
    data = report.as_dict()
    assert data["overall"]["parsed_rate"]["value"] == 0.0 and data["overall"]["accuracy"]["value"] == 0.0
    lines = summary_lines(report)
    assert any("NO PARSABLE ANSWER: none of the 4 outputs" in line for line in lines)
    assert not any("best trivial baseline" in line for line in lines)
