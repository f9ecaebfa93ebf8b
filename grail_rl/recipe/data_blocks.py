"""The data and prompt sections of a recipe."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from grail_rl.recipe.fields import Block, ExistingFile, ExistingPath


class DataSource(Block):
    """One dataset: a local file or folder, or a hub dataset id."""

    path: ExistingPath | None = Field(
        None, description="A JSONL, Parquet or CSV file, or a folder saved by datasets.save_to_disk."
    )
    hub: str | None = Field(None, description="A hub dataset id (owner/name).")
    split: str | None = Field(None, description="Split to read from a hub dataset or a saved DatasetDict.")
    format: Literal["auto", "jsonl", "parquet", "csv", "arrow", "rendered"] = Field(
        "auto", description="File format; 'auto' goes by the extension. 'rendered' reads rendered-prompt JSONL."
    )
    weight: float = Field(1.0, gt=0, description="Relative share of this source in a mixture.")
    max_rows: int | None = Field(None, ge=1, description="Use at most this many rows (seeded subsample).")

    @model_validator(mode="after")
    def _one_location(self) -> DataSource:
        if (self.path is None) == (self.hub is None):
            raise ValueError("set exactly one of path or hub")
        return self


class DataBlock(Block):
    """Training and evaluation data."""

    train: list[DataSource] = Field(default_factory=list, description="Training sources (a weighted mixture).")
    eval: list[DataSource] = Field(default_factory=list, description="Evaluation sources.")
    seed: int = Field(42, description="Seed for subsampling and mixing.")
    max_eval_samples: int | None = Field(None, ge=1, description="Evaluate on at most this many prompts.")
    video_stats: ExistingFile | None = Field(
        None, description="A JSON file of engagement counts by video id (e.g. video_stats.json)."
    )


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
            "drop", description="What to do with a prompt longer than max_prompt_tokens."
        )

        @model_validator(mode="after")
        def _one_system_prompt(self) -> PromptBlock:
            if self.system_prompt is not None and self.system_prompt_file is not None:
                raise ValueError("set system_prompt or system_prompt_file, not both")
            return self

    return PromptBlock
