"""RunLayout: the one owner of a run folder's paths, read by train, evaluate and report alike."""

from pathlib import Path

from grail_rl.run_layout import RunLayout


def test_layout_names_every_part_of_a_run(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path)
    assert layout.final == tmp_path / "final"
    assert layout.eval_dir == tmp_path / "eval"
    assert layout.metrics == tmp_path / "metrics.jsonl"
    assert layout.run_file == tmp_path / "run.json"
    assert layout.evaluation_root("base") == tmp_path / "evaluations" / "base"


def test_checkpoints_are_in_step_order_and_other_names_are_ignored(tmp_path: Path) -> None:
    for name in ("checkpoint-10", "checkpoint-2", "checkpoint-x", "checkpoints"):
        (tmp_path / name).mkdir()
    (tmp_path / "checkpoint-3").write_text("a file, not a checkpoint")
    assert [p.name for p in RunLayout(tmp_path).checkpoints()] == ["checkpoint-2", "checkpoint-10"]
    assert RunLayout(tmp_path / "missing").checkpoints() == []


def test_reports_come_from_the_final_eval_folder_then_each_evaluation(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path)
    for folder in (layout.eval_dir, layout.evaluation_root("base") / "eval", layout.evaluation_root("a") / "eval"):
        folder.mkdir(parents=True)
    (layout.eval_dir / "eval-eval.json").write_text("{}")
    (layout.evaluation_root("base") / "eval" / "eval-eval.partial.json").write_text("{}")
    (layout.evaluation_root("a") / "eval" / "eval-x.json").write_text("{}")
    (layout.evaluation_root("a") / "eval" / "eval-x.predictions.jsonl").write_text("")
    (layout.evaluation_root("empty")).mkdir()
    found = [p.relative_to(tmp_path).as_posix() for p in layout.reports()]
    assert found == ["eval/eval-eval.json", "evaluations/a/eval/eval-x.json", "evaluations/base/eval/eval-eval.partial.json"]
