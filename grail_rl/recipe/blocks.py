"""The fixed sections of a recipe: model, trainer (the GRPO knobs), launch, logging, hub and output.

Fields marked with :func:`trl_field` go to ``trl.GRPOConfig`` under the same name (a test proves each
exists in the installed TRL); the others are consumed by grail-rl itself. Defaults equal TRL 1.16's unless
the description says otherwise.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from grail_rl.recipe.fields import Block, ExistingFile, FiniteMapping, RecipePath, trl_field


class LoraBlock(Block):
    """LoRA adapters (PEFT) instead of full fine-tuning."""

    r: int = Field(16, ge=1, description="Rank of the LoRA update matrices.")
    alpha: int = Field(32, ge=1, description="LoRA scaling factor (lora_alpha).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt, or 'all-linear'."
    )


class ModelBlock(Block):
    """The policy model and its tokenizer."""

    name_or_path: str = Field(description="A local model folder or a hub model id.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to load.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype when loading; 'auto' uses the checkpoint's."
    )
    attn_implementation: str | None = Field(
        None, description="Attention implementation (e.g. 'sdpa', 'eager', 'flash_attention_2'); None = default."
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the hub repository to run.")
    chat_template: str | None = Field(None, description="A Jinja chat template replacing the tokenizer's.")
    chat_template_file: ExistingFile | None = Field(None, description="A file holding the chat template.")
    lora: LoraBlock | None = Field(None, description="Train LoRA adapters instead of all weights.")
    gguf_file: str | None = Field(
        None,
        description="A GGUF file to load (its name inside name_or_path, or a path): dequantized once into a cached "
        "float32 folder ($GRAIL_RL_CACHE or ~/.cache/grail-rl), needs the gguf package.",
    )

    @model_validator(mode="after")
    def _one_template(self) -> ModelBlock:
        if self.chat_template is not None and self.chat_template_file is not None:
            raise ValueError("set chat_template or chat_template_file, not both")
        if self.gguf_file is not None and self.revision is not None:
            raise ValueError("gguf_file loads a local GGUF file; model.revision picks a hub revision: remove one")
        return self


class TrainerBlock(Block):
    """GRPO knobs, passed to trl.GRPOConfig under the same names."""

    learning_rate: float = trl_field(1e-6, gt=0, description="Peak learning rate of AdamW.")
    lr_scheduler_type: Literal[
        "linear",
        "cosine",
        "cosine_with_restarts",
        "polynomial",
        "constant",
        "constant_with_warmup",
        "inverse_sqrt",
        "cosine_with_min_lr",
        "warmup_stable_decay",
    ] = trl_field("linear", description="Learning-rate schedule.")
    lr_scheduler_kwargs: FiniteMapping | None = trl_field(
        None, description="Extra arguments of the schedule (e.g. num_cycles for cosine); checked against it."
    )
    warmup_steps: float = trl_field(
        0, ge=0, description="Warmup steps; a value in [0, 1) is a fraction of the total steps."
    )
    optim: str = trl_field("adamw_torch_fused", description="Optimizer name as transformers knows it.")
    weight_decay: float = trl_field(0.0, ge=0, description="AdamW weight decay.")
    adam_beta1: float = trl_field(0.9, ge=0, lt=1, description="AdamW beta1.")
    adam_beta2: float = trl_field(0.999, ge=0, lt=1, description="AdamW beta2.")
    adam_epsilon: float = trl_field(1e-8, gt=0, description="AdamW epsilon.")
    max_grad_norm: float = trl_field(1.0, ge=0, description="Gradient clipping norm; 0 disables clipping.")
    num_train_epochs: float = trl_field(3.0, gt=0, description="Epochs over the training prompts.")
    max_steps: int = trl_field(-1, description="Total optimizer steps; overrides num_train_epochs when > 0.")
    per_device_train_batch_size: int = trl_field(
        8, ge=1, description="Completions per device per micro-batch (prompts x generations)."
    )
    per_device_eval_batch_size: int = trl_field(8, ge=1, description="Completions per device per eval batch.")
    gradient_accumulation_steps: int = trl_field(1, ge=1, description="Micro-batches per optimizer step.")
    steps_per_generation: int | None = trl_field(
        None, ge=1, description="Optimizer micro-steps per generation round; None = gradient_accumulation_steps."
    )
    num_generations: int = trl_field(8, ge=2, description="Completions sampled per prompt (the GRPO group).")
    num_generations_eval: int | None = trl_field(
        None, ge=1, description="Completions per prompt during evaluation; None = num_generations."
    )
    max_completion_length: int = trl_field(512, ge=1, description="Maximum new tokens per completion.")
    temperature: float = trl_field(1.0, gt=0, description="Sampling temperature.")
    top_p: float = trl_field(1.0, gt=0, le=1, description="Nucleus sampling threshold.")
    top_k: int = trl_field(0, ge=0, description="Top-k sampling; 0 disables it.")
    min_p: float | None = trl_field(None, ge=0, le=1, description="Min-p sampling threshold.")
    repetition_penalty: float = trl_field(1.0, gt=0, description="Repetition penalty while sampling.")
    generation_kwargs: FiniteMapping | None = trl_field(
        None, description="Extra GenerationConfig/SamplingParams (not the sampling fields above, which have their own keys)."
    )
    beta: float = trl_field(0.0, ge=0, description="KL coefficient; 0 loads no reference model.")
    epsilon: float = trl_field(0.2, gt=0, description="Lower clipping range of the policy ratio.")
    epsilon_high: float | None = trl_field(None, gt=0, description="Upper clipping range; None = epsilon.")
    num_iterations: int = trl_field(1, ge=1, description="Optimisation passes per generated batch (mu).")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = trl_field(
        "dapo", description="Loss aggregation."
    )
    scale_rewards: Literal["group", "batch", "none"] = trl_field(
        "group", description="Advantage scaling by the reward std of the group, the batch, or none."
    )
    mask_truncated_completions: bool = trl_field(False, description="Leave truncated completions out of the loss.")
    importance_sampling_level: Literal["token", "sequence"] = trl_field(
        "token", description="Importance ratios per token or per sequence (GSPO)."
    )
    seed: int = trl_field(
        42, ge=0, lt=2**32, description="Random seed set at the start of training (0 to 2**32 - 1, as numpy needs)."
    )
    bf16: bool | None = trl_field(
        None, description="bf16 mixed precision; None = on when the GPU supports bf16, else off (recorded in run.json)."
    )
    fp16: bool = trl_field(False, description="fp16 mixed precision.")
    use_cpu: bool = trl_field(False, description="Train on the CPU even when a GPU is present.")
    activation_checkpointing: bool = trl_field(
        True, description="Trade compute (~20 % slower) for memory; TRL's GRPO default is on."
    )
    eval_strategy: Literal["no", "steps", "epoch"] = trl_field("no", description="When to evaluate during training.")
    eval_steps: float | None = trl_field(None, gt=0, description="Steps between evaluations (eval_strategy=steps).")
    eval_on_start: bool = trl_field(False, description="Evaluate once before the first step.")
    use_vllm: bool = trl_field(False, description="Generate with vLLM (the 'vllm' extra, GPU only).")
    vllm_mode: Literal["colocate", "server"] = trl_field("colocate", description="vLLM in-process or a server.")
    vllm_server_base_url: str | None = trl_field(None, description="vLLM server URL (server mode).")
    vllm_server_host: str = trl_field("0.0.0.0", description="vLLM server host when no base URL is given.")
    vllm_server_port: int = trl_field(8000, ge=1, le=65535, description="vLLM server port.")
    vllm_gpu_memory_utilization: float = trl_field(
        0.3, gt=0, le=1, description="GPU memory share of colocated vLLM."
    )
    vllm_tensor_parallel_size: int = trl_field(1, ge=1, description="Tensor parallelism of colocated vLLM.")
    vllm_max_model_length: int | None = trl_field(None, ge=1, description="vLLM context window.")
    vllm_enable_sleep_mode: bool = trl_field(False, description="Offload vLLM during optimizer steps.")
    dataloader_num_workers: int = trl_field(0, ge=0, description="Data-loading worker processes.")
    shuffle_dataset: bool = trl_field(True, description="Shuffle the training prompts.")
    disable_dropout: bool = trl_field(False, description="Disable dropout in the policy.")
    torch_compile: bool = trl_field(False, description="Compile the model with torch.compile.")
    ddp_timeout: int = trl_field(1800, ge=1, description="Seconds before a distributed collective times out.")
    chat_template_kwargs: FiniteMapping | None = trl_field(
        None, description="Extra arguments to apply_chat_template."
    )


class RewardMixerBlock(Block):
    """How the rewards are mixed: by the recipe's weights (default), or by weights learned during training."""

    learnable: bool = Field(
        False,
        description="Learn the mixing weights (softmax, started at the recipe's weights) by Adam on -mean reward, "
        "as the original's later version did. Off: it moves weight to whichever reward is currently higher, "
        "not to the one that teaches the task (docs/grail.md).",
    )
    learning_rate: float = Field(0.05, gt=0, le=10, description="Adam learning rate of the mixing logits.")


