"""The resume checks without training: the recipe diff, plugin versions and the content of named files."""

from __future__ import annotations

from grail_rl.training.resume import input_changes, input_fingerprints, plugin_changes, recipe_changes


def test_recipe_changes_read_as_a_diff_and_ignore_output_overwrite():
    before = {"trainer": {"learning_rate": 1e-3}, "rewards": [{"name": "accuracy"}, {"name": "format"}],
              "output": {"overwrite": False}}  # fmt: skip
    after = {"trainer": {"learning_rate": 2e-3}, "rewards": [{"name": "accuracy"}], "output": {"overwrite": True}}
    assert recipe_changes(before, after) == [
        "rewards[1].name: \"format\" -> (not set)",
        "rewards[]: 2 -> 1",
        "trainer.learning_rate: 0.001 -> 0.002",
    ]
    assert recipe_changes(after, after) == []


def test_plugin_versions_are_compared():
    assert plugin_changes({"a": "0.1", "b": "1.0"}, {"a": "0.2", "c": "3"}) == [
        "plugin a: 0.1 -> 0.2", "plugin b: 1.0 -> (not installed)", "plugin c: (not installed) -> 3",
    ]  # fmt: skip


def test_an_edited_file_behind_the_same_path_is_a_change(tmp_path):
    prompt = tmp_path / "system.txt"
    prompt.write_text("Answer with <answer>N</answer>.")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("{}\n")
    resolved = {"prompt": {"system_prompt_file": str(prompt)}, "data": {"train": [{"path": str(tmp_path / "data")}]},
                "output": {"dir": str(tmp_path)}}  # fmt: skip
    recorded = input_fingerprints(resolved)
    assert set(recorded) == {"prompt.system_prompt_file", "data.train[0].path"}  # output.dir is not an input
    assert input_changes(recorded, resolved) == []
    prompt.write_text("Answer with the option's title.")
    (tmp_path / "data" / "more.jsonl").write_text("{}\n")
    assert input_changes(recorded, resolved) == [
        f"data.train[0].path: the content of {tmp_path / 'data'} changed",
        f"prompt.system_prompt_file: the content of {prompt} changed",
    ]
