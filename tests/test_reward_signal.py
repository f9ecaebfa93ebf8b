"""Signal diagnostics: percentiles and the share of constant prompt groups per reward and for the weighted
total, and a warning naming a reward that has carried no signal for many steps."""

from __future__ import annotations

import pytest

from grail_rl.plugins.registry import PluginSource, PluginSpec
from grail_rl.rewards.diagnostics import NO_SIGNAL_STEPS, RewardDiagnostics, prompt_groups, signal_statistics
from grail_rl.rewards.runtime import GuardedReward, build_reward_functions
from tests.plugin_doubles import ConstantReward

PROMPTS = ["a"] * 4 + ["b"] * 4 + ["c"] * 4


def test_groups_are_runs_of_one_prompt():
    assert prompt_groups(PROMPTS, 12) == [range(0, 4), range(4, 8), range(8, 12)]
    assert prompt_groups(None, 5) == [range(5)]


def test_percentiles_and_constant_groups():
    values = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, None, None, None, None]
    stats = signal_statistics("x", values, prompt_groups(PROMPTS, 12))
    assert stats["rewards/x/constant_groups"] == pytest.approx(2 / 3)  # all solved, and all abstained
    assert stats["rewards/x/median"] == 1.0 and stats["rewards/x/p10"] == pytest.approx(0.0)
    assert stats["rewards/x/p90"] == 1.0


def test_the_weighted_total_is_logged_and_a_silent_reward_is_named():
    logged: dict[str, float] = {}
    diagnostics = RewardDiagnostics(["flat", "varied"], [0.5, 0.5])
    completions = ["x"] * 12
    for step in range(NO_SIGNAL_STEPS):
        diagnostics.report("flat", completions, [1.0] * 12, logged.__setitem__, step=step, prompts=PROMPTS)
        diagnostics.report("varied", completions, [float(i % 2) for i in range(12)], logged.__setitem__,
                           step=step, prompts=PROMPTS)  # fmt: skip
    assert logged["rewards/flat/constant_groups"] == 1.0 and logged["rewards/varied/constant_groups"] == 0.0
    assert logged["reward/median"] == pytest.approx(0.75) and logged["reward/constant_groups"] == 0.0
    assert len(diagnostics.warnings) == 1 and "reward 'flat' has carried no signal for 20 batches" in diagnostics.warnings[0]


def test_the_runtime_wrapper_reports_with_the_prompts_and_weights():
    spec = PluginSpec("reward", "constant", ConstantReward, PluginSource(plugin="tests"))
    funcs, weights = build_reward_functions([(spec, None, 2.0, "stop")])
    logged: dict[str, float] = {}
    funcs[0](["x"] * 12, prompts=PROMPTS, log_metric=logged.__setitem__)
    assert logged["rewards/constant/constant_groups"] == 1.0 and logged["reward/p90"] == pytest.approx(weights[0])
    assert isinstance(funcs[0], GuardedReward)


def test_groups_follow_the_prompts_when_the_generations_differ_and_the_total_drops_full_abstentions():
    logged: dict[str, float] = {}
    diagnostics = RewardDiagnostics(["a"], [1.0], group_size=8)
    eval_prompts = [f"q{i // 2}" for i in range(8)]  # an evaluation with 2 generations per prompt
    diagnostics.report("a", ["x"] * 8, [1.0, 1.0, 0.0, 0.0] * 2, logged.__setitem__, prompts=eval_prompts)
    assert logged["rewards/a/constant_groups"] == 1.0  # four constant groups of 2, not one varied group of 8
    logged.clear()
    diagnostics.report("a", ["y"] * 8, [None, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0], logged.__setitem__, prompts=PROMPTS[:8])
    assert logged["reward/constant_groups"] == 0.5  # the abstained row is left out of its group, as TRL does
