"""The built-in reward plugins: registration, configs and the documented scores of each reward."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from grail_rl.builtin.rewards import BUILTIN_REWARDS
from grail_rl.rewards.accuracy import AccuracyReward
from grail_rl.rewards.format import FormatReward
from grail_rl.rewards.length import CosineLengthReward
from grail_rl.rewards.overlong import SoftOverlongReward
from grail_rl.rewards.repetition import RepetitionReward
from grail_rl.rewards.tag_count import TagCountReward
from grail_rl.testing import check_reward_contract, isolated_plugins

GOOD = "<think>\nOption 2 fits her history.\n</think>\n<answer>\n2\n</answer>"


def build(cls, **options):
    return cls(cls.Config(**options))


def test_builtins_register_through_the_entry_point_hook() -> None:
    plugins = isolated_plugins()
    names = {"accuracy", "format", "tag_count", "soft_overlong", "length", "repetition"}
    assert names <= set(plugins.rewards.names())
    for name in names:
        spec = plugins.rewards.get(name)
        assert spec.source.plugin == "builtin_rewards"
        assert spec.description  # shown by `grail-rl list-rewards`
        assert all(field["description"] for field in spec.config_fields()), name


@pytest.mark.parametrize("cls", BUILTIN_REWARDS, ids=lambda c: c.name)
def test_builtin_rewards_honour_the_reward_contract(cls, tmp_path) -> None:
    if cls.name != "llm_judge":
        check_reward_contract(cls())
        return
    from tests.test_llm_judge import served_judge

    with served_judge(tmp_path) as judge:  # a real server on 127.0.0.1 for the judge
        check_reward_contract(judge)


@pytest.mark.parametrize("cls", BUILTIN_REWARDS, ids=lambda c: c.name)
def test_configs_are_strict(cls) -> None:
    with pytest.raises(ValidationError):
        cls.Config.model_validate({"no_such_option": 1})


def test_importing_the_rewards_imports_no_ml_stack() -> None:
    code = (
        "import sys, grail_rl.rewards, grail_rl.builtin.rewards\n"
        "from grail_rl.plugins import load_plugins; load_plugins()\n"
        "heavy = [m for m in ('torch', 'trl', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- accuracy ---------------------------------------------------------------------------------------


def test_accuracy_video_part() -> None:
    reward = AccuracyReward()
    completions = [GOOD, GOOD, "<answer>5</answer>", "<answer>Option 2</answer>", "2", "<answer>2.</answer>"]
    golds = [2, 3, 5, 2, 2, 2]
    # row 2: equals gold but the slate has 4 options, so the gold itself is out of range -> 0
    assert reward(completions, gold_index=golds, n_options=[4] * 6) == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]


def test_accuracy_without_n_options_only_compares_with_gold() -> None:
    assert AccuracyReward()(["<answer>5</answer>"], gold_index=[5]) == [1.0]


def test_accuracy_abstains_without_a_usable_gold() -> None:
    reward = AccuracyReward()
    assert reward([GOOD, GOOD, GOOD, GOOD], gold_index=[None, 0, "x", "2"], n_options=[4] * 4) == [
        None,
        None,
        None,
        1.0,
    ]
    with pytest.raises(ValueError, match="gold_index"):
        reward([GOOD], n_options=[4])


def test_accuracy_bare_numbers() -> None:
    reward = build(AccuracyReward, allow_bare_numbers=True)
    assert reward(["2", " option 2 ", "2.", GOOD], gold_index=[2] * 4, n_options=[4] * 4) == [
        1.0,
        1.0,
        0.0,
        1.0,
    ]


def test_accuracy_require_tags() -> None:
    reward = build(AccuracyReward, require_tags=True)
    completions = [GOOD, "<answer>2</answer>", "<answer>2</answer><think>late</think>"]
    assert reward(completions, gold_index=[2] * 3, n_options=[4] * 3) == [1.0, 0.0, 0.0]


def test_accuracy_options_that_contradict_are_rejected() -> None:
    with pytest.raises(ValidationError, match="contradict"):
        AccuracyReward.Config(require_tags=True, allow_bare_numbers=True)
    with pytest.raises(ValidationError):
        AccuracyReward.Config(opinion_share=1.0)


def test_accuracy_opinion_part_is_the_mean_of_the_parts_that_exist() -> None:
    reward = AccuracyReward()
    text = GOOD + "\n<opinion>up</opinion>"
    rows = {
        "gold_index": [2, 2, 3, 3, 2, 2],
        "n_options": [4] * 6,
        "opinion_direction": ["increase", "decrease", "increase", "no_change", None, ""],
    }
    assert reward([text] * 6, **rows) == [1.0, 0.5, 0.5, 0.0, 1.0, 1.0]
    assert build(AccuracyReward, opinion_share=0.0)([text] * 6, **rows) == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    weighted = build(AccuracyReward, opinion_share=0.25)([text] * 2, **{k: v[:2] for k, v in rows.items()})
    assert weighted == [1.0, 0.75]


def test_accuracy_logs_parsed_rate_and_accuracy_per_issue() -> None:
    logged: dict[str, float] = {}
    AccuracyReward()(
        [GOOD, "nothing", GOOD + "<opinion>down</opinion>", "<answer>1</answer>"],
        gold_index=[2, 2, 2, 2],
        n_options=[4] * 4,
        issue=["gun_control", "gun_control", "minimum_wage", "minimum_wage"],
        opinion_direction=[None, None, "decrease", "increase"],
        log_metric=logged.__setitem__,
    )
    assert logged == {
        "rewards/accuracy/parsed_rate": 0.75,
        "rewards/accuracy/video_accuracy/gun_control": 0.5,
        "rewards/accuracy/video_accuracy/minimum_wage": 0.5,
        "rewards/accuracy/opinion_accuracy": 0.5,
    }


def test_accuracy_accepts_scalar_columns_and_rejects_misaligned_ones() -> None:
    assert AccuracyReward()([GOOD, GOOD], gold_index=2, n_options=4) == [1.0, 1.0]
    with pytest.raises(ValueError, match="3 values for 2 completions"):
        AccuracyReward()([GOOD, GOOD], gold_index=[2, 2, 2])


# --- format and tag_count ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "optional", "required", "forbidden"),
    [
        (GOOD, 1.0, 0.0, 1.0),
        ("<think></think><answer>3</answer>", 1.0, 0.0, 1.0),
        ("  <think>x</think>\n\n<answer> 3 </answer>\n<opinion>no_change</opinion>\n", 1.0, 1.0, 0.0),
        ("<think>x</think><answer>3</answer><opinion>up</opinion>", 0.0, 0.0, 0.0),  # synonyms are not strict
        ("<think>x</think><answer>3.</answer>", 0.0, 0.0, 0.0),
        ("<think>x</think><answer>Option 3</answer>", 0.0, 0.0, 0.0),
        ("<think>x</think><answer>3</answer> and more", 0.0, 0.0, 0.0),
        ("<think>x</think><answer>3</answer><think>y</think><answer>3</answer>", 0.0, 0.0, 0.0),
        ("<think>a <answer>1</answer> b</think><answer>3</answer>", 0.0, 0.0, 0.0),
        ("<think>a</think>b</think><answer>3</answer>", 0.0, 0.0, 0.0),
        ("<THINK>x</THINK><ANSWER>3</ANSWER>", 0.0, 0.0, 0.0),
        ("<answer>3</answer>", 0.0, 0.0, 0.0),
        ("", 0.0, 0.0, 0.0),
    ],
)
def test_format_is_strict(text: str, optional: float, required: float, forbidden: float) -> None:
    for mode, expected in (("optional", optional), ("required", required), ("forbidden", forbidden)):
        assert build(FormatReward, opinion=mode)([text]) == [expected], mode


def test_tag_count_gives_a_quarter_per_marker_seen_exactly_once() -> None:
    reward = TagCountReward()
    assert reward([GOOD]) == [1.0]
    assert reward(["<think>\nx\n</think>\n"]) == [0.5]
    assert reward([GOOD + GOOD]) == [0.0]
    assert reward([""]) == [0.0]
    with_opinion = build(TagCountReward, opinion=True)([GOOD + "<opinion>up</opinion>", GOOD])
    assert with_opinion == [1.0, 4 / 6]


# --- soft_overlong, length, repetition --------------------------------------------------------------


def test_soft_overlong_follows_dapo() -> None:
    reward = build(SoftOverlongReward, max_completion_length=10, buffer_length=4)
    ids = [[0] * n for n in (0, 6, 7, 8, 10, 11)]
    assert reward(["x"] * 6, completion_ids=ids) == [0.0, 0.0, -0.25, -0.5, -1.0, -1.0]
    with pytest.raises(ValueError, match="completion_ids"):
        reward(["x"])
    with pytest.raises(ValidationError):
        SoftOverlongReward.Config(max_completion_length=4, buffer_length=5)


def test_cosine_length_rewards_short_right_and_long_wrong_answers() -> None:
    reward = build(CosineLengthReward, max_length=100)
    wrong = "<answer>1</answer>"
    ids = [[0] * n for n in (0, 50, 100, 0, 50, 200)]
    values = reward([GOOD] * 3 + [wrong] * 3, completion_ids=ids, gold_index=[2] * 6, n_options=[4] * 6)
    assert values == pytest.approx([1.0, 0.75, 0.5, -1.0, -0.75, -0.5])
    assert reward([GOOD], completion_ids=[[1]], gold_index=[None]) == [None]
    with pytest.raises(ValidationError, match="wrong_min"):
        CosineLengthReward.Config(correct_min=-2.0)


def test_repetition_penalty() -> None:
    reward = RepetitionReward()
    values = reward(["a b c d e", "a b c a b c a b c", "one two", ""])
    assert values[0] == 0.0
    assert values[1] == pytest.approx(-(1 - 3 / 7))
    assert values[2:] == [0.0, 0.0]
    assert build(RepetitionReward, ngram_size=1, max_penalty=-0.5)(["x x x x"]) == [pytest.approx(-0.375)]


@pytest.mark.parametrize("cls", BUILTIN_REWARDS, ids=lambda c: c.name)
def test_rewards_are_named_for_trl(cls) -> None:
    needed = {"endpoint": "http://127.0.0.1:9/v1", "model": "m"} if cls.name == "llm_judge" else {}
    reward = cls(cls.Config(**needed))
    assert reward.__name__ == cls.name
    assert cls.summary()


@pytest.mark.parametrize("module", ["grail_rl.builtin.rewards", "grail_rl.grail.reward", "grail_rl.grail.settings",
                                    "grail_rl.rewards.llm_judge", "grail_rl.serving.generate"])  # fmt: skip
def test_each_entry_module_imports_first_in_a_fresh_interpreter(module) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
