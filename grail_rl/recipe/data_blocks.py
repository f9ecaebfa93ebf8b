"""The ``data:`` and ``prompt:`` sections of a recipe.

``data.train`` / ``data.eval`` are lists of sources. Without weights the sources are concatenated. With
a ``weight`` on every source of a split, they form a mixture of ``train_rows`` (default: all their rows)
rows in which each source's share is its weight: a larger source is subsampled, a smaller one repeated,
both with ``data.seed``. ``data.synthetic`` generates a synthetic set (``grail-rl data synth``) into a cache
folder and uses its train/validation files wherever ``train``/``eval`` are left empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from grail_rl.recipe.fields import Block, ExistingFile, ExistingPath, RecipePath


class DataSource(Block):
    """One dataset: a local file or folder, or a hub dataset id."""

    path: ExistingPath | None = Field(
        None, description="A JSONL, Parquet or CSV file, or a folder saved by datasets.save_to_disk."
    )
    hub: str | None = Field(None, description="A hub dataset id (owner/name).")
    split: str | None = Field(
        None, description="Split to read from a hub dataset or a saved DatasetDict (hub default: train)."
    )
    format: Literal["auto", "jsonl", "parquet", "csv", "arrow", "rendered"] = Field(
        "auto",
        description="File format; 'auto' goes by the extension (JSONL with 'messages' reads as 'rendered').",
    )
    weight: float | None = Field(
        None, gt=0, description="Share of this source in a weighted mixture; set on all sources of a split or none."
    )
    max_rows: int | None = Field(None, ge=1, description="Use at most this many rows (seeded subsample).")

    @model_validator(mode="after")
    def _one_location(self) -> DataSource:
        if (self.path is None) == (self.hub is None):
            raise ValueError("set exactly one of path or hub")
        if self.path is not None and self.path.is_dir() and self.format not in ("auto", "arrow"):
            raise ValueError(
                f"{self.path} is a folder, but format: {self.format} reads a file; a folder is read as a dataset "
                "saved by datasets.save_to_disk (format: arrow or auto)"
            )
        return self

    def label(self) -> str:
        """A short name for messages and the drop report."""
        return self.path.name if self.path is not None else f"hub:{self.hub}"


class SyntheticData(Block):
    """A synthetic viewer dataset generated on first use (see ``grail-rl data synth``)."""

    n: int = Field(2000, ge=10, description="Number of step rows to generate (train + validation).")
    seed: int = Field(0, description="Generator seed; the same seed gives the same rows.")
    cache_dir: RecipePath = Field(
        Path(".grail-synth"),
        validate_default=True,
        description="Folder for generated sets (one subfolder per n and seed), relative to the recipe.",
    )

    def folder(self) -> Path:
        return Path(self.cache_dir) / f"n{self.n}-seed{self.seed}"


class DataBlock(Block):
    """Training and evaluation data."""

    train: list[DataSource] = Field(default_factory=list, description="Training sources (a weighted mixture).")
    eval: list[DataSource] = Field(default_factory=list, description="Evaluation sources.")
    synthetic: SyntheticData | None = Field(
        None, description="Generate synthetic viewers and use them for any split left empty."
    )
    seed: int = Field(42, description="Seed for subsampling and mixing.")
    train_rows: int | None = Field(
        None, ge=1, description="Rows in a weighted training mixture (default: the sources' total)."
    )
    max_eval_samples: int | None = Field(None, ge=1, description="Evaluate on at most this many prompts.")

    @model_validator(mode="after")
    def _sources(self) -> DataBlock:
        if not self.train and self.synthetic is None:
            raise ValueError("give data.train sources or a data.synthetic block")
        for split in ("train", "eval"):
            weighted = [s.weight is not None for s in getattr(self, split)]
            if any(weighted) and not all(weighted):
                raise ValueError(f"set weight on every data.{split} source or on none (a mixture needs all shares)")
        return self


def prompt_block(section_type: Any) -> type[Block]:
    """The prompt section's model, for the section plugins that are installed."""

    class PromptBlock(Block):
        """System prompt and the sections of the user prompt, in order."""

        system_prompt: str | None = Field(None, description="The system prompt text; None = the built-in one.")
        system_prompt_file: ExistingFile | None = Field(None, description="A file holding the system prompt.")
        sections: list[section_type] | None = Field(  # type: ignore[valid-type]
            None, description="Sections of the user prompt in order; None = the default sections."
        )
        max_prompt_tokens: int | None = Field(
            None, ge=1, description="Longest prompt allowed (tokens, or characters without a tokenizer)."
        )
        long_prompts: Literal["drop", "truncate"] = Field(
            "drop",
            description="A prompt over max_prompt_tokens is dropped, or truncated: its oldest history entries "
            "are left out until it fits (dropped if it still does not).",
        )

        @model_validator(mode="after")
        def _one_system_prompt(self) -> PromptBlock:
            if self.system_prompt is not None and self.system_prompt_file is not None:
                raise ValueError("set system_prompt or system_prompt_file, not both")
            if self.sections is not None and not self.sections:
                raise ValueError("prompt.sections is empty; leave it out for the default sections")
            return self

    return PromptBlock
