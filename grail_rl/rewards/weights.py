"""Reward weights: the recipe's weights, clipped at 0 and normalised to sum to 1.

TRL sums ``weight * reward`` over the reward functions, so normalising keeps the total reward on the
scale of the individual rewards whatever numbers the recipe uses (weights 1 and 0.5 become 2/3 and 1/3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from grail_rl.errors import GrailError


class RewardWeightError(GrailError, ValueError):
    """The reward weights cannot be used: wrong count, not finite, or all zero."""


def normalise_weights(weights: Sequence[float], expected: int | None = None) -> list[float]:
    """Clip ``weights`` at 0 and scale them to sum to 1.

    :param expected: the number of reward functions; a different number of weights is an error.
    :raises RewardWeightError: on a length mismatch, a weight that is not a finite number, or when every
        weight is 0 (or below) so there is nothing to normalise.
    """
    values = list(weights)
    if expected is not None and len(values) != expected:
        raise RewardWeightError(f"got {len(values)} reward weights for {expected} reward functions")
    if not values:
        raise RewardWeightError("no reward weights given: a recipe needs at least one reward")
    for i, weight in enumerate(values):
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise RewardWeightError(f"reward weight #{i + 1} must be a finite number, got {weight!r}")
    clipped = [max(0.0, float(w)) for w in values]
    top = max(clipped)
    if top <= 0.0:
        raise RewardWeightError(
            f"all reward weights are 0 after clipping negatives to 0 ({values}): nothing would be learned"
        )
    scaled = [w / top for w in clipped]  # the sum of huge weights (1e308 twice) would overflow; ratios do not
    total = math.fsum(scaled)
    return [w / total for w in scaled]
