"""The online training around a discriminator plugin, its health, and its checkpointed state.

A discriminator plugin only scores texts and takes one step on a minibatch. :class:`DiscriminatorRuntime`
does the rest, so every plugin gets the same behaviour for the recipe's ``discriminator:`` keys:

- **positives** are the gold choices of the batch (once per prompt), **negatives** the policy's valid wrong
  choices plus ``extra_negatives`` other in-slate options per prompt, and up to ``replay_size`` past
  negatives kept in a replay buffer;
- after each batch of completions, ``updates_per_step`` updates on minibatches of ``minibatch_size`` texts
  (half real, half fake), drawn with the runtime's own seeded RNG;
- ``warmup_steps`` updates on gold choices against random in-slate options before the policy's first update;
- ``train: false`` never updates; nothing updates outside a policy training step (in-training evaluation);
- prompts chosen by a hash (``heldout_share``) are never trained on: their gold choices and the policy's
  wrong choices on them (training steps only, never evaluation rows) are kept, up to ``heldout_window`` texts
  of each class, and all of them are re-scored by the current discriminator at every step for the AUC;
- with several processes, the texts of every rank are gathered first (a prompt whose generations were split
  across ranks is merged back into one), so each rank takes the same steps in the same order from the same
  start (the plugins initialise from the run's seed), and each update runs under the same torch seed on every
  rank (dropout masks included): one discriminator;
- whatever the plugin raises or returns wrongly stops training (:class:`DiscriminatorFailure`), whatever the
  reward's ``on_fault`` says: abstaining cannot mend a broken discriminator;
- health metrics are logged each call (``discriminator/...``) and a warning names the knob to turn when the
  AUC stays near 1.0 or near 0.5 for ``collapse_patience`` policy steps;
- it is a checkpoint state saver (:class:`grail_rl.training.checkpoints.StateSaver`): the plugin's weights and
  optimizer, the replay buffer, the RNG, the update counter and the health windows are saved with every
  policy checkpoint and restored on ``--resume``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grail_rl.errors import describe_exception
from grail_rl.grail.settings import STATE_FILE, STATE_NAME, TEXTS_FILE
from grail_rl.grail.texts import option_text
from grail_rl.plugins.base import Discriminator, PluginContext
from grail_rl.rewards.faults import FatalRewardError

logger = logging.getLogger("grail_rl.training")

MIN_AUC_PAIRS = 8  # fewer held-out texts of a class than this: no AUC yet
AUC_HIGH, AUC_LOW = 0.98, 0.55  # the collapse zones: the discriminator always wins / learns nothing
FRESH_HINT = "or pass --fresh-discriminator to resume with a new, untrained discriminator"


class DiscriminatorFailure(FatalRewardError):
    """The discriminator plugin raised or returned something unusable: training stops, naming it."""


@dataclass
class ChoiceBatchRow:
    """What the discriminator learns from one prompt of a batch."""

    gold: str  # the text of the viewer's real choice
    policy_wrong: list[str]  # the texts of the policy's valid choices that were not the gold one
    others: list[str]  # the texts of the other in-slate options (candidates for extra negatives)
    heldout: bool = False


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(a random positive scores above a random negative), ties counted half (Mann-Whitney U / n1 n2)."""
    if not positives or not negatives:
        return None
    ranked = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2  # 1-based ranks i+1..j share their mean
        rank_sum += average_rank * sum(label for _, label in ranked[i:j])
        i = j
    n1, n0 = len(positives), len(negatives)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)


def is_heldout(context: str, share: float) -> bool:
    """Whether the prompt with this context is held out (the same answer in every process and run)."""
    return share > 0 and zlib.crc32(context.encode("utf-8", "surrogatepass")) % 10_000 < share * 10_000


