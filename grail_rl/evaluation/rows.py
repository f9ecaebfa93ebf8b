"""A :class:`~grail_rl.evaluation.metrics.Prediction` from an evaluated row and the model's answer.

The labels (gold, slate size, issue, study, opinion direction, prompt hash) come from the row; the answer
from the model's text, read by the rewards' shared answer parser, or from its option distribution. Every
scoring path (a model, stored outputs, a progress log) builds its predictions here. No torch.
"""

from __future__ import annotations

from typing import Any

from grail_rl.evaluation.metrics import Prediction
from grail_rl.evaluation.predictions import prompt_hash
from grail_rl.rewards.parser import (
    answer_follows_think,
    normalise_opinion_label,
    parse_answer_text,
    parse_opinion_text,
)


def row_prediction(row: dict[str, Any], parsed_index: int | None, **answer: Any) -> Prediction:
    """The :class:`Prediction` for ``row``: its labels from the row, the model's answer from ``answer``."""
    return Prediction(
        gold_index=int(row["gold_index"]),
        n_options=int(row["n_options"]),
        parsed_index=parsed_index,
        issue=row.get("issue"),
        participant_study=row.get("participant_study"),
        participant_id=None if row.get("participant_id") in (None, "") else str(row["participant_id"]),
        prompt_hash=prompt_hash(row["prompt"]) if "prompt" in row else None,
        opinion_gold=normalise_opinion_label(row.get("opinion_direction")),
        **answer,
    )


def prediction_for(row: dict[str, Any], text: str, allow_bare_numbers: bool, row_id: int | None = None) -> Prediction:
    """The :class:`Prediction` of the model output ``text`` on ``row``, read by the shared answer parser."""
    return row_prediction(
        row,
        parse_answer_text(text, allow_bare_numbers=allow_bare_numbers),
        formatted=answer_follows_think(text),
        output=text,
        opinion_pick=parse_opinion_text(text),
        row_id=row_id,
    )