class LaunchBlock(Block):
    """How many processes the recipe is planned for (used to check the batch rule before launching)."""

    num_processes: int = Field(
        1, ge=1, description="Training processes in total (GPUs across nodes); checked against the real launch."
    )


class LoggingBlock(Block):
    """Console, file and tracker logging."""

    report_to: list[Literal["none", "wandb", "tensorboard", "trackio"]] = trl_field(
        ["none"], description="Trackers to report to; each needs its extra (grail-rl[wandb], [tensorboard], [trackio])."
    )
    logging_steps: float = trl_field(10, gt=0, description="Log every N steps; a value < 1 is a fraction.")
    logging_first_step: bool = trl_field(False, description="Also log the first step.")
    run_name: str | None = trl_field(None, description="Run name shown by trackers.")
    project: str = trl_field("huggingface", description="Project name (trackio).")
    log_completions: bool = trl_field(False, description="Print sampled completions every logging step.")
    num_completions_to_print: int | None = trl_field(None, ge=1, description="How many completions to print.")
    save_completions: bool = Field(
        True, description="Save sampled completions per step under the output folder (grail-rl)."
    )


class HubBlock(Block):
    """Pushing checkpoints to the hub. The token comes only from the environment (HF_TOKEN)."""

    push_to_hub: bool = trl_field(False, description="Push the model every time it is saved.")
    hub_model_id: str | None = trl_field(None, description="The hub repository to push to (owner/name).")
    hub_private_repo: bool | None = trl_field(None, description="Create the repository as private.")
    hub_strategy: Literal["end", "every_save", "checkpoint", "all_checkpoints"] = trl_field(
        "every_save", description="What to push and when."
    )
    revision_per_save: bool = Field(False, description="Also push each saved checkpoint to its own revision.")
    push_data_files: bool = Field(
        False,
        description="Also push the files that hold participants' data (completion samples with their prompts, "
        "drop reports, reward faults, evaluation predictions); off by default.",
    )

    @model_validator(mode="after")
    def _needs_repo(self) -> HubBlock:
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("push_to_hub needs hub_model_id (owner/name)")
        return self


class OutputBlock(Block):
    """Where the run writes checkpoints, logs and results."""

    dir: RecipePath = trl_field(description="Output folder of the run.", trl="output_dir")
    overwrite: bool = Field(False, description="Replace an output folder that holds another run.")
    save_strategy: Literal["no", "steps", "epoch"] = trl_field("steps", description="When to save checkpoints.")
    save_steps: float = trl_field(500, gt=0, description="Save every N steps; a value < 1 is a fraction.")
    save_total_limit: int | None = trl_field(None, ge=1, description="Keep only the last N checkpoints.")
