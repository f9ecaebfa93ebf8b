"""The built-in reward plugins, registered through the same hook a third-party plugin implements.

Listed as ``builtin_rewards`` in :data:`grail_rl.builtin.BUILTIN_PLUGINS`.
The rewards themselves live in :mod:`grail_rl.rewards`; docs/rewards.md describes each one.
"""

from __future__ import annotations

from collections.abc import Callable

from grail_rl.grail.reward import GailReward
from grail_rl.plugins import hookimpl
from grail_rl.rewards.accuracy import AccuracyReward
from grail_rl.rewards.diversity import ChoiceDiversityReward
from grail_rl.rewards.format import FormatReward
from grail_rl.rewards.length import CosineLengthReward
from grail_rl.rewards.llm_judge import LlmJudgeReward
from grail_rl.rewards.overlong import SoftOverlongReward
from grail_rl.rewards.repetition import RepetitionReward
from grail_rl.rewards.tag_count import TagCountReward

BUILTIN_REWARDS: tuple[type, ...] = (
    AccuracyReward,
    FormatReward,
    TagCountReward,
    SoftOverlongReward,
    CosineLengthReward,
    RepetitionReward,
    GailReward,
    ChoiceDiversityReward,
    LlmJudgeReward,
)


@hookimpl
def register_rewards(register: Callable[[type], None]) -> None:
    for reward in BUILTIN_REWARDS:
        register(reward)
