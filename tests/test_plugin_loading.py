"""Plugin discovery and registration: isolation of broken plugins, duplicates, blocking, lookups."""

from __future__ import annotations

import pytest

from grail_rl.errors import UnknownPluginError
from grail_rl.plugins import PluginConfig, RewardFunction, hookspecs
from grail_rl.plugins.manager import load_plugins
from grail_rl.plugins.registry import PluginSource
from grail_rl.testing import isolated_plugins
from tests.plugin_doubles import ConstantReward, make_plugin, reward_plugin


def _load(*plugins):
    return load_plugins(builtins=False, use_entry_points=False, extra=[(p, PluginSource(p.__name__)) for p in plugins], blocked=())


def test_a_plugin_registers_its_rewards_with_provenance():
    plugins = _load(reward_plugin("good", ConstantReward))
    spec = plugins.rewards.get("constant")
    assert spec.cls is ConstantReward
    assert spec.source.plugin == "good"
    assert [p.name for p in plugins.loaded] == ["good"]
    assert plugins.loaded[0].hooks == ["register_rewards"]
    assert plugins.loaded[0].registered == {"reward": ["constant"]}


def test_duplicate_name_is_rejected_naming_both_plugins():
    plugins = _load(reward_plugin("first", ConstantReward), reward_plugin("second", ConstantReward))
    assert plugins.rewards.get("constant").source.plugin == "first"
    [failure] = plugins.failures
    assert failure.plugin == "second"
    assert "'constant' already registered by plugin 'first' (new: 'second')" in failure.error


def test_unknown_name_suggests_the_closest_and_lists_all():
    plugins = _load(reward_plugin("good", ConstantReward))
    with pytest.raises(UnknownPluginError) as err:
        plugins.rewards.get("constnat")
    assert str(err.value) == "Unknown reward 'constnat'. Did you mean 'constant'? Available: constant"


def _raising_hook(register):
    raise RuntimeError("boom")


class NotAReward:
    name = "nope"


class NoCall(RewardFunction):
    name = "no_call"


class BadName(ConstantReward):
    name = "Bad Name"


class ReservedKey(RewardFunction):
    name = "reserved"

    class Config(PluginConfig):
        weight: float = 1.0

    def __call__(self, completions, **kwargs):
        return [0.0] * len(completions)


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (make_plugin("raises", register_rewards=_raising_hook), "register_rewards: boom"),
        (make_plugin("misspelled", register_reward=lambda register: None), "did you mean 'register_rewards'"),
        (make_plugin("wrong_args", register_rewards=lambda register, extra: None), "wrong hook signature"),
        (make_plugin("no_hooks"), "defines no grail_rl hooks"),
        (reward_plugin("not_a_reward", NotAReward), "not a subclass of RewardFunction"),
        (reward_plugin("abstract", NoCall), "does not implement __call__"),
        (reward_plugin("bad_name", BadName), "must be a lowercase identifier"),
        (reward_plugin("reserved", ReservedKey), "may not define weight"),
    ],
)
def test_a_broken_plugin_is_reported_by_name_and_the_rest_keep_working(plugin, expected):
    plugins = _load(plugin, reward_plugin("good", ConstantReward))
    assert [f.plugin for f in plugins.failures] == [plugin.__name__]
    assert expected in plugins.failures[0].error
    assert plugins.rewards.names() == ["constant"]
    assert [p.name for p in plugins.loaded] == ["good"]


def test_a_failing_plugin_leaves_nothing_half_registered():
    def register_half(register):
        register(ConstantReward)
        raise ValueError("second registration failed")

    plugins = _load(make_plugin("half", register_rewards=register_half))
    assert "constant" not in plugins.rewards
    assert plugins.pm.get_plugin("half") is None


def test_blocked_plugins_are_skipped(monkeypatch):
    monkeypatch.setenv("GRAIL_RL_BLOCK_PLUGINS", "good, other")
    plugins = load_plugins(builtins=False, use_entry_points=False, extra=[(reward_plugin("good", ConstantReward), PluginSource("good"))])
    assert plugins.blocked == ["good"]
    assert len(plugins.rewards) == 0


def test_builtins_register_through_entry_points():
    plugins = load_plugins(blocked=())
    builtin = [p for p in plugins.loaded if p.distribution == "grail-rl"]
    assert {p.name for p in builtin} >= {"builtin_rewards", "builtin_sections"}
    assert not [f for f in plugins.failures if f.distribution == "grail-rl"]


def test_register_plugin_fixture_is_seen_by_load_plugins(register_plugin):
    register_plugin(reward_plugin("fixture_plugin", ConstantReward))
    assert load_plugins(blocked=()).rewards.get("constant").source.plugin == "fixture_plugin"


def test_isolated_plugins_ignore_other_registrations(register_plugin):
    register_plugin(reward_plugin("elsewhere", ConstantReward))
    assert "constant" not in isolated_plugins().rewards
    assert "constant" in isolated_plugins(reward_plugin("mine", ConstantReward)).rewards


def test_builtins_are_registered_by_import_without_any_entry_point():
    # No entry points at all (as in a source tree without install metadata): the built-ins are still there,
    # registered through the same path as third-party plugins, with grail-rl as their distribution.
    from grail_rl import __version__

    plugins = load_plugins(use_entry_points=False, blocked=())
    assert "accuracy" in plugins.rewards and "options" in plugins.prompt_sections
    spec = plugins.rewards.get("accuracy")
    assert (spec.source.plugin, spec.source.distribution, spec.source.version) == (
        "builtin_rewards", "grail-rl", __version__,
    )
    assert {p.name for p in plugins.loaded} >= {"builtin_rewards", "builtin_sections"}


def test_builtins_can_be_left_out_or_blocked():
    assert len(load_plugins(builtins=False, use_entry_points=False, blocked=()).rewards) == 0
    blocked = load_plugins(use_entry_points=False, blocked=["builtin_rewards"])
    assert "accuracy" not in blocked.rewards and "options" in blocked.prompt_sections
    assert "builtin_rewards" in blocked.blocked


def test_every_kind_has_its_hook_registry_and_listing_command():
    from grail_rl.cli.main import LAZY_COMMANDS
    from grail_rl.plugins.kinds import KINDS

    plugins = load_plugins(use_entry_points=False, blocked=())
    for kind in KINDS:
        assert hasattr(hookspecs, kind.hook)
        assert plugins.registry(kind.key) is getattr(plugins, kind.attribute)
        assert kind.list_command in LAZY_COMMANDS
