"""Pushing to the hub: what is pushed, a revision (branch) per saved checkpoint, and the model card.

The token is never passed, stored or printed by grail-rl: ``huggingface_hub`` reads ``HF_TOKEN`` (or the
user's login) from the environment on each call. ``GRPOConfig.hub_token`` stays unset, so the
``training_args.bin`` saved in every checkpoint holds no token either.

What is pushed: TRL uploads the output folder to ``main`` (checkpoints go to their revisions). The files
that hold participants' data, :data:`DATA_FILES` (sampled completions with their prompts, drop reports with
example rows, reward faults with the offending rows, evaluation predictions, ``train.log`` with the drop
examples), stay local unless the recipe sets ``hub.push_data_files: true``: a repository is public unless
``hub.hub_private_repo`` says otherwise. grail-rl's lock and set-aside folders are never pushed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grail_rl.files import write_text_atomically

logger = logging.getLogger(__name__)

CARD_MARK = "<!-- grail-rl -->"
# Paths (fnmatch patterns relative to the output folder) that hold participants' data.
DATA_FILES = (
    "completions/*", "drop_report_*.json", "reward_faults/*", "*.predictions.jsonl", "*.progress-*.jsonl", "train.log",
    # The discriminator's replay buffer and held-out texts, in checkpoints and final/ (grail_rl.grail.runtime).
    "*grail_state/*/texts.json",
)  # fmt: skip
# grail-rl's own bookkeeping: the folder lock and a run set aside while it is being replaced.
NEVER_PUSHED = (".grail-*", "*/.grail-*", ".staging*")  # */: the evaluation folder's lock (grail-rl evaluate)


def hidden_from_hub(push_data_files: bool) -> tuple[str, ...]:
    """The ignore patterns every upload of the output folder gets."""
    return NEVER_PUSHED if push_data_files else (*NEVER_PUSHED, *DATA_FILES)


class _IgnoringApi:
    """An HfApi whose ``upload_folder`` also ignores ``patterns`` (everything else is the real API)."""

    def __init__(self, api: Any, patterns: tuple[str, ...]):
        self._api = api
        self._patterns = patterns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    def upload_folder(self, *args: Any, ignore_patterns: Any = None, **kwargs: Any) -> Any:
        given = [ignore_patterns] if isinstance(ignore_patterns, str) else list(ignore_patterns or [])
        return self._api.upload_folder(*args, ignore_patterns=[*given, *self._patterns], **kwargs)


@contextmanager
def uploads_ignoring(patterns: tuple[str, ...]) -> Iterator[None]:
    """While inside, the Trainer's folder uploads (``push_to_hub``, ``_push_from_checkpoint``) skip
    ``patterns``. transformers builds every upload from ``transformers.trainer.hf_api()``; that one name is
    swapped for the duration, and put back however the push ends."""
    import transformers.trainer as hf_trainer

    original = hf_trainer.hf_api
    hf_trainer.hf_api = lambda: _IgnoringApi(original(), patterns)
    try:
        yield
    finally:
        hf_trainer.hf_api = original


def revision_name(step: int) -> str:
    return f"step-{step:06d}"


class HubPusher:
    """Pushes each published checkpoint to its own branch of ``repo_id`` (``hub.revision_per_save``)."""

    def __init__(self, repo_id: str, *, private: bool | None = None, ignore: tuple[str, ...] = ()):
        self.repo_id = repo_id
        self.private = private
        self.ignore = ignore  # patterns (relative to the checkpoint) left out of each revision
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
            ignore_patterns=list(self.ignore) or None,
        )
        self.pushed.append(branch)
        logger.info("pushed %s to %s@%s", folder.name, self.repo_id, branch)
        return branch


def model_card(recipe: dict[str, Any], metrics: dict[str, Any], *, hub_model_id: str | None) -> str:
    """grail-rl's model card: what the model is, where it came from, its recipe and metrics.

    TRL's template names a base model it cannot find on the hub "None" (a local folder); here the base
    model is the recipe's ``model.name_or_path``, described as a local folder when it is one.
    """
    import yaml

    base = str((recipe.get("model") or {}).get("name_or_path") or "")
    is_local = base.startswith(("/", ".", "~")) or Path(base).exists()
    front = {"library_name": "transformers", "tags": ["grail-rl", "grpo", "trl"]}
    if base and not is_local:
        front["base_model"] = base
    origin = f"a local model ({Path(base).name})" if is_local else f"[{base}](https://huggingface.co/{base})"
    where = hub_model_id or "PATH/TO/THIS/FOLDER"
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {hub_model_id.split('/')[-1] if hub_model_id else 'grail-rl model'}",
        "",
        f"Trained from {origin} with [grail-rl](https://github.com/) (GRPO, TRL) to predict which video a viewer "
        "clicks next, given the viewer, what they are watching and the slate of options.",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        f'generator = pipeline("text-generation", model="{where}")',
        "```",
        "",
        "Prompts must be built the way grail-rl builds them (`grail-rl preview RECIPE`); the recipe is below.",
        "",
    ]
    return "\n".join(lines) + "\n" + card_section(recipe, metrics)


def card_section(recipe: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The grail-rl part of the model card: the resolved recipe and the run's metrics."""
    import yaml

    recipe_yaml = yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True)
    lines = [CARD_MARK, "## grail-rl", "", "### Metrics", ""]
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


def write_model_card(
    readme: Path, recipe: dict[str, Any], metrics: dict[str, Any], *, hub_model_id: str | None
) -> bool:
    """Write (or refresh) grail-rl's card at ``readme``; a README.md that is not grail-rl's card (the user's
    own notes) is left as it is, and False says so."""
    if readme.exists():
        try:
            ours = CARD_MARK in readme.read_text(encoding="utf-8", errors="replace")
        except OSError:
            ours = False
        if not ours:
            return False
    write_text_atomically(readme, model_card(recipe, metrics, hub_model_id=hub_model_id))
    return True
