"""Experiment trackers named in ``logging.report_to``: checked before anything heavy is loaded.

transformers builds a tracker's callback only when the trainer is created, after the model and data are
loaded, and a missing package then fails with a long traceback (or, for ``"all"``, is silently skipped).
A run that asked for a tracker and would not get one is refused up front instead, naming the extra to
install. Where each tracker writes is listed in docs/training.md.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from grail_rl.errors import GrailError

# tracker -> modules that provide it (any one is enough), mirroring transformers' availability checks.
TRACKER_MODULES: dict[str, tuple[str, ...]] = {
    "wandb": ("wandb",),
    "tensorboard": ("tensorboard", "tensorboardX"),
    "trackio": ("trackio",),
}


def missing_trackers(report_to: Iterable[str]) -> list[str]:
    """The trackers in ``report_to`` whose package is not importable here (without importing it)."""
    return [
        name
        for name in report_to
        if name in TRACKER_MODULES
        and not any(importlib.util.find_spec(module) is not None for module in TRACKER_MODULES[name])
    ]


def check_trackers(report_to: Iterable[str]) -> None:
    """Raise a one-line :class:`GrailError` when a requested tracker is not installed."""
    missing = missing_trackers(report_to)
    if missing:
        extras = ",".join(missing)
        raise GrailError(
            f"logging.report_to: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed; "
            f"pip install 'grail-rl[{extras}]' or remove {'it' if len(missing) == 1 else 'them'} from "
            "logging.report_to"
        )
