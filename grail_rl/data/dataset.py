"""Build a training or evaluation split: read the recipe's sources, validate every row, mix, render
the prompts and return an Arrow-backed ``datasets.Dataset`` plus the :class:`DropReport`.

Columns (the contract with the trainer and the rewards): ``prompt`` (chat messages, system then user),
``gold_index`` (1-based), ``n_options``, ``issue``, ``participant_study``, ``opinion_direction``
(``increase``/``decrease``/``no_change`` or None), and ``participant_id``, ``slate_ids``, ``slate_titles``,
``gold_title``, ``prompt_length`` (tokens with a tokenizer, else characters), ``prompt_truncated`` (the prompt
was cut to fit the limit), ``source``.

Memory stays flat in the number of rows: when every row of every source is used in order (no mixture
weights, ``max_rows`` or ``max_eval_samples``) rows stream from the reader through the prompt builder
into an Arrow file on disk; otherwise each source's valid rows are first written as JSON into a temporary
Arrow file (JSON, not pickle: reading the spill back can never run code) and read back one batch at a time
for the mixture. The split is that file, memory-mapped.

Prompt length is measured the same way everywhere (``train``, ``preview``, ``evaluate``): in tokens of the
chat-formatted prompt when a tokenizer is given, in characters otherwise. The limit is
``prompt.max_prompt_tokens``, else the model's context window minus ``trainer.max_completion_length``
(:func:`prompt_limit`). ``long_prompts: truncate`` first leaves out the oldest history entries and then, if
the prompt still does not fit, cuts the start of the user prompt (keeping its end: the options and the
questions) behind a :data:`TRUNCATION_MARK`.
"""

from __future__ import annotations

import atexit
import bisect
import json
import os
import random
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grail_rl.data.drops import DropReport
from grail_rl.data.schema import RowDropped, normalize_row
from grail_rl.data.sources import iter_records
from grail_rl.errors import GrailError
from grail_rl.prompts.builder import PromptBuilder

_CHUNK = 1000  # rows per Arrow batch, as datasets writes them: small enough to keep memory flat
_WORK_DIR: Path | None = None


def work_dir() -> Path:
    """This process's scratch folder for spilled rows and built splits, removed when the process exits
    (the splits are memory-mapped from it, so it must outlive every dataset built here)."""
    global _WORK_DIR
    if _WORK_DIR is None:
        _WORK_DIR = Path(tempfile.mkdtemp(prefix="grail-rl-data-"))
        atexit.register(shutil.rmtree, _WORK_DIR, ignore_errors=True)
    return _WORK_DIR


