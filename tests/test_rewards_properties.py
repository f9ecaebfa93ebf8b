"""Property-based tests: every built-in reward on adversarial completions a model (or a bug) can produce.

Empty, huge, unicode, nested or repeated tags, numbers out of range or with signs, chat-message lists and
None. Each reward must return one finite float (or None) per completion, inside its documented range,
and score a chat-message list exactly like the same text as a string.
"""

from __future__ import annotations

import math
import re

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from grail_rl.rewards.accuracy import AccuracyReward
from grail_rl.rewards.format import FormatReward
from grail_rl.rewards.length import CosineLengthReward
from grail_rl.rewards.overlong import SoftOverlongReward
from grail_rl.rewards.repetition import RepetitionReward
from grail_rl.rewards.tag_count import TagCountReward

TAGS = ["<think>", "</think>", "<answer>", "</answer>", "<opinion>", "</opinion>", "\n", " ", "option "]
LABELS = ["increase", "decrease", "no_change", "up", "down", "same", "maybe", ""]
piece = st.one_of(
    st.sampled_from(TAGS),
    st.sampled_from(LABELS),
    st.integers(-(10**15), 10**15).map(str),
    st.sampled_from(["+", "-", ".", "٣", "３", "\u200b", "\ud800", "🙂", "\x00", "ſ", "K"]),
    st.text(max_size=12),
)
text = st.lists(piece, max_size=40).map("".join)
huge = st.builds(
    lambda s, k: s * k, st.sampled_from(["<answer>", "a b ", "<think>\n", "9", " "]), st.integers(1, 20_000)
)
completion = st.one_of(
    text,
    huge,
    text.map(lambda t: [{"role": "assistant", "content": t}]),
    st.none(),
    st.just([]),
    text.map(lambda t: [{"role": "assistant", "content": [{"type": "text", "text": t}]}]),
)


@st.composite
def batches(draw):
    completions = draw(st.lists(completion, min_size=0, max_size=8))
    n = len(completions)
    row = st.fixed_dictionaries(
        {
            "gold_index": st.one_of(st.integers(-2, 12), st.none()),
            "n_options": st.one_of(st.integers(0, 8), st.none()),
            "issue": st.sampled_from(["gun_control", "minimum_wage", ""]),
            "opinion_direction": st.sampled_from(["increase", "decrease", "no_change", None, "", "junk"]),
            "length": st.integers(0, 2000),
        }
    )
    rows = draw(st.lists(row, min_size=n, max_size=n))
    columns = {
        key: [r[key] for r in rows] for key in ("gold_index", "n_options", "issue", "opinion_direction")
    }
    columns["completion_ids"] = [[0] * r["length"] for r in rows]
    return completions, columns


# (reward, lowest, highest, may abstain)
REWARDS = [
    (AccuracyReward(), 0.0, 1.0, True),
    (AccuracyReward(AccuracyReward.Config(allow_bare_numbers=True, opinion_share=0.3)), 0.0, 1.0, True),
    (AccuracyReward(AccuracyReward.Config(require_tags=True)), 0.0, 1.0, True),
    (FormatReward(), 0.0, 1.0, False),
    (FormatReward(FormatReward.Config(opinion="required")), 0.0, 1.0, False),
    (TagCountReward(), 0.0, 1.0, False),
    (TagCountReward(TagCountReward.Config(opinion=True)), 0.0, 1.0, False),
    (SoftOverlongReward(), -1.0, 0.0, False),
    (CosineLengthReward(), -1.0, 1.0, True),
    (RepetitionReward(), -1.0, 0.0, False),
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(batches())
def test_every_reward_scores_every_row_within_its_range(batch) -> None:
    completions, columns = batch
    for reward, low, high, may_abstain in REWARDS:
        values = reward(completions, **columns, log_metric=lambda name, value: None)
        assert len(values) == len(completions), reward.name
        for value in values:
            if value is None:
                assert may_abstain, reward.name
                continue
            assert type(value) is float and math.isfinite(value), (reward.name, value)
            assert low <= value <= high, (reward.name, value)


@settings(max_examples=100, deadline=None)
@given(st.lists(text, min_size=1, max_size=6), st.data())
def test_message_lists_score_like_plain_strings(texts, data) -> None:
    n = len(texts)
    columns = {
        "gold_index": data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)),
        "n_options": [5] * n,
        "opinion_direction": data.draw(st.lists(st.sampled_from(["increase", None]), min_size=n, max_size=n)),
        "completion_ids": [[0] * len(t) for t in texts],
    }
    messages = [[{"role": "assistant", "content": t}] for t in texts]
    for reward, *_ in REWARDS:
        assert reward(messages, **columns) == reward(texts, **columns), reward.name


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), text)
def test_accuracy_is_one_exactly_for_the_gold_in_range(pick: int, gold: int, reasoning: str) -> None:
    reasoning = reasoning.replace("<", "(")  # keep the reasoning free of tags
    completion = f"<think>{reasoning}</think><answer>{pick}</answer>"
    n_options = 5
    [value] = AccuracyReward()([completion], gold_index=[gold], n_options=[n_options])
    assert value == float(pick == gold and gold <= n_options)
    [formatted] = FormatReward()([completion])
    assert formatted == 1.0


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 4000))
def test_soft_overlong_never_rewards_a_longer_completion_more(a: int, b: int) -> None:
    short, long = sorted((a, b))
    values = SoftOverlongReward()(["x", "x"], completion_ids=[[0] * short, [0] * long])
    assert values[0] >= values[1]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2000))
