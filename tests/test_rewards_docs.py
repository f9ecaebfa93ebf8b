"""docs/rewards.md cannot drift: every built-in reward and option is documented, and its example runs."""

from __future__ import annotations

import json
import re

import pytest

from grail_rl.builtin.rewards import BUILTIN_REWARDS
from grail_rl.testing import check_reward_contract
from tests.conftest import REPO_ROOT

DOCS = (REPO_ROOT / "docs" / "rewards.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("cls", BUILTIN_REWARDS, ids=lambda c: c.name)
def test_every_reward_and_option_is_documented_with_its_default(cls) -> None:
    heading = f"### `{cls.name}`"
    assert heading in DOCS
    section = DOCS.split(heading, 1)[1].split("\n### ", 1)[0]
    for key, info in cls.Config.model_fields.items():
        if info.is_required():
            shown = "required"
        elif isinstance(info.get_default(), str) and len(info.get_default()) > 100:  # a rubric: named, not quoted
            shown = "the default "
        else:
            shown = f"`{json.dumps(info.get_default())}`"
        row = re.search(rf"^\| `{key}` \|.*\| {re.escape(shown)}.*\|", section, re.MULTILINE)
        assert row, f"docs/rewards.md: {cls.name} lacks a row for `{key}` with default {shown}"


def test_the_plugin_example_runs_and_honours_the_contract() -> None:
    example = next(
        block for block in re.findall(r"```python\n(.*?)```", DOCS, re.DOTALL) if "BrevityReward" in block
    )
    namespace: dict = {}
    exec(compile(example, "docs/rewards.md", "exec"), namespace)
    reward = namespace["BrevityReward"]()
    check_reward_contract(reward)
    assert reward(["<answer>1</answer>", "no answer"]) == [pytest.approx(1 - 18 / 400), 0.0]