class SourceRows:
    """The valid rows of one source, as JSON in a temporary Arrow file: holding every row of a large
    source for the mixture costs disk, and reading them back holds one batch at a time."""

    def __init__(self, label: str, weight: float | None, rows: Iterable[dict[str, Any]]):
        import pyarrow as pa

        self.label = label
        self.weight = weight
        self.path = work_dir() / f"rows-{uuid.uuid4().hex}.arrow"
        weakref.finalize(self, _remove, self.path)  # a subsampled or finished source frees its disk
        schema = pa.schema([("row", pa.large_string())])
        self._starts = [0]  # first row index of each batch, then the total
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        with pa.OSFile(str(self.path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            pending: list[str] = []
            for row in rows:
                pending.append(dumps(row))
                if len(pending) >= _CHUNK:
                    self._write(writer, pending)
                    pending = []
            if pending:
                self._write(writer, pending)

    def _write(self, writer: Any, pending: list[str]) -> None:
        import pyarrow as pa

        writer.write_batch(pa.record_batch([pa.array(pending, pa.large_string())], names=["row"]))
        self._starts.append(self._starts[-1] + len(pending))

    def __len__(self) -> int:
        return self._starts[-1]

    def take(self, indices: Iterable[int]) -> Iterator[dict[str, Any]]:
        """The rows at ``indices`` (any order, repeats allowed), reading each batch when first needed."""
        import pyarrow as pa

        loads = json.loads
        # A plain file, not a memory map: a batch read this way is freed once the next one replaces it.
        with pa.OSFile(str(self.path), "rb") as source:
            reader = pa.ipc.open_file(source)
            current, lo, hi, values = -1, 0, 0, []
            for i in indices:
                if not lo <= i < hi:
                    if not 0 <= i < len(self):
                        raise IndexError(f"row {i} of {len(self)}")
                    current = bisect.bisect_right(self._starts, i) - 1
                    lo, hi = self._starts[current], self._starts[current + 1]
                    values = reader.get_batch(current).column(0).to_pylist()
                yield loads(values[i - lo])


def _remove(path: Path) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


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


def source_label(source: Any) -> str:
    return source.label() if hasattr(source, "label") else Path(getattr(source, "path", source)).name


def iter_valid(source: Any, report: DropReport) -> Iterator[dict[str, Any]]:
    """The normalised rows of ``source`` (a DataSource or a path), streamed; drops go to ``report``."""
    path = getattr(source, "path", source)
    label = source_label(source)
    records = iter_records(
        path if getattr(source, "hub", None) is None else None,
        fmt=getattr(source, "format", "auto"),
        hub=getattr(source, "hub", None),
        split=getattr(source, "split", None),
    )
    for n, record in records:
        report.read += 1
        try:
            if isinstance(record, RowDropped):
                raise record
            row = normalize_row(record)
        except RowDropped as exc:
            report.add(exc.reason, label, n, exc.detail)
            continue
        yield row


def read_source(source: Any, split: str, seed: int, report: DropReport) -> SourceRows:
    """Validate every record of ``source`` (a DataSource or a path), recording drops in ``report``."""
    label = source_label(source)
    rows = SourceRows(label, getattr(source, "weight", None), iter_valid(source, report))
    max_rows = getattr(source, "max_rows", None)
    if max_rows is not None and len(rows) > max_rows:
        keep = sorted(random.Random(f"{seed}:{split}:{label}").sample(range(len(rows)), max_rows))
        rows = SourceRows(label, rows.weight, rows.take(keep))
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


def prompt_length(
    messages: list[dict[str, str]], tokenizer: Any = None, template_kwargs: dict[str, Any] | None = None
) -> int:
    """Tokens of the chat prompt as the model sees it (with the generation prompt and the recipe's
    ``trainer.chat_template_kwargs``, as TRL applies them), or characters without a tokenizer."""
    if tokenizer is None:
        return sum(len(m["content"]) for m in messages)
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **(template_kwargs or {})
        )
    else:
        text = "\n".join(m["content"] for m in messages)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


TRUNCATION_MARK = "[…]\n"


def prompt_limit(recipe: Any, context_window: int | None) -> int | None:
    """The longest prompt allowed: ``prompt.max_prompt_tokens``, else the model's context window minus the
    completion length (None when neither is known, e.g. without a model)."""
    if recipe.prompt.max_prompt_tokens is not None:
        return int(recipe.prompt.max_prompt_tokens)
    if context_window is None:
        return None
    room = int(context_window) - int(recipe.trainer.max_completion_length)
    if room < 1:
        raise GrailError(
            f"trainer.max_completion_length ({recipe.trainer.max_completion_length}) leaves no room for a prompt "
            f"in the model's context window ({context_window} tokens); lower it"
        )
    return room


def fit_prompt(
    builder: PromptBuilder,
    row: dict[str, Any],
    limit: int | None,
    mode: str,
    tokenizer: Any = None,
    template_kwargs: dict[str, Any] | None = None,
) -> tuple[list[dict[str, str]] | None, int, bool]:
    """(messages, length, truncated) for ``row`` within ``limit``; messages is None when it must be dropped."""
    messages = builder.messages(row)
    length = prompt_length(messages, tokenizer, template_kwargs)
    if limit is None or length <= limit:
        return messages, length, False
    if mode != "truncate":
        return None, length, False
    history = list(row.get("history") or [])
    if history:
        # The fewest oldest entries to leave out (length shrinks as entries go): a binary search, since a
        # long history would otherwise cost one render and tokenization per entry.
        def render(dropped: int) -> tuple[list[dict[str, str]], int]:
            shorter = builder.messages({**row, "history": history[dropped:]})
            return shorter, prompt_length(shorter, tokenizer, template_kwargs)

        lo, hi = 1, len(history)
        best = render(hi)
        if best[1] <= limit:
            while lo < hi:
                mid = (lo + hi) // 2
                attempt = render(mid)
                if attempt[1] <= limit:
                    best, hi = attempt, mid
                else:
                    lo = mid + 1
            return best[0], best[1], True
        messages, length = best
    cut = cut_user_start(messages, limit, tokenizer, template_kwargs)
    if cut is None:
        return None, length, False
    return cut[0], cut[1], True


def cut_user_start(
    messages: list[dict[str, str]], limit: int, tokenizer: Any = None, template_kwargs: dict[str, Any] | None = None
) -> tuple[list[dict[str, str]], int] | None:
    """The messages with the start of the user prompt cut so the whole fits ``limit``, keeping as much of its
    end as fits; None when not even the system prompt and the mark fit."""
    index = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    if index is None:
        return None
    text = messages[index]["content"]

    def keep(chars: int) -> tuple[list[dict[str, str]], int]:
        content = TRUNCATION_MARK + (text[len(text) - chars :] if chars else "")
        shorter = [*messages[:index], {**messages[index], "content": content}, *messages[index + 1 :]]
        return shorter, prompt_length(shorter, tokenizer, template_kwargs)

    best = keep(0)
    if best[1] > limit:
        return None
    lo, hi = 0, len(text)  # the most characters kept from the end that still fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        attempt = keep(mid)
        if attempt[1] <= limit:
            best, lo = attempt, mid
        else:
            hi = mid - 1
    return best


OUTPUT_COLUMNS = (
    "prompt", "gold_index", "n_options", "issue", "participant_study", "opinion_direction",
    "participant_id", "slate_ids", "slate_titles", "slate_channels", "gold_title", "prompt_length",
    "prompt_truncated", "source",
)  # fmt: skip


def _schema(fields: Sequence[str] = ()) -> Any:
    """The split's Arrow schema: :data:`OUTPUT_COLUMNS`, then the optional row ``fields`` the rewards ask for."""
    import pyarrow as pa

    from grail_rl.data.row_fields import ROW_FIELDS, arrow_type

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    types = {
        "prompt": pa.list_(message), "gold_index": pa.int64(), "n_options": pa.int64(), "issue": pa.string(),
        "participant_study": pa.string(), "opinion_direction": pa.string(), "participant_id": pa.string(),
        "slate_ids": pa.list_(pa.string()), "slate_titles": pa.list_(pa.string()),
        "slate_channels": pa.list_(pa.string()), "gold_title": pa.string(),
        "prompt_length": pa.int64(), "prompt_truncated": pa.bool_(), "source": pa.string(),
    }  # fmt: skip
    return pa.schema([(name, types[name]) for name in OUTPUT_COLUMNS] +
                     [(name, arrow_type(ROW_FIELDS[name])) for name in fields])  # fmt: skip


def render_batches(
    rows: Iterable[tuple[str, dict[str, Any]]],
    builder: PromptBuilder,
    report: DropReport,
    *,
    limit: int | None = None,
    mode: str = "drop",
    tokenizer: Any = None,
    template_kwargs: dict[str, Any] | None = None,
    fields: Sequence[str] = (),
) -> Iterator[Any]:
    """Render ``(source label, normalised row)`` pairs into Arrow record batches of :data:`OUTPUT_COLUMNS` (and
    the optional row ``fields``), at most ``_CHUNK`` rows each; counts every row kept in ``report.kept``."""
    batch = _Batch(fields)
    for n, (label, row) in enumerate(rows, 1):
        messages, length, truncated = fit_prompt(builder, row, limit, mode, tokenizer, template_kwargs)
        if messages is None:
            unit = "tokens" if tokenizer is not None else "characters"
            report.add("prompt_too_long", label, n, f"{length} {unit}, over the limit of {limit} ({mode})")
            continue
        report.kept += 1
        report.truncated += truncated
        batch.add(label, row, messages, length, truncated)
        if batch.size >= _CHUNK:
            yield batch.record_batch()
            batch = _Batch(fields)
    if batch.size:
        yield batch.record_batch()


def render_rows(
    rows: Iterable[tuple[str, dict[str, Any]]], builder: PromptBuilder, report: DropReport, **kw: Any
) -> Any:
    """:func:`render_batches` collected into one in-memory Arrow table."""
    import pyarrow as pa

    return pa.Table.from_batches(list(render_batches(rows, builder, report, **kw)), schema=_schema(kw.get("fields", ())))


class _Batch:
    """Column lists of one output batch. Nested columns are kept flat (values plus offsets) and become
    Arrow list arrays directly: converting per-row lists of message dicts is the slow path in pyarrow."""

    def __init__(self, fields: Sequence[str] = ()) -> None:
        from grail_rl.data.row_fields import ROW_FIELDS

        self.fields = [ROW_FIELDS[name] for name in fields]
        self.extra: dict[str, list[Any]] = {name: [] for name in fields}
        self.size = 0
        self.offsets, self.roles, self.contents = [0], [], []
        self.slate_offsets, self.slate_ids, self.slate_titles, self.slate_channels = [0], [], [], []
        self.scalars: dict[str, list[Any]] = {name: [] for name in _SCALAR_COLUMNS}

    def add(
        self, label: str, row: dict[str, Any], messages: list[dict[str, str]], length: int, truncated: bool = False
    ) -> None:
        self.size += 1
        for message in messages:
            self.roles.append(message["role"])
            self.contents.append(message["content"])
        self.offsets.append(len(self.roles))
        slate = row["slate"]
        for item in slate:
            self.slate_ids.append(item["id"])
            self.slate_titles.append(item["title"])
            self.slate_channels.append(item.get("channel_title"))
        self.slate_offsets.append(len(self.slate_ids))
        values = (
            row["gold_index"], row["n_options"], row["issue"], row.get("participant_study"),
            row.get("opinion_direction"), row.get("participant_id"), slate[row["gold_index"] - 1]["title"],
            length, truncated, label,
        )  # fmt: skip
        for column, value in zip(self.scalars.values(), values, strict=True):
            column.append(value)
        if self.fields:
            from grail_rl.data.row_fields import stored_value

            for field in self.fields:
                self.extra[field.name].append(stored_value(field, row))

    def record_batch(self) -> Any:
        import pyarrow as pa

        schema = _schema(list(self.extra))
        message = schema.field("prompt").type.value_type
        prompts = pa.ListArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [pa.array(self.roles, pa.string()), pa.array(self.contents, pa.string())], fields=list(message)
            ),
        )
        slate_offsets = pa.array(self.slate_offsets, pa.int32())
        arrays = {
            "prompt": prompts,
            "slate_ids": pa.ListArray.from_arrays(slate_offsets, pa.array(self.slate_ids, pa.string())),
            "slate_titles": pa.ListArray.from_arrays(slate_offsets, pa.array(self.slate_titles, pa.string())),
            "slate_channels": pa.ListArray.from_arrays(slate_offsets, pa.array(self.slate_channels, pa.string())),
        }
        for name, values in (*self.scalars.items(), *self.extra.items()):
            arrays[name] = pa.array(values, schema.field(name).type)
        return pa.RecordBatch.from_arrays([arrays[name] for name in schema.names], schema=schema)


