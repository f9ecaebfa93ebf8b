"""The runtime around the reward plugins: weights, TRL's calling convention, faults, abstentions, diagnostics."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grail_rl.errors import GrailError
from grail_rl.plugins import PluginConfig, RewardFunction, hookimpl
from grail_rl.rewards import (
    RewardDiagnostics,
    RewardFault,
    RewardWeightError,
    build_reward_functions,
    normalise_weights,
)
from grail_rl.rewards.diagnostics import pearson
from grail_rl.testing import isolated_plugins

GOOD = "<think>\nx\n</think>\n<answer>\n2\n</answer>"


# --- weights ----------------------------------------------------------------------------------------


def test_weights_are_clipped_and_normalised() -> None:
    assert normalise_weights([1.0, 0.5]) == pytest.approx([2 / 3, 1 / 3])  # the GRAIL mix of DOMAIN.md 5
    assert normalise_weights([2, -1, 2]) == [0.5, 0.0, 0.5]
    assert normalise_weights([0.0, 3.0]) == [0.0, 1.0]


@pytest.mark.parametrize(
    ("weights", "expected", "message"),
    [
        ([0.0, 0.0], None, "all reward weights are 0"),
        ([-1.0], None, "all reward weights are 0"),
        ([], None, "no reward weights"),
        ([1.0, 2.0], 3, "2 reward weights for 3 reward functions"),
        ([1.0, math.nan], None, "finite"),
        ([math.inf], None, "finite"),
        (["1"], None, "finite number"),
    ],
)
def test_unusable_weights_are_errors(weights: list[Any], expected: int | None, message: str) -> None:
    with pytest.raises(RewardWeightError, match=message):
        normalise_weights(weights, expected)


@given(st.lists(st.floats(min_value=-10, max_value=10), min_size=1, max_size=8))
def test_normalised_weights_sum_to_one(weights: list[float]) -> None:
    if all(w <= 0 for w in weights):
        with pytest.raises(RewardWeightError):
            normalise_weights(weights)
        return
    result = normalise_weights(weights)
    assert math.fsum(result) == pytest.approx(1.0)
    assert all(r >= 0 for r in result)
    assert all(r == 0 for r, w in zip(result, weights, strict=True) if w <= 0)


# --- test doubles: rewards that misbehave ----------------------------------------------------------


class ScriptConfig(PluginConfig):
    mode: str = "ok"


class ScriptedReward(RewardFunction):
    """A reward whose misbehaviour is chosen by its config."""

    name = "scripted"
    Config = ScriptConfig

    def __call__(self, completions, **kwargs):
        mode = self.config.mode
        n = len(completions)
        if mode == "raise":
            raise RuntimeError("boom")
        if mode == "short":
            return [1.0] * (n - 1)
        if mode == "nan":
            return [math.nan if i == 1 else 0.5 for i in range(n)]
        if mode == "inf":
            return [math.inf] * n
        if mode == "junk":
            return ["high"] + [1] * (n - 1)
        if mode == "scalar":
            return 1.0
        if mode == "numpy":
            import numpy as np

            return np.array([0.25] * n, dtype=np.float32)
        if mode == "abstain":
            return [None if i % 2 else 1 for i in range(n)]
        return [float(i) for i in range(n)]


class ScriptedPlugin:
    @hookimpl
    def register_rewards(self, register):
        register(ScriptedReward)


@pytest.fixture
def plugins():
    return isolated_plugins(ScriptedPlugin(), names=["scripted_plugin"])


def trl_call(func, completions, step: int = 7, **columns):
    """Call ``func`` exactly the way TRL 1.16's GRPOTrainer._calculate_rewards does."""
    logged: list[tuple[str, float]] = []
    n = len(completions)
    kwargs = {
        "prompts": [[{"role": "user", "content": "OPTIONS ..."}]] * n,
        "completions": completions,
        "completion_ids": [[1, 2, 3]] * n,
        "trainer_state": SimpleNamespace(global_step=step),
        "log_extra": lambda column, values: None,
        "log_metric": lambda name, value: logged.append((name, value)),
        "gold_index": [2] * n,
        "n_options": [4] * n,
        "issue": ["gun_control"] * n,
        "participant_study": ["study1"] * n,
        "opinion_direction": [None] * n,
    }
    kwargs.update(columns)
    return func(**kwargs), dict(logged)


def entry(plugins, name, weight=1.0, on_fault="stop", **options):
    spec = plugins.rewards.get(name)
    return (spec, spec.config_class(**options), weight, on_fault)


# --- building -------------------------------------------------------------------------------------


