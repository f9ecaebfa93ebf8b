"""``GrailGRPOTrainer``: TRL's GRPOTrainer with atomic checkpoints, saved completion samples and hub hooks.

The subclass changes four things and nothing in the GRPO update itself:

- ``_save_checkpoint`` publishes checkpoints atomically (:mod:`grail_rl.training.checkpoints`);
- ``log`` also writes the latest sampled completions of a training step to ``completions/step-N.jsonl``
  (:mod:`grail_rl.training.samples`);
- ``create_model_card`` adds the resolved recipe and the run's metrics to TRL's card;
- ``_push_from_checkpoint`` is held back while a checkpoint is still staged, then runs on the published
  folder, followed by the per-save revision push when the recipe asks for one.

The class is created on first use so importing this module does not import TRL (~4 s).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from grail_rl.training.checkpoints import save_atomically
from grail_rl.training.hub import add_card_section
from grail_rl.training.samples import write_samples


@cache
def trainer_class() -> type:
    from trl import GRPOTrainer

    class GrailGRPOTrainer(GRPOTrainer):
        """GRPOTrainer with atomic checkpoints, completion samples and per-save hub revisions."""

        def __init__(self, *args: Any, save_completions: bool = True, hub_pusher: Any = None, **kwargs: Any):
            self._grail_defer_push = False
            self._grail_save_completions = save_completions
            self._grail_hub_pusher = hub_pusher
            # (resolved recipe, metrics) appended to the model card; run.py fills in metrics at the end.
            self._grail_card: tuple[dict, dict] | None = None
            super().__init__(*args, **kwargs)

        def _save_checkpoint(self, model: Any, trial: Any) -> None:
            final = save_atomically(self, model, trial, super()._save_checkpoint)
            if self.args.push_to_hub:
                self._push_from_checkpoint(str(final))
            if self._grail_hub_pusher is not None and self.is_world_process_zero():
                self._grail_hub_pusher.push_revision(final, self.state.global_step)

        def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
            if self._grail_defer_push:  # still staged: pushed once published (see _save_checkpoint)
                return
            super()._push_from_checkpoint(checkpoint_folder)

        def create_model_card(self, *args: Any, **kwargs: Any) -> None:
            super().create_model_card(*args, **kwargs)
            if self._grail_card is not None and self.is_world_process_zero():
                recipe, metrics = self._grail_card
                add_card_section(Path(self.args.output_dir) / "README.md", recipe, metrics)

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            training = self.model.training
            if (
                training
                and self._grail_save_completions
                and self.accelerator.is_main_process
                and self._logs["prompt"]
            ):
                write_samples(Path(self.args.output_dir), self.state.global_step, self._logs)
            super().log(logs, start_time)

    return GrailGRPOTrainer


def build_trainer(
    *,
    model: Any,
    tokenizer: Any,
    config: Any,
    reward_funcs: list[Any],
    train_dataset: Any,
    eval_dataset: Any = None,
    peft_config: Any = None,
    callbacks: list[Any] | None = None,
    save_completions: bool = True,
    hub_pusher: Any = None,
) -> Any:
    """A ready :class:`GrailGRPOTrainer` for an already loaded model and tokenizer."""
    cls = trainer_class()
    return cls(
        model=model,
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        callbacks=callbacks or [],
        peft_config=peft_config,
        save_completions=save_completions,
        hub_pusher=hub_pusher,
    )
