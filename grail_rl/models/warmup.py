"""A short supervised warm-up that teaches the demo's tiny model the answer FORMAT, never the answer.

From random weights the tiny model does not write one parseable ``<answer>`` in a few dozen GRPO steps,
so every reward is 0, every group has zero variance and GRPO has nothing to learn from. Before GRPO,
:func:`warm_up` therefore trains it briefly on prompts of the synthetic TRAIN split with the target
``<think>…</think><answer>k</answer>`` (a shape the format reward accepts) where ``k`` is drawn uniformly
from ``1..n_options`` and is NOT the gold option: the warm-up teaches the shape of a reply, its answer
numbers carry no information about the gold, and which option to choose is left entirely to GRPO.

The loss covers only the target tokens (the prompt is context), and logits are computed only for the last
positions of each left-padded batch, which keeps a step on ~1,200-token prompts cheap on a CPU.
:func:`ensure_format_warmed` builds the tiny model, warms it up and publishes the folder atomically with a
marker (:data:`WARMUP_MARKER`) that records exactly what was done, so the run summary can say so.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grail_rl.models.tiny import TinySpec, build_atomically, build_tiny_model, is_built

WARMUP_MARKER = "grail_format_warmup.json"

# Short, content-free reasoning bodies: the think block must be present and non-empty to look like the
# requested shape, but nothing in it may hint at an option. The reply is written without newlines and these
# bodies share no token in a different order, so each reply token determines the set of valid next tokens;
# a 2-layer model learns such a reply in a few dozen steps, while the newline-separated shape (six "\n"
# with different successors) needs attention over the reply and took ~3x as many steps here.
_THOUGHTS = ("the viewer", "the options", "the recommendation", "the viewer watches")

# Row source: given the tokenizer, (chat-message prompts, n_options) of the synthetic TRAIN split.
TrainRows = Callable[[Any], tuple[Sequence[Any], Sequence[int]]]


@dataclass(frozen=True)
class WarmupSpec:
    """How the format warm-up trains; stored in the marker so a changed spec rebuilds the cached model."""

    steps: int = 30
    batch_size: int = 8
    learning_rate: float = 5.0e-3
    held_out: int = 16  # train prompts kept out of the warm-up to measure the parse rate afterwards
    max_new_tokens: int = 24
    seed: int = 0
    version: int = 1


def format_target(rng: random.Random, n_options: int) -> str:
    """The reply shape the system prompt asks for, with a uniformly random (not the gold) option number."""
    return f"<think>{rng.choice(_THOUGHTS)}</think><answer>{rng.randint(1, n_options)}</answer>"


def _prompt_ids(tokenizer: Any, messages: Any) -> list[int]:
    # Rendered as text then encoded, exactly as the chat template would present the prompt to generate().
    if isinstance(messages, str):
        text = messages
    else:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer.encode(text, add_special_tokens=False)


def _batch(tokenizer: Any, prompts: list[list[int]], targets: list[list[int]]):
    """Left-padded inputs, attention mask, position ids and the target labels of the last ``keep`` tokens."""
    import torch

    seqs = [p + t for p, t in zip(prompts, targets, strict=True)]
    width = max(map(len, seqs))
    keep = max(map(len, targets))  # every target lies in the last ``keep`` positions (left padding)
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), keep), -100, dtype=torch.long)
    for row, (seq, target) in enumerate(zip(seqs, targets, strict=True)):
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
        labels[row, keep - len(target) :] = torch.tensor(target)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions, labels, keep


def warm_up(
    model: Any, tokenizer: Any, prompts: Sequence[Any], n_options: Sequence[int], spec: WarmupSpec
) -> dict[str, Any]:
    """Train ``model`` in place on random-answer format targets; return what was done and measured."""
    import torch

    if len(prompts) <= spec.held_out:
        raise ValueError(f"the format warm-up needs more than {spec.held_out} training prompts")
    rng = random.Random(spec.seed)
    torch.manual_seed(spec.seed)
    order = list(range(len(prompts)))
    rng.shuffle(order)
    held, pool = order[: spec.held_out], order[spec.held_out :]
    eos = [tokenizer.eos_token_id]
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.0)
    model.train()
    started, losses, seen = time.perf_counter(), [], set()
    for step in range(spec.steps):
        rows = [pool[(step * spec.batch_size + i) % len(pool)] for i in range(spec.batch_size)]
        seen.update(rows)
        targets = [
            tokenizer.encode(format_target(rng, n_options[r]), add_special_tokens=False) + eos for r in rows
        ]
        prompt_ids = [_prompt_ids(tokenizer, prompts[r]) for r in rows]
        ids, mask, positions, labels, keep = _batch(tokenizer, prompt_ids, targets)
        # keep + 1 logits: the one at the last prompt token predicts the first target token.
        logits = model(
            input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep + 1
        ).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.detach().item())
    model.eval()
    parsed, in_range = held_out_parse_rate(
        model, tokenizer, [prompts[i] for i in held], [n_options[i] for i in held], spec.max_new_tokens
    )
    tail = losses[-max(len(losses) // 5, 1) :]
    return {
        "spec": asdict(spec),
        "what": "supervised format warm-up: <think>...</think><answer>k</answer> with k uniform in "
        "1..n_options (not the gold), synthetic TRAIN prompts only, loss on the reply tokens only",
        "train_prompts_used": len(seen),
        "first_loss": round(losses[0], 4) if losses else None,
        "final_loss": round(sum(tail) / len(tail), 4) if tail else None,
        "held_out_prompts": len(held),
        "held_out_parsed_rate": parsed,
        "held_out_in_range_rate": in_range,
        "seconds": round(time.perf_counter() - started, 1),
    }


def greedy_replies(model: Any, tokenizer: Any, prompts: Sequence[Any], max_new_tokens: int) -> list[str]:
    """Greedy completions for chat prompts (left-padded batch), decoded without special tokens."""
    import torch

    encoded = [_prompt_ids(tokenizer, p) for p in prompts]
    width = max(map(len, encoded))
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded])
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=pad, eos_token_id=tokenizer.eos_token_id,
        )  # fmt: skip
    return tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)


def held_out_parse_rate(
    model: Any, tokenizer: Any, prompts: Sequence[Any], n_options: Sequence[int], max_new_tokens: int
) -> tuple[float, float]:
    """(share with a parseable answer, share whose answer is within 1..n_options) under greedy decoding."""
    from grail_rl.rewards.parser import parse_answer

    if not prompts:
        return 0.0, 0.0
    answers = [parse_answer(r) for r in greedy_replies(model, tokenizer, prompts, max_new_tokens)]
    parsed = sum(a is not None for a in answers) / len(answers)
    in_range = sum(a is not None and 1 <= a <= n for a, n in zip(answers, n_options, strict=True))
    return round(parsed, 4), round(in_range / len(answers), 4)


def read_warmup(path: str | Path) -> dict[str, Any] | None:
    """The warm-up record of a model folder, or None when the model was not format-warmed."""
    marker = Path(path) / WARMUP_MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_warmed(path: str | Path, spec: WarmupSpec | None = None, tiny: TinySpec | None = None) -> bool:
    record = read_warmup(path)
    return is_built(path, tiny) and record is not None and record.get("spec") == asdict(spec or WarmupSpec())


def ensure_format_warmed(
    path: str | Path, train_rows: TrainRows, spec: WarmupSpec | None = None, tiny: TinySpec | None = None
) -> Path:
    """``path`` holding the tiny model after the format warm-up, built and warmed first unless it already is.

    ``train_rows(tokenizer)`` supplies the synthetic TRAIN split's prompts and option counts; it is only
    called when a build is needed.
    """
    spec = spec or WarmupSpec()

    def build(staging: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        build_tiny_model(staging, tiny)
        tokenizer = AutoTokenizer.from_pretrained(staging)
        model = AutoModelForCausalLM.from_pretrained(staging, dtype="float32")
        prompts, n_options = train_rows(tokenizer)
        record = warm_up(model, tokenizer, prompts, n_options, spec)
        model.save_pretrained(staging)
        (staging / WARMUP_MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    return build_atomically(Path(path), build, lambda: is_warmed(path, spec, tiny))
