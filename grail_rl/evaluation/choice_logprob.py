"""The ``choice-logprob`` scoring mode: the model's probability of each option, from forward passes only.

For each row the prompt is rendered with the chat template (generation prompt included) and followed by a
fixed answer prefix, :data:`ANSWER_PREFIX`::

    <think>
    </think>
    <answer>

then the log-probability of each option number ``1..n_options`` as the next tokens is read off the model
and normalised over the options: the model's full predictive distribution over the slate. When every option
number is one token (digits are, in the tokenizers we use) that is **one forward pass per row**; otherwise
one per option. Nothing is sampled and nothing is generated.

What the forced prefix means: the model answers with an **empty** ``<think>`` block. A model trained to
reason first is asked to answer without its reasoning, so this measures its immediate preference, which can
differ from what it would answer after thinking (``generate`` mode measures that). The predicted option is the
most probable one; the format and parsed rates do not apply (the format is forced).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

ANSWER_PREFIX = "<think>\n</think>\n<answer>\n"


def _render(tokenizer: Any, prompt: Any, chat_template_kwargs: dict[str, Any] | None) -> str:
    if isinstance(prompt, str):
        return prompt + ANSWER_PREFIX
    text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {}))
    return text + ANSWER_PREFIX


def option_probabilities(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    n_options: Sequence[int],
    *,
    batch_size: int = 8,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> list[list[float]]:
    """P(option k) for k = 1..n_options of each row, normalised over the options, in row order."""
    import torch

    option_ids = {k: tokenizer(str(k), add_special_tokens=False)["input_ids"] for k in range(1, max(n_options, default=0) + 1)}
    single = all(len(ids) == 1 for ids in option_ids.values())
    was_training = model.training
    side = tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    out: list[list[float]] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                texts = [_render(tokenizer, p, chat_template_kwargs) for p in prompts[start : start + batch_size]]
                sizes = n_options[start : start + batch_size]
                if single:
                    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
                    last = torch.log_softmax(model(**enc).logits[:, -1, :].float(), dim=-1)
                    for row, size in enumerate(sizes):
                        out.append(_normalise([float(last[row, option_ids[k][0]]) for k in range(1, size + 1)]))
                else:  # an option number of several tokens: score each continuation with its own pass
                    for text, size in zip(texts, sizes, strict=True):
                        out.append(_normalise([_continuation_logprob(model, tokenizer, text, option_ids[k])
                                               for k in range(1, size + 1)]))  # fmt: skip
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def _continuation_logprob(model: Any, tokenizer: Any, text: str, ids: list[int]) -> float:
    import torch

    context = tokenizer(text, add_special_tokens=False)["input_ids"]
    full = torch.tensor([context + ids], device=model.device)
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(input_ids=full).logits[0].float(), dim=-1)
    return float(sum(logprobs[len(context) - 1 + i, token] for i, token in enumerate(ids)))


def _normalise(logprobs: list[float]) -> list[float]:
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def calibration(preds: Sequence[Any], bins: int = 10) -> dict[str, Any]:
    """Of rows with a distribution: the mean log-likelihood of the viewers' choices, the (multi-class) Brier
    score and the expected calibration error of the top choice over ``bins`` equal-width confidence bins."""
    rows = [p for p in preds if getattr(p, "probabilities", None)]
    if not rows:
        return {"n": 0}
    n = len(rows)
    loglik = sum(math.log(max(p.probabilities[p.gold_index - 1], 1e-12)) for p in rows) / n
    brier = sum(
        sum((q - (1.0 if k == p.gold_index else 0.0)) ** 2 for k, q in enumerate(p.probabilities, 1)) for p in rows
    ) / n
    binned: dict[int, list[tuple[float, bool]]] = {}
    for p in rows:
        confidence = max(p.probabilities)
        binned.setdefault(min(int(confidence * bins), bins - 1), []).append((confidence, p.correct))
    ece = sum(
        len(items) / n * abs(sum(c for c, _ in items) / len(items) - sum(ok for _, ok in items) / len(items))
        for items in binned.values()
    )
    uniform = sum(math.log(1 / p.n_options) for p in rows) / n
    # The reliability diagram's points: per non-empty bin, its rows, mean confidence and accuracy.
    reliability = [
        {"bin": [b / bins, (b + 1) / bins], "rows": len(items), "confidence": sum(c for c, _ in items) / len(items),
         "accuracy": sum(ok for _, ok in items) / len(items)}
        for b, items in sorted(binned.items())
    ]  # fmt: skip
    return {"n": n, "log_likelihood": loglik, "uniform_log_likelihood": uniform, "brier": brier, "ece": ece,
            "bins": bins, "reliability": reliability}  # fmt: skip