def test_cosine_length_always_prefers_right_over_wrong(length: int) -> None:
    right, wrong = CosineLengthReward()(
        ["<answer>1</answer>", "<answer>2</answer>"], completion_ids=[[0] * length] * 2, gold_index=[1, 1]
    )
    assert right > wrong


# The format rule as one plain pattern: slow, but obviously the documented rule.
FORMAT_REFERENCE = re.compile(
    r"\s*<think>(.*?)</think>\s*<answer>\s*\d{1,9}\s*</answer>\s*"
    r"(?:<opinion>\s*(increase|decrease|no_change)\s*</opinion>\s*)?",
    re.DOTALL | re.ASCII,
)
TAG_IN_BODY = re.compile(r"</?(?:think|answer|opinion)\s*>", re.IGNORECASE | re.ASCII)
format_piece = st.one_of(
    st.sampled_from(TAGS + ["</THINK>", "<Answer>", "</think >", "3", "12", "3.", "<opinion>up</opinion>"]),
    st.sampled_from(["increase", "no_change", "<", ">", "\t", "\u00a0"]),
    st.text(max_size=6),
)
format_text = st.lists(format_piece, max_size=25).map("".join)
whitespace = st.sampled_from(["", " ", "\n", "\n\n", "\t"])
# Mostly well-formed completions, each part possibly swapped for junk: finds the edges of the rule.
near_valid = st.builds(
    "".join,
    st.tuples(
        whitespace,
        st.sampled_from(["<think>", "<think>", "<THINK>", ""]),
        st.one_of(st.just("Option 2 fits."), format_text),
        st.sampled_from(["</think>", "</think>", "</think >"]),
        whitespace,
        st.sampled_from(["<answer>", "<answer>", "<answer>\n"]),
        st.sampled_from(["2", " 3 ", "007", "1234567890", "-1", "2.", "option 2"]),
        st.sampled_from(["</answer>", "</answer>", "</answer>\n"]),
        st.sampled_from(
            ["", "", "<opinion>increase</opinion>", "<opinion> no_change </opinion>", "<opinion>up</opinion>"]
        ),
        st.one_of(whitespace, format_text),
    ),
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(format_text, near_valid))
def test_format_matches_the_one_pattern_reference(text: str) -> None:
    match = FORMAT_REFERENCE.fullmatch(text)
    ok = match is not None and TAG_IN_BODY.search(match[1]) is None
    expected = {
        "optional": float(ok),
        "required": float(ok and match[2] is not None),
        "forbidden": float(ok and match[2] is None),
    }
    event("valid" if ok else "invalid")
    for mode, value in expected.items():
        assert FormatReward(FormatReward.Config(opinion=mode))([text]) == [value], mode
