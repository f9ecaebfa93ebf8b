"""The rows and prompts a generation runs over: a recipe's split (train or eval), or a data file read with the
recipe's schema and prompt sections (``--data``), optionally cut to its first rows, with each row's prompt either the recipe's (the chat messages training uses) or a ``{{ field }}`` template
filled from the row. Shared by ``grail-rl generate`` and the distilabel pipeline builder; a template naming a
field the rows lack is refused here, before any request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError


@dataclass
class GenerationRows:
    """The split's rows (a ``datasets.Dataset``) and the prompt sent for each, in row order."""

    dataset: Any
    prompts: list[Any]
    templated: bool  # True when the prompts come from a template rather than the recipe


def generation_rows(
    recipe: str | Path,
    *,
    split: str = "train",
    data: Path | None = None,
    template: Path | None = None,
    limit: int | None = None,
    sets: Sequence[str] = (),
    trainer_args: Sequence[str] = (),
) -> GenerationRows:
    """The rows of ``recipe``'s ``split``, or of every row of the ``data`` file (any source format a recipe
    takes, built with the recipe's schema and prompt sections; the recipe's ``max_eval_samples`` does not cut
    it), and the prompt of each."""
    import json

    from grail_rl.data.dataset import build_split
    from grail_rl.data.sources import detect_format
    from grail_rl.files import read_text_limited
    from grail_rl.recipe.loader import load_recipe
    from grail_rl.serving.templates import malformed_placeholders

    text = read_text_limited(template, "--template") if template is not None else None
    if text is not None and not text.strip():
        raise GrailError(f"--template {template} is empty: it would send empty prompts")
    if text is not None and malformed_placeholders(text):
        raise GrailError(f"--template {template}: {malformed_placeholders(text)[0]} is not a placeholder (one word, "
                         "e.g. {{ slate_titles }}); it would be sent as it is")  # fmt: skip
    loaded = load_recipe(str(recipe), sets=list(sets), trainer_args=list(trainer_args))
    where = f"{recipe}: the {split} split"
    if data is not None:
        path = data.expanduser()
        if not path.exists():
            raise GrailError(f"--data {path}: no such file")
        detect_format(path)  # an unreadable kind of file stops here, in one line
        overrides = [*sets, "data.eval=" + json.dumps([{"path": str(path.resolve())}]), "data.max_eval_samples=null"]
        if loaded.recipe.data.train and loaded.recipe.data.synthetic is not None:  # it only filled the eval split
            overrides.append("data.synthetic=null")
        loaded = load_recipe(str(recipe), sets=overrides, trainer_args=list(trainer_args), plugins=loaded.plugins)
        split, where = "eval", f"--data {path}"
    dataset, _ = build_split(loaded.recipe, loaded.plugins, split, limit=None)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    if len(dataset) == 0:
        raise GrailError(f"{where} has no usable rows")
    return _prompts(dataset, text, template)


def _prompts(dataset: Any, text: str | None, template: Path | None) -> GenerationRows:
    from grail_rl.serving.templates import render_template, template_fields

    if text is None:
        return GenerationRows(dataset, list(dataset["prompt"]), templated=False)
    missing = [f for f in template_fields(text) if f not in dataset.column_names]
    if missing:
        raise GrailError(f"--template {template}: the rows have no field '{missing[0]}'; fields: "
                         f"{', '.join(dataset.column_names)}")  # fmt: skip
    return GenerationRows(dataset, [render_template(text, dict(row)) for row in dataset], templated=True)