_SCALAR_COLUMNS = (
    "gold_index", "n_options", "issue", "participant_study", "opinion_direction", "participant_id", "gold_title",
    "prompt_length", "prompt_truncated", "source",
)  # fmt: skip


def split_sources(data: Any, split: str) -> list[Any]:
    """The sources of ``split``; a synthetic set (generated on first use) fills an empty split."""
    sources = list(data.train if split == "train" else data.eval)
    if sources or data.synthetic is None:
        return sources
    from grail_rl.data.synth import ensure_generated

    folder = ensure_generated(data.synthetic.n, data.synthetic.seed, data.synthetic.folder())
    return [folder / ("train.jsonl" if split == "train" else "validation.jsonl")]


def write_split(batches: Iterable[Any], path: Path, fields: Sequence[str] = ()) -> Any:
    """Write record batches to an Arrow stream file (the format ``datasets`` caches in) and open it as a
    memory-mapped ``datasets.Dataset``: the split lives on disk, never whole in memory."""
    import datasets
    import pyarrow as pa

    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, _schema(fields)) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return datasets.Dataset.from_file(str(path))


def _uses_every_row(sources: Sequence[Any], data: Any, split: str) -> bool:
    """True when the split is every valid row of every source in order, so rows can stream straight
    from the reader into the output without being held for a mixture."""
    if any(getattr(s, "weight", None) is not None or getattr(s, "max_rows", None) is not None for s in sources):
        return False
    return split == "train" or data.max_eval_samples is None


