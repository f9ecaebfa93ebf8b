"""``GrailGRPOTrainer``: TRL's GRPOTrainer with atomic checkpoints, saved completion samples and hub hooks.

The subclass changes these things and nothing in the GRPO update itself:

- ``_save_checkpoint`` publishes checkpoints atomically, with a marker recording their files' digests and
  the recipe and plugins they were trained with, and the extra state of the ``state_savers`` it was given
  (the discriminator) inside the same staging window (:mod:`grail_rl.training.checkpoints`);
- ``log`` also writes the latest sampled completions of a training step to ``completions/step-N.jsonl``
  (:mod:`grail_rl.training.samples`);
- ``create_model_card`` writes grail-rl's card (base model, recipe, metrics) instead of TRL's template,
  which names a local base model "None";
- ``push_to_hub`` and ``_push_from_checkpoint`` upload the output folder without the files that hold
  participants' data (:data:`grail_rl.training.hub.DATA_FILES`) unless ``hub.push_data_files`` says so, and
  never grail-rl's lock or set-aside folders; the checkpoint push is held back while a checkpoint is still
  staged, then runs on the published folder, followed by the per-save revision push when asked for;
- ``_calculate_rewards`` lets the learnable reward mixer (off by default, see
  :mod:`grail_rl.training.reward_mixer`) set the weights of each round and learn from its rewards;
- ``_load_from_checkpoint`` re-ties tied embeddings instead of warning that ``lm_head.weight`` is missing.

The class is created on first use so importing this module does not import TRL (~4 s).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

from grail_rl.training.checkpoints import save_atomically
from grail_rl.training.hub import hidden_from_hub, uploads_ignoring, write_model_card
from grail_rl.training.samples import write_samples

logger = logging.getLogger("grail_rl.training")


@cache
def trainer_class() -> type:
    from trl import GRPOTrainer

    class GrailGRPOTrainer(GRPOTrainer):
        """GRPOTrainer with atomic checkpoints, completion samples and per-save hub revisions."""

        def __init__(
            self,
            *args: Any,
            save_completions: bool = True,
            hub_pusher: Any = None,
            checkpoint_info: dict[str, Any] | None = None,
            card: tuple[dict, dict] | None = None,
            push_data_files: bool = False,
            state_savers: list[Any] | None = None,
            reward_mixer: Any = None,
            **kwargs: Any,
        ):
            self._grail_defer_push = False
            # Extra state written into every checkpoint (see checkpoints.StateSaver): the discriminator, ...
            self._grail_state_savers = list(state_savers or [])
            # The learnable reward mixer (reward_mixer.learnable), or None: the recipe's weights, fixed.
            self._grail_mixer = reward_mixer
            self._grail_save_completions = save_completions
            self._grail_hub_pusher = hub_pusher
            # Written into every checkpoint's marker: what --resume compares the current recipe with.
            self._grail_checkpoint_info = dict(checkpoint_info or {})
            # (resolved recipe, metrics) of the model card; run.py fills in metrics at the end.
            self._grail_card: tuple[dict, dict] | None = card
            self._grail_hub_hidden = hidden_from_hub(push_data_files)
            super().__init__(*args, **kwargs)

        def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
            mixer = self._grail_mixer
            if mixer is None:
                return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self.reward_weights = mixer.weights()  # the weights learned up to the previous round
            rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            if self.model.training:  # rewards_per_func holds every process's rewards: every rank takes this step
                for name, weight in zip(mixer.names, mixer.step(rewards_per_func), strict=True):
                    self._log_metric(f"reward_mixer/{name}", weight)
            return rewards_per_func

        def _save_checkpoint(self, model: Any, trial: Any) -> None:
            final = save_atomically(self, model, trial, super()._save_checkpoint)
            if self.args.push_to_hub:
                self._push_from_checkpoint(str(final))
            if self._grail_hub_pusher is not None and self.is_world_process_zero():
                self._grail_hub_pusher.push_revision(final, self.state.global_step)

        def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
            if self._grail_defer_push:  # still staged: pushed once published (see _save_checkpoint)
                return
            with uploads_ignoring(self._grail_hub_hidden):
                super()._push_from_checkpoint(checkpoint_folder)

        def push_to_hub(self, *args: Any, **kwargs: Any) -> Any:
            with uploads_ignoring(self._grail_hub_hidden):
                return super().push_to_hub(*args, **kwargs)

        def create_model_card(self, *args: Any, **kwargs: Any) -> None:
            if not self.is_world_process_zero():
                return
            recipe, metrics = self._grail_card or ({}, {})
            readme = Path(self.args.output_dir) / "README.md"
            if not write_model_card(readme, recipe, metrics, hub_model_id=self.args.hub_model_id):
                if not getattr(self, "_grail_card_warned", False):
                    logger.warning("%s is not grail-rl's model card: left as it is, no card written", readme)
                    self._grail_card_warned = True

        def _issue_warnings_after_load(self, load_result: Any) -> None:
            # Tied weights (lm_head = the input embeddings) are saved once; loading a checkpoint then lists
            # lm_head.weight as missing although nothing is. Re-tie and stay quiet about exactly that case.
            tied = set(getattr(self.model, "_tied_weights_keys", None) or [])
            model = self.accelerator.unwrap_model(self.model)
            if getattr(model.config, "tie_word_embeddings", False) and load_result.missing_keys:
                missing = set(load_result.missing_keys)
                if missing <= (tied | {"lm_head.weight"}):
                    model.tie_weights()
                    load_result = type(load_result)([], list(load_result.unexpected_keys))
            super()._issue_warnings_after_load(load_result)

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
    checkpoint_info: dict[str, Any] | None = None,
    card: tuple[dict, dict] | None = None,
    push_data_files: bool = False,
    state_savers: list[Any] | None = None,
    reward_mixer: Any = None,
) -> Any:
    """A ready :class:`GrailGRPOTrainer` for an already loaded model and tokenizer."""
    cls = trainer_class()
    return cls(
        state_savers=state_savers,
        reward_mixer=reward_mixer,
        checkpoint_info=checkpoint_info,
        card=card,
        push_data_files=push_data_files,
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
