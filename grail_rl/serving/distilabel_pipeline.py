"""A distilabel pipeline over a recipe's rows, as the seed's generation utility built (the ``distilabel`` extra).

``grail-rl generate`` is the dependable path (resumable, locked, one line per finished row). This builder is
for researchers who already run distilabel pipelines (to bootstrap preference data, or to compare prompt
templates on large hosted models) and want grail-rl's prompts in them: it loads the rows exactly as
``generate`` does (:mod:`grail_rl.serving.rows`: the recipe's prompt or a ``{{ field }}`` template) and returns
a distilabel ``Pipeline`` of two steps, the rows (``row_id``, ``messages`` and the split's columns) into a
``ChatGeneration`` task on an ``OpenAILLM`` pointed at the endpoint. ``pipeline.run()`` gives a Distiset.

The API key is read from ``$GRAIL_RL_API_KEY`` (else ``$OPENAI_API_KEY``) as everywhere in grail-rl, and
handed to distilabel as a secret (it keeps it out of the pipeline files it writes in its cache).

distilabel 1.5.3 installs beside grail-rl's pins without changing any of them (``pip install
'grail-rl[distilabel]'``); without it, the builder stops with one line saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError

# The split's columns passed through to the pipeline's output beside the generations (JSON-friendly ones).
PASSTHROUGH = ("gold_index", "n_options", "issue", "participant_study", "opinion_direction", "participant_id",
               "slate_titles", "gold_title")  # fmt: skip


def build_distilabel_pipeline(
    recipe: str | Path,
    *,
    endpoint: str,
    model: str,
    split: str = "train",
    template: Path | None = None,
    limit: int | None = None,
    n: int = 1,
    temperature: float = 0.0,
    max_tokens: int = 256,
    timeout: float = 120.0,
    max_retries: int = 5,
    input_batch_size: int = 32,
    name: str = "grail-rl-generate",
    cache_dir: str | Path | None = None,
    sets: Sequence[str] = (),
) -> Any:
    """A distilabel ``Pipeline`` generating ``n`` chat completions per row of ``recipe``'s ``split`` from the
    model at ``endpoint``; run it with ``.run()``."""
    try:
        from distilabel.models.llms import OpenAILLM
        from distilabel.pipeline import Pipeline
        from distilabel.steps import LoadDataFromDicts
        from distilabel.steps.tasks import ChatGeneration
    except ImportError:
        raise GrailError("the distilabel pipeline builder needs distilabel: pip install 'grail-rl[distilabel]'") from None
    from grail_rl.serving.client import api_key, as_messages, check_url
    from grail_rl.serving.rows import generation_rows

    endpoint = check_url(endpoint, "endpoint")
    rows = generation_rows(recipe, split=split, template=template, limit=limit, sets=sets)
    columns = [c for c in PASSTHROUGH if c in rows.dataset.column_names]
    data = [
        {"row_id": i, "messages": as_messages(prompt), **{c: rows.dataset[i][c] for c in columns}}
        for i, prompt in enumerate(rows.prompts)
    ]
    with Pipeline(name=name, cache_dir=str(cache_dir) if cache_dir is not None else None) as pipeline:
        load = LoadDataFromDicts(data=data, batch_size=input_batch_size)
        llm = OpenAILLM(model=model, base_url=endpoint.rstrip("/"), api_key=api_key(), timeout=int(timeout),
                        max_retries=max_retries,
                        generation_kwargs={"max_new_tokens": max_tokens, "temperature": temperature})  # fmt: skip
        chat = ChatGeneration(llm=llm, num_generations=n, group_generations=True, input_batch_size=input_batch_size)
        load >> chat
    return pipeline
