"""Run a model over an evaluation split: greedy answers, parsed with the rewards' answer parser.

Evaluation never trains: the model is put in eval mode under ``torch.inference_mode`` (no gradients, no
optimizer) and its previous mode is restored afterwards. An interrupted evaluation is written as a
partial report (``eval-NAME.partial.json``) and the error is raised again, never reported as complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grail_rl.evaluation.baselines import FitRows
from grail_rl.evaluation.metrics import Prediction
from grail_rl.evaluation.predictions import prompt_hash
from grail_rl.evaluation.report import EvalReport, build_report
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
        prompt_hash=prompt_hash(row["prompt"]) if "prompt" in row else None,
        opinion_gold=normalise_opinion_label(row.get("opinion_direction")),
        **answer,
    )


def prediction_for(row: dict[str, Any], text: str, allow_bare_numbers: bool) -> Prediction:
    """The :class:`Prediction` of the model output ``text`` on ``row``, read by the shared answer parser."""
    return row_prediction(
        row,
        parse_answer_text(text, allow_bare_numbers=allow_bare_numbers),
        formatted=answer_follows_think(text),
        output=text,
        opinion_pick=parse_opinion_text(text),
    )


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    chat_template_kwargs: dict[str, Any] | None = None,
    on_batch: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Greedy completions for ``prompts`` (chat message lists or plain strings), in order."""
    import torch

    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    texts: list[str] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                batch = prompts[start : start + batch_size]
                rendered = [
                    p
                    if isinstance(p, str)
                    else tokenizer.apply_chat_template(
                        p, tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {})
                    )
                    for p in batch
                ]
                enc = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
                enc = {k: v.to(model.device) for k, v in enc.items()}
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
                new = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                texts.extend(new)
                if on_batch is not None:
                    on_batch(new)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return texts


def evaluate_model(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    *,
    name: str,
    out_dir: Path | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    allow_bare_numbers: bool = False,
    train_rows: FitRows | None = None,
    synthetic_ceiling: float | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    other_data: bool = False,
    discriminator: tuple[Any, str] | None = None,
    mode: str = "generate",
) -> EvalReport:
    """Evaluate ``model`` on every row of ``dataset`` (columns prompt, gold_index, n_options, ...);
    ``meta`` (e.g. which model and data) is recorded in the report beside the decoding settings;
    ``discriminator`` (a frozen runtime and where it came from) adds the Turing AUC of a complete run;
    ``mode``: ``generate`` (greedy answers) or ``choice-logprob`` (each option's probability, see
    :mod:`grail_rl.evaluation.choice_logprob`)."""
    rows = [dict(r) for r in dataset]
    predictions: list[Prediction] = []

    def collect(texts: list[str]) -> None:
        for text in texts:
            predictions.append(prediction_for(rows[len(predictions)], text, allow_bare_numbers))

    if mode == "choice-logprob":
        from grail_rl.evaluation.choice_logprob import ANSWER_PREFIX

        meta = {"decoding": "choice-logprob", "answer_prefix": ANSWER_PREFIX, **(meta or {})}
    else:
        meta = {"max_new_tokens": max_new_tokens, "decoding": "greedy", **(meta or {})}

    def report() -> EvalReport:
        return build_report(
            name,
            predictions,
            expected_rows=len(rows),
            train_rows=train_rows,
            synthetic_ceiling=synthetic_ceiling,
            meta=meta,
            other_data=other_data,
        )

    try:
        if mode == "choice-logprob":
            _score_options(model, tokenizer, rows, predictions, batch_size, chat_template_kwargs)
        else:
            generate_answers(
                model,
                tokenizer,
                [r["prompt"] for r in rows],
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                chat_template_kwargs=chat_template_kwargs,
                on_batch=collect,
            )
    except BaseException:
        if out_dir is not None:
            report().write(out_dir)  # marked partial by its row count
        raise
    result = report()
    if discriminator is not None:
        from grail_rl.evaluation.turing import turing_auc

        result.turing = turing_auc(rows, predictions, discriminator[0], source=discriminator[1])
    if out_dir is not None:
        result.write(out_dir)
    return result


def _score_options(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    predictions: list[Prediction],
    batch_size: int,
    chat_template_kwargs: dict[str, Any] | None,
) -> None:
    """choice-logprob: append one Prediction per row (the most probable option, and the distribution), a batch
    at a time, so that an interruption leaves the finished rows for the partial report."""
    from grail_rl.evaluation.choice_logprob import option_probabilities

    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        distributions = option_probabilities(
            model, tokenizer, [r["prompt"] for r in batch], [int(r["n_options"]) for r in batch],
            batch_size=batch_size, chat_template_kwargs=chat_template_kwargs,
        )  # fmt: skip
        for row, probabilities in zip(batch, distributions, strict=True):
            best = 1 + max(range(len(probabilities)), key=probabilities.__getitem__)
            predictions.append(row_prediction(row, best, probabilities=probabilities))