def build_split(
    recipe: Any,
    plugins: Any = None,
    split: Literal["train", "eval"] = "train",
    report_dir: Path | None = None,
    *,
    tokenizer: Any = None,
    builder: PromptBuilder | None = None,
    cache_dir: Path | None = None,
    limit: int | None | Literal["recipe"] = "recipe",
) -> tuple[Any, DropReport]:
    """The ``split`` of ``recipe`` as a ``datasets.Dataset`` (see the module docstring) and its drop report.

    ``report_dir``: write ``drop_report_<split>.json`` there. ``tokenizer``: measure prompt lengths in
    tokens (characters without one). ``limit``: the longest prompt kept (see :func:`prompt_limit`); the
    default is the recipe's ``prompt.max_prompt_tokens``, None keeps every prompt. ``cache_dir``: keep the
    split's Arrow file there (default: a scratch folder removed when the process exits).
    """
    data = recipe.data
    builder = builder or PromptBuilder.from_recipe(recipe, plugins)
    report = DropReport(split=split)
    specs = split_sources(data, split)
    if _uses_every_row(specs, data, split):
        pairs: Iterable[tuple[str, dict[str, Any]]] = (
            (source_label(spec), row) for spec in specs for row in iter_valid(spec, report)
        )
    else:
        pairs = _mixture_pairs([read_source(s, split, data.seed, report) for s in specs], data, split)
    fields = reward_row_fields(recipe)
    batches = render_batches(
        pairs, builder, report, limit=recipe.prompt.max_prompt_tokens if limit == "recipe" else limit,
        mode=recipe.prompt.long_prompts, tokenizer=tokenizer, template_kwargs=recipe.trainer.chat_template_kwargs,
        fields=fields,
    )  # fmt: skip
    folder = Path(cache_dir) if cache_dir is not None else work_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dataset = write_split(batches, folder / f"{split}-{uuid.uuid4().hex}.arrow", fields)
    if report_dir is not None:
        report.write(Path(report_dir))
    return dataset, report


def reward_row_fields(recipe: Any) -> list[str]:
    """The optional row fields the recipe's rewards read (:mod:`grail_rl.data.row_fields`), each once, in the
    order the rewards name them; the columns every split has are not repeated."""
    from grail_rl.data.row_fields import ROW_FIELDS

    wanted: list[str] = []
    for block in getattr(recipe, "rewards", None) or []:
        for name in block.declared_row_fields():
            if name in ROW_FIELDS and name not in wanted:
                wanted.append(name)
    return wanted


def _mixture_pairs(sources: list[SourceRows], data: Any, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    total = data.train_rows if split == "train" else None
    picks = mixture_indices(sources, total, data.seed, split)
    if split == "eval" and data.max_eval_samples is not None:
        flat = [(i, k) for i, idx in enumerate(picks) for k in idx]
        if len(flat) > data.max_eval_samples:
            chosen = sorted(random.Random(f"{data.seed}:eval:max").sample(range(len(flat)), data.max_eval_samples))
            picks = [[] for _ in sources]
            for j in chosen:
                picks[flat[j][0]].append(flat[j][1])
    for source, idx in zip(sources, picks, strict=True):
        for row in source.take(idx):
            yield source.label, row
