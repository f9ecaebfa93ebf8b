"""The generation interface evaluation runs on: ``generate(list of chat messages) -> list of str``.

Anything that answers prompts can be evaluated the same way, parsed by the same parser and reported with
the same metrics (:mod:`grail_rl.evaluation.runner`):

- :class:`TransformersGenerator`: a loaded transformers model, batched greedy decoding (left padding). It
  also scores options (:meth:`TransformersGenerator.option_probabilities`) for ``--mode choice-logprob``,
  which needs the model's logits and so a local model;
- :class:`VLLMGenerator`: vLLM's offline engine on the model folder, when vLLM is installed (GPU machines,
  the ``vllm`` extra), greedy with the same completion limit;
- :class:`ServedGenerator`: a model behind an OpenAI-compatible server (``evaluate --endpoint URL
  --served-model NAME``), through grail-rl's one serving client.

A generator says what it is in ``description`` (recorded in the report) and how many prompts it wants at a
time in ``chunk_size``: the runner writes predictions after each chunk, so an interruption loses at most one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from grail_rl.errors import GrailError


@runtime_checkable
class Generator(Protocol):
    """Greedy answers to prompts (chat message lists, or plain strings), one string per prompt, in order."""

    description: str
    chunk_size: int

    def generate(self, conversations: Sequence[Any]) -> list[str]: ...


class TransformersGenerator:
    """A transformers causal LM and its tokenizer; batched greedy decoding under ``torch.inference_mode``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_new_tokens: int = 128,
        batch_size: int = 8,
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.batch_size = max(int(batch_size), 1)
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.chunk_size = self.batch_size
        self.description = f"transformers, greedy, batch {self.batch_size}"

    def generate(self, conversations: Sequence[Any]) -> list[str]:
        return generate_answers(
            self.model,
            self.tokenizer,
            conversations,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            chat_template_kwargs=self.chat_template_kwargs,
        )

    def option_probabilities(self, conversations: Sequence[Any], n_options: Sequence[int]) -> list[list[float]]:
        """P(option k), k = 1..n, of each prompt after the forced answer prefix (choice-logprob mode)."""
        from grail_rl.evaluation.choice_logprob import option_probabilities

        return option_probabilities(
            self.model, self.tokenizer, conversations, n_options,
            batch_size=self.batch_size, chat_template_kwargs=self.chat_template_kwargs,
        )  # fmt: skip


class VLLMGenerator:
    """vLLM's offline engine on a model folder: greedy, the same completion limit; needs vLLM (a GPU)."""

    chunk_size = 256  # vLLM schedules its own batches; a large chunk keeps it busy between writes

    def __init__(
        self, location: str, *, max_new_tokens: int = 128, chat_template_kwargs: dict[str, Any] | None = None
    ) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise GrailError(
                "--backend vllm: vLLM is not installed; on a GPU machine pip install 'grail-rl[vllm]', or use "
                "--backend transformers"
            ) from None
        self.llm = LLM(model=location)
        self.params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.description = "vllm, greedy"

    def generate(self, conversations: Sequence[Any]) -> list[str]:
        if all(isinstance(c, str) for c in conversations):
            outputs = self.llm.generate(list(conversations), self.params, use_tqdm=False)
        else:
            outputs = self.llm.chat(
                list(conversations), self.params, use_tqdm=False, chat_template_kwargs=self.chat_template_kwargs
            )
        return [output.outputs[0].text for output in outputs]


class ServedGenerator:
    """A model behind an OpenAI-compatible server (:mod:`grail_rl.serving.client`): greedy (temperature 0) chat
    completions with the recipe's completion limit, ``endpoint.concurrency`` requests at a time; the recipe's
    ``chat_template_kwargs`` go to the server as such (vLLM applies them; a server that refuses them says so).

    A row the server refuses (its prompt over the model's context, say) is the model seeing nothing: its output
    is a note saying so (``[no answer: the server refused this row: ...]``, which parses as no answer, so the row
    counts as wrong), kept in the predictions and the progress log like any output, and counted in
    :attr:`refusals`."""

    def __init__(self, endpoint: Any, *, max_new_tokens: int = 128, chat_template_kwargs: dict[str, Any] | None = None) -> None:
        import asyncio
        import weakref

        from grail_rl.serving.client import ServedModel

        self.served = ServedModel(endpoint)
        self.max_new_tokens = max_new_tokens
        self.chunk_size = max(endpoint.concurrency * 4, 8)
        self.extra_body = {"chat_template_kwargs": dict(chat_template_kwargs)} if chat_template_kwargs else None
        kwargs = f", chat_template_kwargs {chat_template_kwargs}" if chat_template_kwargs else ""
        self.description = f"served, greedy: {endpoint.describe()}{kwargs}"
        self.refusals: dict[str, Any] = {"rows": 0, "first": None}
        # One event loop for every chunk: the client and its connections live as long as the generator.
        self._runner = asyncio.Runner()
        weakref.finalize(self, self._runner.close)

    def generate(self, conversations: Sequence[Any]) -> list[str]:
        return self._runner.run(self._all(conversations))

    async def _all(self, conversations: Sequence[Any]) -> list[str]:
        import asyncio

        from grail_rl.serving.client import ServingError, as_messages

        async def one(conversation: Any) -> str:
            try:
                # An answer without text (a content filter's) is the model answering nothing: scored as unparsed.
                return await self.served.chat(as_messages(conversation), max_tokens=self.max_new_tokens,
                                              no_text_ok=True, extra_body=self.extra_body)  # fmt: skip
            except ServingError as exc:
                if exc.kind != "refused" or exc.stops_everything:
                    raise
                self.refusals["rows"] += 1
                self.refusals["first"] = self.refusals["first"] or str(exc)
                return f"[no answer: the server refused this row: {str(exc).replace('<', '(')}]"

        return list(await asyncio.gather(*(one(c) for c in conversations)))


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> list[str]:
    """Greedy completions for ``prompts`` (chat message lists or plain strings), in order; the model's mode and
    the tokenizer's padding side are restored afterwards."""
    import torch

    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    texts: list[str] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                rendered = [
                    p
                    if isinstance(p, str)
                    else tokenizer.apply_chat_template(
                        p, tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {})
                    )
                    for p in prompts[start : start + batch_size]
                ]
                enc = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False)
                enc = {k: v.to(model.device) for k, v in enc.items()}
                out = model.generate(
                    **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
                )
                texts.extend(tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return texts
