"""Build a training or evaluation split: read the recipe's sources, validate every row, mix, render
the prompts and return an Arrow-backed ``datasets.Dataset`` plus the :class:`DropReport`.

Columns (the contract with the trainer and the rewards): ``prompt`` (chat messages, system then user),
``gold_index`` (1-based), ``n_options``, ``issue``, ``participant_study``, ``opinion_direction``
(``increase``/``decrease``/``no_change`` or None), and ``participant_id``, ``slate_ids``, ``slate_titles``,
``gold_title``, ``prompt_length`` (tokens with a tokenizer, else characters), ``source``.

Valid rows are kept as compact JSON strings in Arrow chunks (one copy, not Python objects) until the
mixture is chosen; the prompts are then rendered chunk by chunk into Arrow tables.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grail_rl.data.drops import DropReport
from grail_rl.data.schema import RowDropped, normalize_row
from grail_rl.data.sources import iter_records
from grail_rl.errors import GrailError
from grail_rl.prompts.builder import PromptBuilder

_CHUNK = 8192


@dataclass
class SourceRows:
    """The valid rows of one source, as JSON strings in Arrow chunks."""

    label: str
    weight: float | None
    chunks: list[Any]

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)

    def take(self, indices: Sequence[int]) -> Iterator[dict[str, Any]]:
        import pyarrow as pa

        column = pa.chunked_array(self.chunks, type=pa.large_string()) if self.chunks else None
        for start in range(0, len(indices), _CHUNK):
            part = column.take(pa.array(indices[start : start + _CHUNK], type=pa.int64()))  # type: ignore[union-attr]
            for text in part.to_pylist():
                yield json.loads(text)


@dataclass(frozen=True)
class PathSource:
    """A local file or folder read without a recipe (the ``data audit`` command, tests)."""

    path: Path
    format: str = "auto"
    split: str | None = None
    hub: None = None
    weight: None = None
    max_rows: None = None

    def label(self) -> str:
        return self.path.name


def read_source(source: Any, split: str, seed: int, report: DropReport) -> SourceRows:
    """Validate every record of ``source`` (a DataSource or a path), recording drops in ``report``."""
    import pyarrow as pa

    path = getattr(source, "path", source)
    label = source.label() if hasattr(source, "label") else Path(path).name
    records = iter_records(
        path if getattr(source, "hub", None) is None else None,
        fmt=getattr(source, "format", "auto"),
        hub=getattr(source, "hub", None),
        split=getattr(source, "split", None),
    )
    chunks: list[Any] = []
    pending: list[str] = []
    for n, record in records:
        report.read += 1
        try:
            if isinstance(record, RowDropped):
                raise record
            row = normalize_row(record)
        except RowDropped as exc:
            report.add(exc.reason, label, n, exc.detail)
            continue
        pending.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        if len(pending) >= _CHUNK:
            chunks.append(pa.array(pending, type=pa.large_string()))
            pending = []
    if pending:
        chunks.append(pa.array(pending, type=pa.large_string()))
    rows = SourceRows(label, getattr(source, "weight", None), chunks)
    max_rows = getattr(source, "max_rows", None)
    if max_rows is not None and len(rows) > max_rows:
        keep = sorted(random.Random(f"{seed}:{split}:{label}").sample(range(len(rows)), max_rows))
        rows.chunks = [pa.array([json.dumps(r, separators=(",", ":")) for r in rows.take(keep)], pa.large_string())]
    return rows


def mixture_indices(sources: Sequence[SourceRows], total: int | None, seed: int, split: str) -> list[list[int]]:
    """Which rows of each source go into the split: all of them, or each source's weighted share of
    ``total`` (a larger source is subsampled, a smaller one repeated whole and topped up), seeded."""
    sizes = [len(s) for s in sources]
    if all(s.weight is None for s in sources):
        return [list(range(n)) for n in sizes]
    total = total if total is not None else sum(sizes)
    weights = [float(s.weight or 0) for s in sources]
    quotas = [int(total * w / sum(weights)) for w in weights]
    for i in sorted(range(len(quotas)), key=lambda k: -weights[k])[: total - sum(quotas)]:
        quotas[i] += 1
    picks = []
    for source, size, quota in zip(sources, sizes, quotas, strict=True):
        if size == 0:
            if quota:
                raise GrailError(f"data.{split}: source {source.label} has no valid rows but a mixture weight")
            picks.append([])
            continue
        rng = random.Random(f"{seed}:{split}:mix:{source.label}")
        whole, rest = divmod(quota, size)
        picks.append(list(range(size)) * whole + sorted(rng.sample(range(size), rest)))
    return picks


def prompt_length(messages: list[dict[str, str]], tokenizer: Any = None) -> int:
    """Tokens of the chat prompt as the model sees it (with the generation prompt), or characters."""
    if tokenizer is None:
        return sum(len(m["content"]) for m in messages)
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "\n".join(m["content"] for m in messages)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def fit_prompt(
    builder: PromptBuilder, row: dict[str, Any], limit: int | None, mode: str, tokenizer: Any = None
) -> tuple[list[dict[str, str]] | None, int, bool]:
    """(messages, length, truncated) for ``row`` within ``limit``; messages is None when it must be dropped."""
    messages = builder.messages(row)
    length = prompt_length(messages, tokenizer)
    if limit is None or length <= limit:
        return messages, length, False
    if mode == "truncate":
        history = list(row.get("history") or [])
        while history and length > limit:
            history.pop(0)  # the oldest entries matter least for the next click
            messages = builder.messages({**row, "history": history})
            length = prompt_length(messages, tokenizer)
        if length <= limit:
            return messages, length, True
    return None, length, False


OUTPUT_COLUMNS = (
    "prompt", "gold_index", "n_options", "issue", "participant_study", "opinion_direction",
    "participant_id", "slate_ids", "slate_titles", "gold_title", "prompt_length", "source",
)  # fmt: skip


def _schema() -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    types = {
        "prompt": pa.list_(message), "gold_index": pa.int64(), "n_options": pa.int64(), "issue": pa.string(),
        "participant_study": pa.string(), "opinion_direction": pa.string(), "participant_id": pa.string(),
        "slate_ids": pa.list_(pa.string()), "slate_titles": pa.list_(pa.string()), "gold_title": pa.string(),
        "prompt_length": pa.int64(), "source": pa.string(),
    }  # fmt: skip
    return pa.schema([(name, types[name]) for name in OUTPUT_COLUMNS])


def render_rows(
    rows: Iterator[tuple[str, dict[str, Any]]],
    builder: PromptBuilder,
    report: DropReport,
    *,
    limit: int | None = None,
    mode: str = "drop",
    tokenizer: Any = None,
) -> Any:
    """Render ``(source label, normalised row)`` pairs into one Arrow table of :data:`OUTPUT_COLUMNS`."""
    import pyarrow as pa

    schema = _schema()
    tables = []
    columns: dict[str, list[Any]] = {name: [] for name in OUTPUT_COLUMNS}
    for n, (label, row) in enumerate(rows, 1):
        messages, length, truncated = fit_prompt(builder, row, limit, mode, tokenizer)
        if messages is None:
            report.add("prompt_too_long", label, n, f"{length} > max_prompt_tokens {limit}")
            report.kept -= 1
            continue
        report.truncated += truncated
        slate = row["slate"]
        values = (
            messages, row["gold_index"], row["n_options"], row["issue"], row.get("participant_study"),
            row.get("opinion_direction"), row.get("participant_id"), [item["id"] for item in slate],
            [item["title"] for item in slate], slate[row["gold_index"] - 1]["title"], length, label,
        )  # fmt: skip
        for name, value in zip(OUTPUT_COLUMNS, values, strict=True):
            columns[name].append(value)
        if len(columns["prompt"]) >= _CHUNK:
            tables.append(pa.Table.from_pydict(columns, schema=schema))
            columns = {name: [] for name in OUTPUT_COLUMNS}
    tables.append(pa.Table.from_pydict(columns, schema=schema))
    return pa.concat_tables(tables)


def split_sources(data: Any, split: str) -> list[Any]:
    """The sources of ``split``; a synthetic set (generated on first use) fills an empty split."""
    sources = list(data.train if split == "train" else data.eval)
    if sources or data.synthetic is None:
        return sources
    from grail_rl.data.synth import ensure_generated

    folder = ensure_generated(data.synthetic.n, data.synthetic.seed, data.synthetic.folder())
    return [folder / ("train.jsonl" if split == "train" else "validation.jsonl")]


def build_split(
    recipe: Any,
    plugins: Any = None,
    split: Literal["train", "eval"] = "train",
    report_dir: Path | None = None,
    *,
    tokenizer: Any = None,
    builder: PromptBuilder | None = None,
) -> tuple[Any, DropReport]:
    """The ``split`` of ``recipe`` as a ``datasets.Dataset`` (see the module docstring) and its drop report.

    ``report_dir``: write ``drop_report_<split>.json`` there. ``tokenizer``: measure
    ``prompt.max_prompt_tokens`` in tokens (characters without one).
    """
    import datasets

    data = recipe.data
    builder = builder or PromptBuilder.from_recipe(recipe, plugins)
    report = DropReport(split=split)
    sources = [read_source(s, split, data.seed, report) for s in split_sources(data, split)]
    total = data.train_rows if split == "train" else None
    picks = mixture_indices(sources, total, data.seed, split)
    if split == "eval" and data.max_eval_samples is not None:
        flat = [(i, k) for i, idx in enumerate(picks) for k in idx]
        if len(flat) > data.max_eval_samples:
            chosen = sorted(random.Random(f"{data.seed}:eval:max").sample(range(len(flat)), data.max_eval_samples))
            picks = [[] for _ in sources]
            for j in chosen:
                picks[flat[j][0]].append(flat[j][1])
    report.kept = sum(len(p) for p in picks)

    def pairs() -> Iterator[tuple[str, dict[str, Any]]]:
        for source, idx in zip(sources, picks, strict=True):
            for row in source.take(idx):
                yield source.label, row

    table = render_rows(
        pairs(), builder, report, limit=recipe.prompt.max_prompt_tokens, mode=recipe.prompt.long_prompts,
        tokenizer=tokenizer,
    )  # fmt: skip
    if report_dir is not None:
        report.write(Path(report_dir))
    return datasets.Dataset(table), report