class DiscriminatorRuntime:
    """One discriminator plugin trained online as the recipe's ``discriminator:`` block says."""

    name = STATE_NAME  # the folder of its state inside a checkpoint
    fresh_hint = FRESH_HINT  # what to do when a checkpoint's state cannot be restored

    def __init__(self, plugin: Discriminator, keys: Any, *, plugin_name: str = "?"):
        self.plugin = plugin
        self.keys = keys
        self.label = f"discriminator '{plugin.name}' (plugin '{plugin_name}')"
        self.rng = random.Random(0)
        self.replay: deque[str] = deque(maxlen=max(keys.replay_size, 1))
        self.updates = 0
        self.warmup_done = 0
        self.heldout_real: deque[str] = deque(maxlen=keys.heldout_window)
        self.heldout_fake: deque[str] = deque(maxlen=keys.heldout_window)
        self.last_auc: float | None = None
        self.streaks = {"high": 0, "low": 0}
        self.warned: set[str] = set()
        self.last_step: int | None = None
        self.context: PluginContext | None = None
        self._in_training: Callable[[], bool] = lambda: True

    # -- set-up ------------------------------------------------------------------------------------------

    def device_for(self, context: PluginContext) -> str:
        """The device the block's ``device`` names (``auto``: the run's own device for this process)."""
        wanted = self.keys.device
        if wanted == "auto":
            return context.device
        if wanted == "cuda":
            return f"cuda:{context.local_rank}"
        return wanted

    def setup(self, context: PluginContext, *, resuming: bool = False) -> None:
        """Build the plugin on its device with the run's seed (the same start in every process), then load
        ``init_from`` unless the run resumes (its checkpoint's state is restored instead)."""
        device = self.device_for(context)
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise DiscriminatorFailure(
                    f"discriminator.device is {self.keys.device!r} but this machine has no CUDA GPU; "
                    "set discriminator.device: auto or cpu"
                )
        self.context = replace(context, device=device)
        self.rng = random.Random(context.seed)
        if context.in_training_step is not None:
            self._in_training = context.in_training_step
        self._call("set up", self.plugin.setup, self.context)
        if self.keys.init_from is not None and not resuming:  # a resume takes the state from its checkpoint
            self.load_state(self.keys.init_from, weights_only=True)
            if self.context.is_main_process:
                logger.info("discriminator: started from %s (%d updates so far)", self.keys.init_from, self.updates)

    def _call(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except (DiscriminatorFailure, KeyboardInterrupt):
            raise
        except BaseException as exc:  # plugin code: sys.exit included
            raise DiscriminatorFailure(f"{self.label} failed to {what}: {describe_exception(exc)}") from exc

    # -- scoring -----------------------------------------------------------------------------------------

    def score(self, texts: Sequence[str]) -> list[float]:
        """P(real) of each text, checked: one finite number in [0, 1] per text."""
        if not texts:
            return []
        values = self._call("score", self.plugin.score, list(texts))
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError) as exc:
            raise DiscriminatorFailure(f"{self.label}: score returned something that is not numbers ({exc})") from exc
        if len(values) != len(texts):
            raise DiscriminatorFailure(f"{self.label}: score returned {len(values)} values for {len(texts)} texts")
        bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
        if bad:
            raise DiscriminatorFailure(f"{self.label}: score returned {bad[0]!r}, not a probability in [0, 1]")
        return values

    # -- online learning ---------------------------------------------------------------------------------

    @property
    def world_size(self) -> int:
        return self.context.world_size if self.context is not None else 1

    def _gather(self, items: list[Any]) -> list[Any]:
        """Every rank's items, in rank order, on every rank (the same list everywhere)."""
        if self.world_size <= 1:
            return items
        from accelerate.utils import gather_object

        return list(gather_object(items))  # the ranks' lists, concatenated in rank order

    def exchange(self, rows: Sequence[ChoiceBatchRow]) -> list[ChoiceBatchRow]:
        """Every rank's rows, merged into one row per prompt: the same list on every rank. A collective: every
        rank calls it once per reward call, before anything that could fail on one rank only."""
        return merge_rows(self._gather(list(rows)))

    def learn(
        self,
        rows: Sequence[ChoiceBatchRow],
        *,
        step: int | None,
        log: Callable[[str, float], None] | None,
        exchanged: bool = False,
    ) -> dict[str, float]:
        """In a policy training step, keep the held-out pairs and update on the rest; log and check health.
        ``rows`` are this rank's, gathered here, or (``exchanged=True``) what :meth:`exchange` returned."""
        gathered = list(rows) if exchanged else self.exchange(rows)
        metrics: dict[str, float] = {}
        if self._in_training():  # never from in-training evaluation: its rows are not the policy's training data
            heldout = [row for row in gathered if row.heldout]
            self.heldout_real.extend(row.gold for row in heldout)
            self.heldout_fake.extend(text for row in heldout for text in row.policy_wrong)
            training = [row for row in gathered if not row.heldout]
            if self.keys.train and training:
                real = [row.gold for row in training]
                fake = [text for row in training for text in row.policy_wrong]
                for row in training:
                    if self.keys.extra_negatives and row.others:
                        fake += self.rng.sample(row.others, min(self.keys.extra_negatives, len(row.others)))
                metrics.update(self._updates(real, fake, self.keys.updates_per_step))
                if self.keys.replay_size:
                    self.replay.extend(fake)
            self.last_auc = self.auc()
            self._check_collapse(self.last_auc, step)
        if self.last_auc is not None:
            metrics["auc"] = self.last_auc
        metrics["replay_size"] = float(len(self.replay) if self.keys.replay_size else 0)
        metrics["updates"] = float(self.updates)
        if log is not None:
            for key, number in metrics.items():
                log(f"discriminator/{key}", number)
        return metrics

    def _updates(self, real: list[str], fake: list[str], count: int) -> dict[str, float]:
        """``count`` minibatch updates (the odd text real); the mean of the metrics the plugin reported."""
        if not real or not (fake or self.replay):
            return {}
        n_fake = self.keys.minibatch_size // 2
        n_real = self.keys.minibatch_size - n_fake
        pool = fake + list(self.replay) if self.keys.replay_size else fake
        reported: dict[str, list[float]] = {}
        for _ in range(count):
            batch_real = [self.rng.choice(real) for _ in range(n_real)]
            batch_fake = [self.rng.choice(pool) for _ in range(n_fake)]
            for key, value in self._update(batch_real, batch_fake).items():
                reported.setdefault(key, []).append(value)
        return {key: sum(values) / len(values) for key, values in reported.items()}

    def _update(self, real: list[str], fake: list[str]) -> dict[str, float]:
        """One plugin update under a torch seed drawn from the runtime's RNG (the same on every rank, so dropout
        and any other randomness inside the update cannot make the ranks' discriminators differ)."""
        import torch

        seed = self.rng.randrange(2**31)
        device = self.context.device if self.context is not None else "cpu"
        cuda = [torch.device(device).index or 0] if device.startswith("cuda") else []
        # Only the CPU generator and the discriminator's own GPU are seeded (and put back afterwards):
        # torch.manual_seed would also reseed every GPU alike, and the policy's sampling on them with it.
        with torch.random.fork_rng(devices=cuda), torch.enable_grad():
            torch.default_generator.manual_seed(seed)
            if cuda:
                with torch.cuda.device(cuda[0]):
                    torch.cuda.manual_seed(seed)
            result = self._call("update", self.plugin.update, real, fake)
        self.updates += 1
        if not isinstance(result, dict):
            raise DiscriminatorFailure(
                f"{self.label}: update returned {type(result).__name__} {result!r:.60}, not a dict of metrics"
            )
        metrics: dict[str, float] = {}
        for key, value in result.items():
            try:
                number = float(value)  # plain numbers, numpy scalars and 0-d tensors alike
            except Exception as exc:  # noqa: BLE001 (a tensor of several values or a complex one raises RuntimeError)
                if key == "loss":
                    raise DiscriminatorFailure(
                        f"{self.label}: update returned a loss that is not one number ({describe_exception(exc)})"
                    ) from exc
                continue
            if key == "loss" and not math.isfinite(number):
                raise DiscriminatorFailure(
                    f"{self.label}: the update's loss is {number} at update {self.updates}; lower the "
                    "discriminator's learning_rate"
                )
            if math.isfinite(number):
                metrics[str(key)] = number
        return metrics

    def warmup(self, dataset: Any) -> dict[str, float]:
        """``warmup_steps`` updates on gold choices against random other in-slate options (a fresh start only)."""
        todo = self.keys.warmup_steps - self.warmup_done
        if not self.keys.train or todo <= 0 or self.updates > self.warmup_done:
            return {}
        several = [i for i in range(len(dataset)) if dataset[i]["n_options"] >= 2]
        candidates = [i for i in several if not is_heldout(_context_of(dataset[i]), self.keys.heldout_share)]
        if not candidates:
            why = "no training row has two or more options" if not several else (
                "every training row with two or more options is held out (heldout_share)"
            )
            logger.warning("discriminator warmup skipped: %s", why)
            return {}
        n_fake = self.keys.minibatch_size // 2
        n_real = self.keys.minibatch_size - n_fake
        losses, accuracies = [], []
        for _ in range(todo):
            real, fake = [], []
            for i in range(n_real):
                row = dataset[self.rng.choice(candidates)]
                gold = int(row["gold_index"])
                real.append(row_option_text(row, gold))
                if i < n_fake:  # the other option of the same viewer is the fake text
                    other = self.rng.choice([j for j in range(1, int(row["n_options"]) + 1) if j != gold])
                    fake.append(row_option_text(row, other))
            result = self._update(real, fake)
            self.warmup_done += 1
            losses.append(result.get("loss", math.nan))
            accuracies.append(result.get("accuracy", math.nan))
        summary = {"loss": sum(losses) / len(losses), "accuracy": sum(accuracies) / len(accuracies)}
        if self.context is None or self.context.is_main_process:
            logger.info(
                "discriminator warmup: %d updates, last loss %.3f, accuracy %.2f", todo, losses[-1], summary["accuracy"]
            )
        return summary

    # -- health ------------------------------------------------------------------------------------------

    def auc(self) -> float | None:
        """The current discriminator's AUC on the held-out window (every text re-scored now), or None."""
        if len(self.heldout_real) < MIN_AUC_PAIRS or len(self.heldout_fake) < MIN_AUC_PAIRS:
            return None
        return auc(self.score(list(self.heldout_real)), self.score(list(self.heldout_fake)))

    def _check_collapse(self, value: float | None, step: int | None) -> None:
        if value is None or step is None or step == self.last_step:
            return
        self.last_step = step
        self.streaks["high"] = self.streaks["high"] + 1 if value >= AUC_HIGH else 0
        self.streaks["low"] = self.streaks["low"] + 1 if value <= AUC_LOW else 0
        patience = self.keys.collapse_patience
        main = self.context is None or self.context.is_main_process
        if self.streaks["high"] == patience and main:
            logger.warning(
                "discriminator: held-out AUC %.3f has stayed >= %.2f for %d steps: it tells every policy choice from "
                "the human one, so the gail reward gives the policy no signal. Lower discriminator learning_rate or "
                "updates_per_step, raise replay_size, or lower the gail reward's weight.",
                value, AUC_HIGH, patience,
            )  # fmt: skip
        if self.streaks["low"] == patience and main:
            logger.warning(
                "discriminator: held-out AUC %.3f has stayed <= %.2f for %d steps: it learns nothing. Raise "
                "discriminator learning_rate, updates_per_step or warmup_steps; check that the data has slates of two "
                "or more options.",
                value, AUC_LOW, patience,
            )  # fmt: skip

    # -- state -------------------------------------------------------------------------------------------

    def digest(self) -> str | None:
        """sha256 over the plugin's ``model`` parameters (None when it has no torch ``model``): equal digests
        on every rank mean one discriminator."""
        import hashlib

        state_dict = getattr(getattr(self.plugin, "model", None), "state_dict", None)
        if not callable(state_dict):
            return None
        import torch

        digest = hashlib.sha256()
        for name, tensor in sorted(state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def save_state(self, folder: Path) -> None:
        """The plugin's state (``plugin/``), the counters and RNG (``runtime.json``) and, apart, the texts the
        runtime keeps (``texts.json``: the replay buffer and the held-out windows). Those texts are viewers'
        data: the hub push leaves ``texts.json`` out unless ``hub.push_data_files`` says otherwise."""
        plugin_dir = folder / "plugin"
        plugin_dir.mkdir(parents=True, exist_ok=True)
        self._call("save its state", self.plugin.save, plugin_dir)
        state = {
            "plugin": self.plugin.name,
            "updates": self.updates,
            "warmup_done": self.warmup_done,
            "rng": _rng_to_json(self.rng.getstate()),
            "streaks": self.streaks,
            "last_step": self.last_step,
            "last_auc": self.last_auc,
        }
        texts = {
            "replay": list(self.replay) if self.keys.replay_size else [],
            "heldout_real": list(self.heldout_real),
            "heldout_fake": list(self.heldout_fake),
        }
        (folder / TEXTS_FILE).write_text(json.dumps(texts), encoding="utf-8")
        (folder / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")

    def load_state(self, folder: Path, *, weights_only: bool = False) -> None:
        """Restore what :meth:`save_state` wrote. ``weights_only`` (``init_from``): the plugin's state and the
        update counters only; the replay buffer, held-out windows, health and RNG start with this run."""
        state = read_state(folder)
        if state.get("plugin") != self.plugin.name:
            raise DiscriminatorFailure(
                f"{folder} holds a '{state.get('plugin')}' discriminator, the recipe's is '{self.plugin.name}'; "
                f"use the same discriminator, {FRESH_HINT}"
            )
        self._call("load its state", self.plugin.load, folder / "plugin")
        try:
            self.updates = int(state.get("updates", 0))
            self.warmup_done = int(state.get("warmup_done", 0))
            if weights_only:
                return
            texts = json.loads((folder / TEXTS_FILE).read_text(encoding="utf-8")) if (folder / TEXTS_FILE).is_file() else {}
            self.replay = deque(_strings(texts.get("replay")), maxlen=max(self.keys.replay_size, 1))
            self.rng.setstate(_rng_from_json(state["rng"]))
            self.heldout_real = deque(_strings(texts.get("heldout_real")), maxlen=self.keys.heldout_window)
            self.heldout_fake = deque(_strings(texts.get("heldout_fake")), maxlen=self.keys.heldout_window)
            self.streaks = dict(state.get("streaks", {"high": 0, "low": 0}))
            self.last_step = state.get("last_step")
            self.last_auc = state.get("last_auc")
        except (KeyError, TypeError, ValueError) as exc:
            raise DiscriminatorFailure(f"{folder}: the discriminator state is damaged ({type(exc).__name__}: {exc})") from exc

    def callback(self, train_dataset: Any) -> Any:
        """The trainer callback that runs the warmup before the policy's first update."""
        from transformers import TrainerCallback

        runtime = self

        class DiscriminatorWarmup(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                runtime.warmup(train_dataset)

        return DiscriminatorWarmup()


def merge_rows(rows: Sequence[ChoiceBatchRow]) -> list[ChoiceBatchRow]:
    """One row per prompt: a prompt whose generations were split across ranks comes back as one row (its gold
    counted once, every rank's wrong choices kept), in first-seen order."""
    merged: dict[str, ChoiceBatchRow] = {}
    for row in rows:
        first = merged.get(row.gold)
        if first is None:
            merged[row.gold] = ChoiceBatchRow(row.gold, list(row.policy_wrong), list(row.others), row.heldout)
        else:
            first.policy_wrong.extend(row.policy_wrong)
    return list(merged.values())


def read_state(folder: Path) -> dict[str, Any]:
    """The ``runtime.json`` of a discriminator state folder; one clear error when it is missing or damaged."""
    path = folder / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DiscriminatorFailure(f"{path}: cannot read the discriminator state ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise DiscriminatorFailure(f"{path}: not a discriminator state (a JSON object was expected)")
    return state


def _strings(values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _context_of(row: Any) -> str:
    from grail_rl.grail.texts import prompt_context

    return prompt_context(row["prompt"])


def row_option_text(row: Any, index: int) -> str:
    """The discriminator's text for option ``index`` of a dataset row."""
    return option_text(row["prompt"], row["slate_titles"], row.get("slate_channels"), index)


def _rng_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)
