"""Rewards see the row fields they declare: validated against the schema, carried into the splits (only
those), decoded for the reward, and listed by ``list-rewards``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import Field

from grail_rl.data.dataset import OUTPUT_COLUMNS, build_split
from grail_rl.data.row_fields import ROW_FIELDS
from grail_rl.errors import GrailError
from grail_rl.plugins import PluginConfig, RewardFunction
from grail_rl.recipe.loader import load_recipe
from grail_rl.rewards.runtime import GuardedReward
from tests.plugin_doubles import reward_plugin

SEEN: list[dict[str, Any]] = []


class ReadsTheRow(RewardFunction):
    """Scores 1 when the current video's title is among the history's titles (and records what it saw)."""

    name = "reads_row"
    row_fields = ("current_video_title", "survey")

    class Config(PluginConfig):
        row_fields: list[str] = Field(default_factory=list, description="More row fields to read.")

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        SEEN.append({key: kwargs.get(key) for key in (*self.fields_read(self.config), "gold_index")})
        return [0.0] * len(completions)


class BadDeclaration(ReadsTheRow):
    name = "bad_declaration"
    row_fields = "survey"  # a string, not a list of names


RECIPE = """\
model: {name_or_path: ./no-model}
data: {synthetic: {n: 120, seed: 3, cache_dir: synth}}
rewards:
  - name: reads_row
    row_fields: EXTRA
output: {dir: out}
"""


def recipe(tmp_path, extra: str = "[]", name: str = "reads_row"):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.replace("EXTRA", extra).replace("reads_row", name, 1))
    return path


@pytest.fixture
def plugin(register_plugin):
    register_plugin(reward_plugin("row_readers", ReadsTheRow, BadDeclaration))


def test_the_split_carries_exactly_the_fields_the_rewards_read(tmp_path, plugin):
    loaded = load_recipe(recipe(tmp_path, '["history_titles"]'))
    train, _ = build_split(loaded.recipe, loaded.plugins, "train")
    extra = [name for name in train.column_names if name not in OUTPUT_COLUMNS]
    assert extra == ["current_video_title", "survey", "history_titles"]
    row = train[0]
    assert isinstance(row["current_video_title"], str) and isinstance(row["history_titles"], list)
    assert isinstance(json.loads(row["survey"]), dict)


def test_without_a_reward_that_reads_them_no_field_is_carried(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.replace("  - name: reads_row\n    row_fields: EXTRA\n", "  - name: accuracy\n"))
    loaded = load_recipe(path)
    train, _ = build_split(loaded.recipe, loaded.plugins, "train")
    assert train.column_names == list(OUTPUT_COLUMNS)


def test_the_reward_receives_the_fields_decoded(tmp_path, plugin):
    loaded = load_recipe(recipe(tmp_path))
    train, _ = build_split(loaded.recipe, loaded.plugins, "train")
    block = loaded.recipe.rewards[0]
    guarded = GuardedReward(block.build(), plugin="row_readers")
    rows = train.select(range(3))
    SEEN.clear()
    guarded(["<answer>1</answer>"] * 3, **{name: rows[name] for name in rows.column_names})
    seen = SEEN[0]
    assert seen["current_video_title"] == rows["current_video_title"]
    assert all(isinstance(answers, dict) for answers in seen["survey"])  # JSON text in the split, a mapping here


def test_a_field_the_schema_does_not_have_names_the_reward_and_the_field(tmp_path, plugin):
    with pytest.raises(GrailError, match=r"rewards\[0\]\.name: reward 'reads_row' reads the row field 'current_title', "
                       r"which the data schema does not have; row fields: current_video_id"):  # fmt: skip
        load_recipe(recipe(tmp_path, '["current_title"]'))


def test_a_broken_declaration_names_the_plugin(tmp_path, plugin):
    with pytest.raises(GrailError, match="reward 'bad_declaration' .* its row_fields could not be read: .*list of field names"):
        load_recipe(recipe(tmp_path, name="bad_declaration"))


def test_list_rewards_shows_the_fields(plugin):
    from click.testing import CliRunner

    from grail_rl.cli.main import cli

    result = CliRunner().invoke(cli, ["list-rewards", "--json"])
    listed = {entry["name"]: entry for entry in json.loads(result.output)}
    assert listed["reads_row"]["row_fields"] == ["current_video_title", "survey"]
    assert listed["accuracy"]["row_fields"] == ["gold_index", "n_options", "opinion_direction", "issue"]


def test_every_documented_field_is_a_real_field():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "rewards.md").read_text()
    for name in ROW_FIELDS:
        assert f"`{name}`" in doc


def test_prompt_is_not_a_row_field(tmp_path, plugin):
    with pytest.raises(GrailError, match="reads the row field 'prompt': TRL passes the prompts to every reward as the `prompts`"):
        load_recipe(recipe(tmp_path, '["prompt"]'))
