"""The example plugin's own tests, written the way a plugin author would, with grail_rl.testing."""

import grail_rl_brevity

from grail_rl.testing import check_reward_contract, isolated_plugins


def test_contract():
    check_reward_contract(grail_rl_brevity.ThinkBrevity())


def test_scores():
    reward = grail_rl_brevity.ThinkBrevity(grail_rl_brevity.ThinkBrevity.Config(max_words=2))
    out = reward(["<think>a b</think>", "<think>a b c</think>", "<think>a b c d</think>", "none"])
    assert out == [1.0, 0.5, 0.0, None]


def test_registers_through_the_hook():
    plugins = isolated_plugins(grail_rl_brevity, builtins=False, names=["brevity"])
    assert plugins.rewards.get("think_brevity").source.plugin == "brevity"
