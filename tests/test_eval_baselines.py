"""``grail-rl evaluate --baseline``: rules and learned baselines evaluated like a model, fitted honestly."""

from __future__ import annotations

import json
import random

import pytest

from grail_rl.errors import GrailError
from grail_rl.evaluation.learned_baselines import LEARNED, cross_fitted, predict, row_view
from tests.test_eval_predictions import evaluate


def prompt(options: list[str], viewer: str, bare: int | None = None) -> list[dict]:
    lines = [f"{j + 1}. {title}" + ("" if j == bare else f" (Channel {j}, 100s long)") for j, title in enumerate(options)]
    user = f"VIEWER {viewer}\n\nCURRENTLY WATCHING Something (from Somebody)\n\nOPTIONS\n" + "\n".join(lines)
    return [{"role": "user", "content": user}]


def popular_rows(n: int, seed: int) -> list[dict]:
    """The viewers always click 'The popular video', shown at a random position among decoys."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        options = [f"Decoy number {rng.randint(0, 10_000)}" for _ in range(3)]
        gold = rng.randint(1, 4)
        options.insert(gold - 1, "The popular video")
        rows.append({"prompt": prompt(options, f"viewer {i % 40} likes things"), "gold_index": gold, "n_options": 4,
                     "participant_id": f"p{i % 40}"})  # fmt: skip
    return rows


@pytest.mark.parametrize("name", LEARNED)
def test_learned_baselines_learn_what_the_viewers_click_and_cross_fit_by_viewer(name):
    views = [row_view(row) for row in popular_rows(240, seed=1)]
    picks = cross_fitted(name, views, seed=0)
    accuracy = sum(p == v.gold_index for p, v in zip(picks.index, views, strict=True)) / len(views)
    assert accuracy > 0.9  # positions are random: only the title tells
    assert all(abs(sum(p) - 1) < 1e-6 and len(p) == 4 for p in picks.probabilities)


def test_fitted_on_other_rows_they_predict_new_ones():
    train, test = [row_view(r) for r in popular_rows(200, 2)], [row_view(r) for r in popular_rows(50, 3)]
    picks = predict("gradient_boosting", train, test)
    assert sum(p == v.gold_index for p, v in zip(picks.index, test, strict=True)) >= 45


def test_the_metadata_leak_rule_picks_the_option_that_alone_lacks_metadata():
    row = {"prompt": prompt(["a", "b", "c"], "v", bare=1), "gold_index": 2, "n_options": 3}
    plain = {"prompt": prompt(["a", "b", "c"], "v"), "gold_index": 1, "n_options": 3}
    train = [row_view(plain)] * 3  # most frequent position: 1
    assert predict("metadata_leak", train, [row_view(row), row_view(plain)]).index == [2, 1]


def test_cross_fitting_needs_two_viewers():
    views = [row_view({**row, "participant_id": "one"}) for row in popular_rows(20, 4)]
    with pytest.raises(GrailError, match="at least two viewers"):
        cross_fitted("knn_tfidf", views)


def test_baselines_report_on_the_recipes_own_split_fitted_on_its_train_rows(tmp_path):
    proc = evaluate(tmp_path, "--baseline", "always_last", "--baseline", "logreg_tfidf")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NO_TORCH" in proc.stdout and "evaluation of baseline logreg_tfidf 'eval'" in proc.stdout
    report = json.loads((tmp_path / "out/evaluations/baseline-logreg_tfidf/eval/eval-eval.json").read_text())
    assert report["complete"] and report["meta"]["fitted_on"].endswith("rows of the recipe's train split")
    assert report["calibration"]["n"] == report["overall"]["n"] > 0
    assert (tmp_path / "out/evaluations/baseline-always_last/eval/eval-eval.json").is_file()
    again = evaluate(tmp_path, "--baseline", "always_last")
    assert again.returncode == 2 and "already exists; pass --overwrite" in again.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--baseline", "oracle"], "--baseline oracle: unknown; choose from random"),
        (["--baseline", "all", "--base"], "takes no --model, --base or --predictions"),
        (["--baseline", "all", "--mode", "choice-logprob"], "--mode and --backend apply to a model"),
    ],
)
def test_bad_baseline_options_are_one_line(tmp_path, args, message):
    proc = evaluate(tmp_path, *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_on_the_real_gun_file_the_fitted_rules_match_the_study(tmp_path, validation_dir):
    gun = validation_dir / "gun_study1.jsonl"
    proc = evaluate(tmp_path, "--baseline", "most_frequent_position", "--baseline", "logreg_tfidf", "--data", gun)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "out/evaluations"
    frequent = json.loads((folder / "baseline-most_frequent_position/eval/eval-gun_study1.json").read_text())
    learned = json.loads((folder / "baseline-logreg_tfidf/eval/eval-gun_study1.json").read_text())
    assert frequent["overall"]["n"] == 548 and round(frequent["overall"]["accuracy"]["value"], 3) == 0.540
    assert learned["meta"]["fitted_on"].startswith("cross-fitted") and learned["overall"]["accuracy"]["value"] > 0.9


def test_the_leak_is_a_trivial_rule_of_every_report_on_the_gun_file(tmp_path, validation_dir):
    gun = validation_dir / "gun_study1.jsonl"
    proc = evaluate(tmp_path, "--data", gun, "--predictions", gun)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LEAK: picking the one option without channel and length scores 0.971" in proc.stdout
    assert "best trivial baseline  metadata_leak 0.971 [0.953, 0.982]: the model does NOT beat it" in proc.stdout
    report = json.loads((tmp_path / "out/evaluations/predictions/eval/eval-gun_study1.json").read_text())
    assert report["baselines"]["metadata_leak"]["n"] == 548


def rendered(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def row(viewer: str, options: list[str], gold: int) -> dict:
    return {"messages": prompt(options, viewer), "gold_index": gold, "n_options": len(options), "issue": "gun_control"}


def test_a_baseline_that_cannot_be_fitted_is_one_line_or_left_out_of_all(tmp_path):
    one_viewer = rendered(tmp_path / "one_viewer.jsonl", [row("the same viewer", ["a", "b", "c"], 1 + i % 3) for i in range(9)])
    alone = evaluate(tmp_path, "--baseline", "knn_tfidf", "--data", one_viewer)
    assert alone.returncode == 2 and "cross-fitting needs rows of at least two viewers" in alone.stderr
    every = evaluate(tmp_path, "--baseline", "all", "--data", one_viewer, "--overwrite")
    assert every.returncode == 0, every.stderr[-2000:]
    assert "note: baseline knn_tfidf left out on 'one_viewer'" in every.stderr
    assert "evaluation of baseline always_first 'one_viewer'" in every.stdout  # a rule is never cross-fitted

    single = rendered(tmp_path / "single.jsonl", [row(f"viewer {i}", ["only one"], 1) for i in range(9)])
    proc = evaluate(tmp_path, "--baseline", "logreg_tfidf", "--data", single)
    assert proc.returncode == 2 and "every fitting row has a single option" in proc.stderr and "Traceback" not in proc.stderr
