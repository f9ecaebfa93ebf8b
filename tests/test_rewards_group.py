"""Group rewards: scored per prompt group, put back in order; the built-in choice_diversity example."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from grail_rl.errors import GrailError
from grail_rl.plugins import GroupReward
from grail_rl.rewards.diversity import ChoiceDiversityReward
from grail_rl.rewards.runtime import GuardedReward
from grail_rl.testing import check_reward_contract

PROMPTS = ["p1"] * 4 + ["p2"] * 4


class Recorder(GroupReward):
    name = "recorder"
    groups: list[tuple[list[Any], list[Any]]] = []

    def score_group(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        self.groups.append((list(completions), list(columns["gold_index"])))
        return [float(len(self.groups))] * len(completions)


class OneShort(GroupReward):
    name = "one_short"

    def score_group(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        return [0.0] * (len(completions) - 1)


def test_each_group_is_scored_alone_and_the_scores_go_back_in_order():
    Recorder.groups = []
    golds = [1, 1, 1, 1, 2, 2, 2, 2]
    scores = GuardedReward(Recorder(), plugin="tests")([f"c{i}" for i in range(8)], prompts=PROMPTS, gold_index=golds)
    assert scores == [1.0] * 4 + [2.0] * 4
    assert Recorder.groups == [(["c0", "c1", "c2", "c3"], [1] * 4), (["c4", "c5", "c6", "c7"], [2] * 4)]


def test_a_group_scored_with_the_wrong_length_is_the_rewards_fault():
    with pytest.raises(GrailError, match="reward 'one_short' .* score_group returned 3 scores for a group of 4"):
        GuardedReward(OneShort(), plugin="tests")(["x"] * 8, prompts=PROMPTS)


def test_choice_diversity_rewards_the_rare_choice_and_abstains_without_a_comparison():
    answers = ["<answer>1</answer>", "<answer>1</answer>", "<answer>2</answer>", "nothing",
               "<answer>3</answer>", "junk", "junk", "junk"]  # fmt: skip
    scores = ChoiceDiversityReward()(answers, prompts=PROMPTS, n_options=[4] * 8)
    assert scores[:4] == [0.5, 0.5, 1.0, None]  # three valid: option 1 shared with one of two others
    assert scores[4:] == [None] * 4  # one valid answer in the group: nothing to compare


def test_choice_diversity_honours_the_reward_contract():
    check_reward_contract(ChoiceDiversityReward())


class AsyncDiversity(GroupReward):
    """An async group reward: each group waits (as on a judge) before scoring."""

    name = "async_groups"

    async def score_group(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        import asyncio

        await asyncio.sleep(0)
        return [float(len(completions))] * len(completions)


def test_an_async_group_reward_is_async_and_scores_every_group():
    import asyncio

    from grail_rl.rewards.runtime import AsyncGuardedReward, is_async_reward

    guarded = GuardedReward(AsyncDiversity(), plugin="tests")
    assert is_async_reward(AsyncDiversity()) and isinstance(guarded, AsyncGuardedReward)
    assert asyncio.run(guarded(["x"] * 8, prompts=PROMPTS)) == [4.0] * 8
