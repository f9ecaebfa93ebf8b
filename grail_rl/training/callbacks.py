"""Trainer callbacks: a rich progress bar, one compact line per logged step, and the run's log files.

On the main process every log event becomes

- one console line (``step 12/40 | reward 0.41 | accuracy 0.38 | ... | 0.31 s/step``),
- the same line in ``OUTPUT/train.log`` (through the ``grail_rl.training`` logger, see :func:`attach_log_file`),
- a JSON line with every metric in ``OUTPUT/metrics.jsonl`` (what the end-of-run summary reads).

The trainer's closing log event (``train_runtime`` and friends) goes to the files only: on the console it
would be a bare ``step 40/40`` line after the last real one.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from grail_rl.run_layout import LOG_FILE, METRICS_FILE

logger = logging.getLogger("grail_rl.training")

# The metrics the compact line shows first, in this order; per-reward means follow.
_HEAD = ("loss", "reward", "reward_std", "grad_norm", "learning_rate", "kl", "entropy")
# The discriminator's health (GRAIL runs), shown after the rewards under these short labels.
_DISCRIMINATOR = {"discriminator/auc": "D_auc", "discriminator/p_real_gold": "D_gold", "discriminator/p_real_policy": "D_policy", "discriminator/loss": "D_loss"}
# TRL 1.16 reads ``model.is_gradient_checkpointing`` and calls ``gradient_checkpointing_disable/enable``
# around every generation (trl.models.utils.disable_gradient_checkpointing); transformers 5 deprecated those
# names, so each run printed three FutureWarnings that no recipe setting can avoid. Only these are silenced.
_UPSTREAM_DEPRECATIONS = r"`(is_gradient_checkpointing|gradient_checkpointing_(en|dis)able)` is deprecated"


def compact_line(logs: dict[str, Any], step: int, max_steps: int, seconds_per_step: float | None) -> str:
    """``step 3/10 | loss 0.0123 | reward 0.41 | accuracy 0.38 | grad_norm 0.2 | lr 1.0e-05 | 0.31 s/step``."""
    parts = [f"step {step}/{max_steps}"]
    prefix = "eval_" if any(k.startswith("eval_") for k in logs) else ""
    if prefix:
        parts[0] += " eval"
    for key in _HEAD:
        value = logs.get(prefix + key)
        if isinstance(value, int | float):
            label = "lr" if key == "learning_rate" else key
            parts.append(f"{label} {_fmt(value)}")
    for key, value in logs.items():
        if key.startswith(prefix + "rewards/") and key.endswith("/mean") and isinstance(value, int | float):
            parts.append(f"{key[len(prefix) + 8 : -5]} {_fmt(value)}")
    for key, label in _DISCRIMINATOR.items():
        value = logs.get(prefix + key)
        if isinstance(value, int | float):
            parts.append(f"{label} {_fmt(value)}")
    if seconds_per_step is not None and not prefix:
        parts.append(f"{seconds_per_step:.2f} s/step")
    return " | ".join(parts)


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.1e}"
    return f"{value:.4g}"


class RunLogCallback(TrainerCallback):
    """Console progress and per-step lines, ``train.log`` and ``metrics.jsonl`` (main process only)."""

    def __init__(self, output_dir: Path, *, console: bool = True):
        self.output_dir = output_dir
        self.console = console
        self.progress: Any = None
        self.task: Any = None
        self._last_time: float | None = None
        self._last_step = 0
        warnings.filterwarnings("ignore", message=_UPSTREAM_DEPRECATIONS, category=FutureWarning)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        if state.global_step > 0:
            trim_metrics(self.output_dir / METRICS_FILE, state.global_step)
        self._last_time, self._last_step = time.perf_counter(), state.global_step
        if self.console:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        now = time.perf_counter()
        steps = state.global_step - self._last_step
        per_step = (now - self._last_time) / steps if steps > 0 and self._last_time is not None else None
        if steps > 0:
            self._last_time, self._last_step = now, state.global_step
        runtime = logs.get("train_runtime")  # only in the trainer's end-of-training record
        if isinstance(runtime, int | float):
            logger.info(
                "step %d/%d | training done in %.1f s", state.global_step, state.max_steps, runtime, extra=FILE_ONLY
            )
        else:
            line = compact_line(logs, state.global_step, state.max_steps, per_step)
            logger.info(line, extra=FILE_ONLY)
            if self.progress is not None:
                self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
            elif self.console:
                print(line, flush=True)
        record = {"step": state.global_step, "time": time.time(), **logs}
        with (self.output_dir / METRICS_FILE).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=_json_default) + "\n")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def trim_metrics(path: Path, step: int) -> None:
    """Drop the records after ``step`` (what a resumed run logs again) and any half-written line, so each step
    is in ``metrics.jsonl`` once and the summary's curves count it once."""
    if not path.is_file():
        return
    from grail_rl.files import atomic_output

    kept = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    with atomic_output(path) as out:
        out.writelines(kept)


def _json_default(value: Any) -> Any:
    return float(value) if hasattr(value, "__float__") else str(value)


# A record logged with ``extra=FILE_ONLY`` goes to train.log but not to the console (the per-step line,
# which the console shows through the progress display instead).
FILE_ONLY = {"grail_file_only": True}
_LOGGERS = ("grail_rl", "trl", "transformers")


class _ConsoleFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "grail_file_only", False)


def attach_log_file(output_dir: Path) -> list[logging.Handler]:
    """Send grail-rl, TRL and transformers log records to ``OUTPUT/train.log``, and grail-rl's own notes and
    warnings (the drop counts, a skipped checkpoint) to stderr too; return the handlers."""
    handler = logging.FileHandler(output_dir / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in _LOGGERS:
        named = logging.getLogger(name)
        named.addHandler(handler)
        if named.level == logging.NOTSET or named.level > logging.INFO:
            named.setLevel(logging.INFO if name == "grail_rl" else logging.WARNING)
    console = logging.StreamHandler()  # stderr
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    console.addFilter(_ConsoleFilter())
    logging.getLogger("grail_rl").addHandler(console)
    return [handler, console]


def detach_log_file(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(handler)
        handler.close()
