"""Rewards: the answer parser, the built-in reward plugins, weights, fault handling and diagnostics.

- :mod:`~grail_rl.rewards.parser`: the one parser for answers and opinions.
- :mod:`~grail_rl.rewards.accuracy`, ``format``, ``tag_count``, ``overlong``, ``length``, ``repetition``:
  the built-in reward plugins (registered by :mod:`grail_rl.builtin.rewards`).
- :mod:`~grail_rl.rewards.weights`: clipping and normalising the recipe's weights.
- :mod:`~grail_rl.rewards.runtime`: wrapping plugins into the callables TRL receives.
- :mod:`~grail_rl.rewards.faults` and :mod:`~grail_rl.rewards.diagnostics`: what happens when a reward
  misbehaves, and the metrics logged for every batch.

Nothing in this package imports torch, trl or transformers.
"""

from grail_rl.rewards.diagnostics import RewardDiagnostics
from grail_rl.rewards.faults import RewardFault
from grail_rl.rewards.parser import completion_text, normalise_opinion_label, parse_answer, parse_opinion
from grail_rl.rewards.runtime import GuardedReward, build_reward_functions
from grail_rl.rewards.weights import RewardWeightError, normalise_weights

__all__ = [
    "GuardedReward",
    "RewardDiagnostics",
    "RewardFault",
    "RewardWeightError",
    "build_reward_functions",
    "completion_text",
    "normalise_opinion_label",
    "normalise_weights",
    "parse_answer",
    "parse_opinion",
]
