"""What the built-in discriminators share: a torch model giving one logit per text, trained with BCE.

A subclass builds ``self.model`` (any ``torch.nn.Module``) and the optimizer in ``setup`` and computes logits
in ``logits(texts)``; this class scores (sigmoid, in batches, without gradients), takes one update (binary
cross-entropy, optional gradient clipping) and saves and loads the model with its optimizer. Torch is
imported only when these run.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grail_rl.plugins.base import Discriminator, PluginContext


class TorchDiscriminator(Discriminator):
    """A discriminator whose ``model`` gives one logit per text (P(real) = sigmoid)."""

    score_batch_size = 1024  # texts per forward pass when scoring
    max_grad_norm: float | None = None  # gradient clipping of each update; None: none

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.model: Any = None
        self.optimizer: Any = None
        self.device = "cpu"

    @abc.abstractmethod
    def logits(self, texts: Sequence[str]) -> Any:
        """A float tensor of one logit per text, on ``self.device``."""

    def _ready(self) -> None:
        if self.model is None:  # used outside a run: build on the CPU with seed 0
            self.setup(PluginContext(device="cpu"))

    def score(self, texts: Sequence[str]) -> list[float]:
        import torch

        self._ready()
        self.model.eval()
        out: list[float] = []
        with torch.no_grad():
            for start in range(0, len(texts), self.score_batch_size):
                out += torch.sigmoid(self.logits(texts[start : start + self.score_batch_size])).float().cpu().tolist()
        return out

    def update(self, real: Sequence[str], fake: Sequence[str]) -> dict[str, float]:
        import torch

        self._ready()
        texts = [*real, *fake]
        if not texts:
            return {}
        self.model.train()
        labels = torch.tensor([1.0] * len(real) + [0.0] * len(fake), device=self.device)
        logits = self.logits(texts).float()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.model.eval()
        accuracy = ((logits.detach() > 0).float() == labels).float().mean()
        return {"loss": float(loss.detach()), "accuracy": float(accuracy)}

    def save(self, directory: Path) -> None:
        import torch

        self._ready()
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}, directory / f"{self.name}.pt")

    def load(self, directory: Path) -> None:
        import torch

        self._ready()
        state = torch.load(directory / f"{self.name}.pt", map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
