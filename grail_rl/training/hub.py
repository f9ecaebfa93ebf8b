"""Pushing to the hub: a revision (branch) per saved checkpoint, and a model card with recipe and metrics.

The token is never passed, stored or printed by grail-rl: ``huggingface_hub`` reads ``HF_TOKEN`` (or the
user's login) from the environment on each call. ``GRPOConfig.hub_token`` stays unset, so the
``training_args.bin`` saved in every checkpoint holds no token either.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CARD_MARK = "<!-- grail-rl -->"


def revision_name(step: int) -> str:
    return f"step-{step:06d}"


class HubPusher:
    """Pushes each published checkpoint to its own branch of ``repo_id`` (``hub.revision_per_save``)."""

    def __init__(self, repo_id: str, *, private: bool | None = None):
        self.repo_id = repo_id
        self.private = private
        self.pushed: list[str] = []

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi()  # token: from the environment, resolved by huggingface_hub itself

    def push_revision(self, folder: Path, step: int) -> str:
        api = self._api()
        branch = revision_name(step)
        api.create_repo(self.repo_id, private=self.private, exist_ok=True)
        api.create_branch(self.repo_id, branch=branch, exist_ok=True)
        # A new branch starts from main, which holds whatever the last main push left (an older card, logs,
        # weights); delete_patterns="*" makes the revision exactly this checkpoint (.gitattributes is kept).
        api.upload_folder(
            repo_id=self.repo_id,
            folder_path=str(folder),
            revision=branch,
            commit_message=f"grail-rl checkpoint at step {step}",
            delete_patterns="*",
        )
        self.pushed.append(branch)
        logger.info("pushed %s to %s@%s", folder.name, self.repo_id, branch)
        return branch


def card_section(recipe: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The grail-rl part of the model card: the resolved recipe and the run's metrics."""
    import yaml

    recipe_yaml = yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True)
    lines = [
        CARD_MARK,
        "## grail-rl",
        "",
        "Trained with [grail-rl](https://github.com/) (GRPO) to predict which video a viewer clicks next.",
        "",
        "### Metrics",
        "",
    ]
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in sorted(metrics.items())]
    else:
        lines.append("(no metrics recorded yet)")
    lines += ["", "### Recipe (resolved)", "", "```yaml", recipe_yaml.rstrip(), "```", ""]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def add_card_section(readme: Path, recipe: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Append (or replace) the grail-rl section of ``readme``."""
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if CARD_MARK in text:
        text = text[: text.index(CARD_MARK)].rstrip() + "\n\n"
    readme.write_text(text + card_section(recipe, metrics), encoding="utf-8")