def test_build_gives_named_callables_and_normalised_weights(plugins) -> None:
    funcs, weights = build_reward_functions(
        [
            entry(plugins, "accuracy"),
            entry(plugins, "format", weight=0.5),
            entry(plugins, "tag_count", weight=0),
        ]
    )
    assert [f.__name__ for f in funcs] == ["accuracy", "format", "tag_count"]
    assert weights == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert funcs[0].diagnostics is funcs[2].diagnostics
    values, _ = trl_call(funcs[0], [GOOD, "<answer>1</answer>"])
    assert values == [1.0, 0.0]


def test_build_accepts_plain_option_mappings_and_defaults(plugins) -> None:
    spec = plugins.rewards.get("accuracy")
    funcs, _ = build_reward_functions(
        [(spec, {"allow_bare_numbers": True}, 1.0, "stop"), entry(plugins, "format")]
    )
    assert funcs[0].reward.config.allow_bare_numbers is True
    funcs, _ = build_reward_functions([(spec, None, 1.0, "stop")])
    assert funcs[0].reward.config == spec.config_class()


@pytest.mark.parametrize(
    ("make_entries", "message"),
    [
        (lambda p: [], "no rewards configured"),
        (lambda p: [entry(p, "format"), entry(p, "format")], "'format' appear more than once"),
        (lambda p: [entry(p, "format", on_fault="ignore")], "on_fault must be 'stop' or 'abstain'"),
        (
            lambda p: [(p.rewards.get("format"), p.rewards.get("accuracy").config_class(), 1.0, "stop")],
            "expected",
        ),
        (lambda p: [entry(p, "format", weight=0)], "all reward weights are 0"),
    ],
)
def test_build_rejects_unusable_entries(plugins, make_entries, message: str) -> None:
    with pytest.raises(GrailError, match=message):
        build_reward_functions(make_entries(plugins))


def test_entries_from_recipe_like_blocks(plugins) -> None:
    from grail_rl.rewards.runtime import entries_from_blocks

    spec = plugins.rewards.get("accuracy")
    block = SimpleNamespace(
        plugin_spec=spec,
        weight=2.0,
        on_fault="abstain",
        plugin_options=lambda: spec.config_class(opinion_share=0.0),
    )
    [(got_spec, config, weight, on_fault)] = entries_from_blocks([block])
    assert (got_spec, config.opinion_share, weight, on_fault) == (spec, 0.0, 2.0, "abstain")


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("raise", "raised RuntimeError: boom"),
        ("short", "returned 2 values for 3 completions"),
        ("nan", "returned 1 unusable value(s) of 3 (row 1: nan is not finite)"),
        ("inf", "returned 3 unusable value(s) of 3"),
        ("junk", "row 0: 'high' is a str, not a number"),
        ("scalar", "returned a float instead of a list"),
    ],
)
def test_a_fault_stops_training_naming_reward_plugin_and_step(
    plugins, tmp_path, mode: str, problem: str
) -> None:
    funcs, _ = build_reward_functions(
        [entry(plugins, "scripted", mode=mode)], fault_dir=tmp_path / "reward_faults"
    )
    completions = [GOOD, "<answer>1</answer>", [{"role": "assistant", "content": "msg"}]]
    with pytest.raises(RewardFault) as caught:
        trl_call(funcs[0], completions, step=12)
    fault = caught.value
    message = str(fault)
    assert "reward 'scripted' (plugin 'scripted_plugin') at step 12" in message
    assert problem in message
    assert "on_fault: abstain" in message
    assert isinstance(fault, GrailError)
    assert (fault.reward, fault.plugin, fault.step) == ("scripted", "scripted_plugin", 12)
    saved = json.loads(fault.saved_to.read_text())
    assert str(fault.saved_to) in message
    assert saved["reward"] == "scripted" and saved["plugin"] == "scripted_plugin" and saved["step"] == 12
    rows = saved["rows"]
    if mode == "nan":
        assert [r["row"] for r in rows] == [1]
        assert rows[0]["completion"] == "<answer>1</answer>" and rows[0]["returned"] == "nan"
        assert rows[0]["gold_index"] == 2 and rows[0]["issue"] == "gun_control"
    elif mode == "junk":
        assert [r["row"] for r in rows] == [0] and rows[0]["returned"] == "'high'"
    else:
        assert [r["row"] for r in rows] == [0, 1, 2]
        assert rows[2]["completion"] == [{"role": "assistant", "content": "msg"}]
    assert all("log_metric" not in r and "trainer_state" not in r for r in rows)


