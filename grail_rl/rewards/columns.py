"""Reading the per-row inputs a reward receives: dataset columns, completion texts and token lengths.

TRL passes every dataset column as a list with one entry per completion. Called by hand, a reward may get
a single value for the whole batch instead; :func:`column` accepts both, and rejects a list of the wrong
length, which would silently pair rewards with the wrong rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from grail_rl.rewards.parser import completion_text


def column(
    kwargs: Mapping[str, Any], key: str, n: int, *, reward: str, required: bool = False
) -> list[Any] | None:
    """The column ``key`` as a list of ``n`` values; ``None`` when absent (an error when ``required``)."""
    values = kwargs.get(key)
    if values is None:
        if required:
            raise ValueError(
                f"reward '{reward}' needs the dataset column '{key}', which this batch does not have"
            )
        return None
    # Anything sized that is not text or a mapping is a column (lists from TRL, arrays from a caller).
    if isinstance(values, str | bytes | Mapping) or not hasattr(values, "__len__"):
        return [values] * n
    if len(values) != n:
        raise ValueError(f"reward '{reward}': column '{key}' has {len(values)} values for {n} completions")
    return list(values)


def as_int(value: Any) -> int | None:
    """``value`` as an int when it holds a whole number (int, integral float, digit string); else None."""
    if type(value) is int:
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):  # numpy integers and other int subclasses
        return int(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        stripped = value.strip()
        return int(stripped) if stripped.isascii() and stripped.isdigit() and len(stripped) < 10 else None
    item = getattr(value, "item", None)  # numpy scalars that are not int subclasses
    if callable(item):
        try:
            plain = item()
        except (TypeError, ValueError):
            return None
        if isinstance(plain, int | float):
            return as_int(plain)
    return None


def completion_texts(completions: Sequence[Any]) -> list[str]:
    """Each completion's text (see :func:`grail_rl.rewards.parser.completion_text`)."""
    return [c if type(c) is str else completion_text(c) for c in completions]


def token_lengths(kwargs: Mapping[str, Any], n: int, *, reward: str) -> list[int]:
    """The number of tokens of each completion, from the ``completion_ids`` TRL passes."""
    ids = kwargs.get("completion_ids")
    if ids is None:
        raise ValueError(
            f"reward '{reward}' measures completions in tokens and needs completion_ids (TRL passes them; "
            "pass completion_ids= when calling it yourself)"
        )
    if len(ids) != n:
        raise ValueError(f"reward '{reward}': completion_ids has {len(ids)} entries for {n} completions")
    return [len(row) for row in ids]
