"""grail_rl.testing's contract check catches each way a reward can break the contract."""

from __future__ import annotations

import itertools
import math

import pytest

from grail_rl.plugins.manager import load_plugins
from grail_rl.testing import check_reward_contract


def good(completions, **kwargs):
    return [0.5] * len(completions)


def wrong_count(completions, **kwargs):
    return [0.5] * (len(completions) + 1)


def nan_values(completions, **kwargs):
    return [math.nan] * len(completions)


def no_kwargs(completions):
    return [0.0] * len(completions)


def raises_on_messages(completions, **kwargs):
    return [float(len(c.strip())) for c in completions]  # chat-message lists have no .strip()


def strings(completions, **kwargs):
    return ["1"] * len(completions)


_counter = itertools.count()


def not_deterministic(completions, **kwargs):
    return [float(next(_counter))] * len(completions)


@pytest.mark.parametrize(
    ("reward", "expected"),
    [
        (wrong_count, "returned 15 values for 14 completions"),
        (nan_values, "expected a finite float"),
        (no_kwargs, "raised TypeError"),
        (raises_on_messages, "raised AttributeError"),
        (strings, "value 0 is str '1', expected float or None"),
        (not_deterministic, "not deterministic"),
    ],
)
def test_contract_violations_are_reported(reward, expected):
    with pytest.raises(AssertionError) as err:
        check_reward_contract(reward)
    assert f"reward '{reward.__name__}' breaks the reward contract" in str(err.value)
    assert expected in str(err.value)


def test_a_good_reward_passes():
    check_reward_contract(good)


# llm_judge needs a server: tests/test_rewards_builtin.py checks its contract against a real one.
@pytest.mark.parametrize("name", sorted(set(load_plugins(distributions={"grail-rl"}, blocked=()).rewards.names())
                                        - {"llm_judge"}))  # fmt: skip
def test_every_builtin_reward_honours_the_contract(name):
    spec = load_plugins(distributions={"grail-rl"}, blocked=()).rewards.get(name)
    check_reward_contract(spec.build())