def test_a_fault_without_directory_or_step_still_says_what_happened(plugins) -> None:
    funcs, _ = build_reward_functions([entry(plugins, "scripted", mode="raise")])
    with pytest.raises(
        RewardFault, match=r"at step \? raised RuntimeError: boom; no fault directory"
    ) as caught:
        funcs[0](completions=["x"])
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_faults_in_one_step_are_saved_to_separate_files(plugins, tmp_path) -> None:
    funcs, _ = build_reward_functions([entry(plugins, "scripted", mode="raise")], fault_dir=tmp_path)
    for _ in range(2):
        with pytest.raises(RewardFault):
            trl_call(funcs[0], ["x"], step=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step3-scripted-2.json", "step3-scripted.json"]


@pytest.mark.parametrize(
    ("mode", "expected", "faulty"),
    [
        ("raise", [None, None, None], 3),
        ("short", [None, None, None], 3),
        ("nan", [0.5, None, 0.5], 1),
        ("junk", [None, 1.0, 1.0], 1),
    ],
)
def test_abstain_turns_faulty_rows_into_none_and_counts_them(
    plugins, tmp_path, caplog, mode, expected, faulty
):
    funcs, _ = build_reward_functions(
        [entry(plugins, "scripted", on_fault="abstain", mode=mode), entry(plugins, "accuracy")],
        fault_dir=tmp_path,
    )
    values, logged = trl_call(funcs[0], ["a", "b", "c"])
    assert values == expected
    assert logged["rewards/scripted/faulty_rows"] == faulty
    assert logged["rewards/scripted/abstain_rate"] == pytest.approx(faulty / 3)
    assert "abstain (on_fault: abstain)" in caplog.text and "scripted_plugin" in caplog.text
    assert funcs[0].faulty_rows_total == faulty
    # The first abstained fault is saved for inspection; later ones only counted, not to flood the disk.
    trl_call(funcs[0], ["a", "b", "c"])
    assert len(list(tmp_path.iterdir())) == 1
    assert funcs[0].faulty_rows_total == 2 * faulty


def test_abstentions_pass_through_as_none_and_ints_become_floats(plugins) -> None:
    funcs, _ = build_reward_functions([entry(plugins, "scripted", mode="abstain")])
    values, logged = trl_call(funcs[0], ["a", "b", "c", "d"])
    assert values == [1.0, None, 1.0, None]
    assert all(type(v) is float for v in values if v is not None)
    assert logged["rewards/scripted/abstain_rate"] == 0.5
    assert "rewards/scripted/faulty_rows" not in logged  # only logged for on_fault: abstain


def test_numpy_results_are_accepted_as_plain_floats(plugins) -> None:
    funcs, _ = build_reward_functions([entry(plugins, "scripted", mode="numpy")])
    values, _ = trl_call(funcs[0], ["a", "b"])
    assert values == [0.25, 0.25] and all(type(v) is float for v in values)


def test_numpy_columns_are_columns_not_scalars() -> None:
    import numpy as np

    from grail_rl.rewards.accuracy import AccuracyReward

    assert AccuracyReward()([GOOD, GOOD], gold_index=np.array([2, 3]), n_options=np.array([4, 4])) == [
        1.0,
        0.0,
    ]


def test_all_rows_abstaining_is_not_a_fault(plugins) -> None:
    funcs, _ = build_reward_functions([entry(plugins, "accuracy"), entry(plugins, "format")])
    values, logged = trl_call(funcs[0], [GOOD, GOOD], gold_index=[None, None])
    assert values == [None, None]
    assert logged["rewards/accuracy/abstain_rate"] == 1.0


def test_a_batch_that_no_reward_scores_stops_training_naming_the_rewards(plugins) -> None:
    from grail_rl.rewards.diagnostics import NoRewardSignal

    funcs, _ = build_reward_functions([entry(plugins, "accuracy")])
    with pytest.raises(NoRewardSignal, match="no reward scored any of the 2 completions at step 7: accuracy"):
        trl_call(funcs[0], [GOOD, GOOD], gold_index=[None, None])


# --- diagnostics ------------------------------------------------------------------------------------


def test_diagnostics_log_per_reward_and_correlation_once_the_batch_is_complete(plugins) -> None:
    funcs, _ = build_reward_functions(
        [entry(plugins, "accuracy"), entry(plugins, "format"), entry(plugins, "scripted")]
    )
    completions = [GOOD, "<answer>2</answer>", "<answer>1</answer>", "nothing"]
    columns = {"issue": ["gun_control", "gun_control", "minimum_wage", "minimum_wage"]}
    _, first = trl_call(funcs[0], completions, **columns)
    seconds = first.pop("rewards/accuracy/seconds")  # the reward's wall time on the batch: its latency
    assert 0 < seconds < 60
    assert first == {
        "rewards/accuracy/parsed_rate": 0.75,
        "rewards/accuracy/video_accuracy/gun_control": 1.0,
        "rewards/accuracy/video_accuracy/minimum_wage": 0.0,
        "rewards/accuracy/abstain_rate": 0.0,
        # The signal statistics (tests/test_reward_signal.py): values [1, 1, 0, 0], one group (no prompts).
        "rewards/accuracy/p10": 0.0, "rewards/accuracy/median": 0.5, "rewards/accuracy/p90": 1.0,
        "rewards/accuracy/constant_groups": 0.0,
    }
    _, second = trl_call(funcs[1], completions, **columns)
    assert not any(k.startswith("rewards/corr/") for k in second)
    _, third = trl_call(funcs[2], completions, **columns)
    # accuracy [1,1,0,0], format [1,0,0,0], scripted [0,1,2,3]
    assert third["rewards/corr/accuracy/format"] == pytest.approx(pearson([(1, 1), (1, 0), (0, 0), (0, 0)]))
    assert third["rewards/corr/accuracy/scripted"] == pytest.approx(-0.894427, abs=1e-6)
    assert third["rewards/corr/format/scripted"] == pytest.approx(-0.774597, abs=1e-6)
    # mean and std are TRL's own metrics; they are kept for non-TRL callers but not logged twice.
    assert not any(k.endswith(("/mean", "/std")) for k in third)
    latest = funcs[0].diagnostics.latest
    assert latest["rewards/scripted/mean"] == 1.5
    assert latest["rewards/scripted/std"] == pytest.approx(math.sqrt(1.25))


def test_a_new_batch_discards_an_unfinished_one() -> None:
    diagnostics = RewardDiagnostics(["a", "b"])
    logged: dict[str, float] = {}
    first, second = ["x", "y", "z"], ["x", "y", "z"]
    diagnostics.report("a", first, [1.0, 2.0, 3.0], logged.__setitem__)
    diagnostics.report("b", second, [3.0, 2.0, 1.0], logged.__setitem__)  # another batch: no pair yet
    assert "rewards/corr/a/b" not in logged
    diagnostics.report("a", second, [1.0, 2.0, 4.0], logged.__setitem__)
    assert logged["rewards/corr/a/b"] == pytest.approx(pearson([(1, 3), (2, 2), (4, 1)]))


def test_correlation_skips_abstentions_and_constant_rewards() -> None:
    diagnostics = RewardDiagnostics(["a", "b", "c"])
    logged: dict[str, float] = {}
    batch = ["p", "q", "r", "s"]
    diagnostics.report("a", batch, [1.0, None, 3.0, 2.0], logged.__setitem__)
    diagnostics.report("b", batch, [2.0, 9.0, 6.0, None], logged.__setitem__)
    diagnostics.report("c", batch, [0.1, 0.1, 0.1, 0.1], logged.__setitem__)
    assert logged["rewards/corr/a/b"] == pytest.approx(1.0)  # rows 0 and 2 only
    assert "rewards/corr/a/c" not in logged and "rewards/corr/b/c" not in logged
    assert logged["rewards/a/abstain_rate"] == 0.25


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(finite, finite), max_size=20))
def test_pearson_is_bounded_or_undefined(pairs: list[tuple[float, float]]) -> None:
    r = pearson(pairs)
    assert r is None or -1.0 <= r <= 1.0


def test_wrappers_are_named_picklable_callables(plugins, tmp_path) -> None:
    import pickle

    funcs, _ = build_reward_functions(
        [entry(plugins, "accuracy"), entry(plugins, "format")], fault_dir=tmp_path
    )
    copy = pickle.loads(pickle.dumps(funcs[0]))
    assert copy.__name__ == "accuracy" and trl_call(copy, [GOOD])[0] == [1.0]
    assert "accuracy" in repr(funcs[0])


@pytest.mark.slow  # importing TRL's helpers takes seconds
def test_trl_names_the_wrappers_after_their_rewards_and_calls_them_synchronously(plugins) -> None:
    trl_utils = pytest.importorskip("trl.trainer.utils")
    funcs, _ = build_reward_functions([entry(plugins, "accuracy"), entry(plugins, "format")])
    assert [trl_utils.get_callable_name(f) for f in funcs] == ["accuracy", "format"]
    assert not any(trl_utils.is_async_callable(f) for f in funcs)
