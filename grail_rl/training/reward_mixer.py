"""The learnable reward mixer (``reward_mixer.learnable: true``), off by default.

The original's later version mixed its rewards with softmax weights trained by Adam (lr 5e-2) on the
negative mean reward. grail-rl offers it as an option, not the default, because of what that objective does:
the gradient of ``-sum_i softmax(z)_i * mean_i`` moves weight toward whichever reward is currently highest,
so an easy reward (format, or a discriminator that says 0.5 to everything) soaks up the weight whatever it
teaches. With it off the rewards are mixed by the recipe's weights and nothing is appended behind the
user's back.

When on, the weights start at the recipe's (normalised) weights, are updated once per generation round on the
rewards of every process (TRL gathers them, so every rank takes the same step), apply from the next round,
are logged as ``reward_mixer/<reward>`` each step, and are saved in every checkpoint with Adam's state.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class LearnableRewardMixer:
    """Softmax mixing weights trained on -mean reward; a checkpoint state saver."""

    name = "reward_mixer"
    # Turning the mixer on when resuming is a recipe change (--accept-recipe-changes): it then starts at the
    # recipe's weights rather than refusing the resume.
    optional = True

    def __init__(self, names: Sequence[str], weights: Sequence[float], learning_rate: float):
        import torch

        self.names = list(names)
        start = [math.log(max(w, 1e-8)) for w in weights]
        self.logits = torch.tensor(start, dtype=torch.float32, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.logits], lr=learning_rate)
        self.steps = 0

    def weights(self) -> Any:
        import torch

        with torch.no_grad():
            return torch.softmax(self.logits, dim=0).clone()

    def step(self, rewards_per_func: Any) -> list[float]:
        """One Adam step on -sum(w_i * mean reward_i) over the rewards that scored something; the new weights."""
        import torch

        rewards = rewards_per_func.detach().float().cpu()
        scored = ~torch.isnan(rewards)
        counts = scored.sum(dim=0)
        means = torch.where(scored, rewards, torch.zeros_like(rewards)).sum(dim=0) / counts.clamp(min=1)
        mask = (counts > 0).float()  # a reward that abstained on the whole batch gets no gradient
        with torch.enable_grad():
            loss = -(torch.softmax(self.logits, dim=0) * means * mask).sum()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.steps += 1
        return self.weights().tolist()

    def save_state(self, folder: Path) -> None:
        import torch

        torch.save({"logits": self.logits.detach(), "optimizer": self.optimizer.state_dict()}, folder / "mixer.pt")
        (folder / "mixer.json").write_text(
            json.dumps({"rewards": self.names, "weights": self.weights().tolist(), "steps": self.steps}), encoding="utf-8"
        )

    def load_state(self, folder: Path) -> None:
        import torch

        info = json.loads((folder / "mixer.json").read_text(encoding="utf-8"))
        if info.get("rewards") != self.names:
            raise ValueError(f"the checkpoint's mixer mixes {info.get('rewards')}, the recipe's rewards are {self.names}")
        state = torch.load(folder / "mixer.pt", weights_only=True)
        with torch.no_grad():
            self.logits.copy_(state["logits"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = int(info.get("steps", 0))
