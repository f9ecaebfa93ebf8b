"""Load the policy model and tokenizer that a recipe's ``model`` block names.

A local folder or a hub id; dtype, attention implementation, remote code, a chat-template override and
LoRA are all taken from the recipe. Problems a user can fix (a path that does not exist, a tokenizer with
no chat template while prompts are chat messages) raise :class:`ModelLoadError` with one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.files import read_text_limited

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelLoadError(GrailError):
    """The recipe's model or tokenizer cannot be used."""


def resolve_model_location(name_or_path: str, base_dir: Path | None = None) -> str:
    """A local folder (absolute, or relative to ``base_dir``) or a hub id; refuse anything else early."""
    candidate = Path(name_or_path).expanduser()
    if not candidate.is_absolute() and base_dir is not None and (base_dir / candidate).exists():
        candidate = base_dir / candidate
    if candidate.exists():
        if not candidate.is_dir():
            raise ModelLoadError(f"model.name_or_path: {candidate} is a file; give the model's folder")
        if not (candidate / "config.json").is_file():
            raise ModelLoadError(f"model.name_or_path: {candidate} has no config.json; is it a model folder?")
        return str(candidate.resolve())
    looks_local = (
        name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1 or "\\" in name_or_path
    )
    if looks_local or not _HUB_ID.match(name_or_path):
        raise ModelLoadError(f"model.name_or_path: {name_or_path}: no such folder (and not a hub model id)")
    return name_or_path


def model_location(block: Any, base_dir: Path | None = None, note: Any = None) -> str:
    """Where the model block's model loads from: its ``gguf_file`` converted once into a cached folder
    (:mod:`grail_rl.models.gguf`), else ``name_or_path`` resolved as :func:`resolve_model_location` does."""
    if block.gguf_file is not None:
        from grail_rl.models.gguf import convert_gguf, find_gguf

        return str(convert_gguf(find_gguf(block.name_or_path, block.gguf_file, base_dir), note=note))
    return resolve_model_location(block.name_or_path, base_dir)


def model_init_kwargs(block: Any) -> dict[str, Any]:
    """The ``from_pretrained`` arguments the model block asks for."""
    kwargs: dict[str, Any] = {"trust_remote_code": block.trust_remote_code}
    if block.revision:
        kwargs["revision"] = block.revision
    # TRL would default to float32; 'auto' means the checkpoint's own dtype, as the recipe documents.
    kwargs["dtype"] = block.dtype
    if block.attn_implementation:
        kwargs["attn_implementation"] = block.attn_implementation
    return kwargs


def chat_template_override(block: Any) -> str | None:
    if block.chat_template is not None:
        return block.chat_template
    if block.chat_template_file is not None:
        return read_text_limited(Path(block.chat_template_file), "model.chat_template_file")
    return None


def load_tokenizer(block: Any, location: str, *, needs_chat_template: bool = True):
    """The tokenizer, with the recipe's chat template applied, a pad token, and left padding."""
    from transformers import AutoTokenizer

    if block.revision and Path(location).is_dir():
        raise ModelLoadError(
            f"model.revision ({block.revision}) picks a hub revision, but model.name_or_path is the local folder "
            f"{location}; remove model.revision"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            location, revision=block.revision, trust_remote_code=block.trust_remote_code
        )
    except Exception as exc:  # a missing or unreadable tokenizer: OSError, ValueError, a JSON error ...
        raise ModelLoadError(
            f"model.name_or_path: cannot load a tokenizer from {location}: {_first_line(exc)}"
        ) from None
    template = chat_template_override(block)
    if template is not None:
        tokenizer.chat_template = template
    if needs_chat_template and not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            f"the tokenizer of {location} has no chat template, but the prompts are chat messages; "
            "set model.chat_template or model.chat_template_file"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation continues from the right end of every prompt
    return tokenizer


def load_model(block: Any, location: str):
    """The causal LM with the block's dtype and attention implementation."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(location, **model_init_kwargs(block))
    except ImportError as exc:  # e.g. flash_attention_2 requested without the package
        raise ModelLoadError(f"model.attn_implementation: {_first_line(exc)}") from None
    except Exception as exc:  # a missing or damaged file: OSError, safetensors' own error, a bad config ...
        raise ModelLoadError(
            f"cannot load the model in {location}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None


# Config attributes that hold a model's context window, by architecture family.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def context_window(config: Any) -> int | None:
    """The longest sequence the model handles (prompt plus completion), from its config; None if unknown."""
    for key in _CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    text_config = getattr(config, "text_config", None)  # multimodal models keep it on the text part
    return context_window(text_config) if text_config is not None and text_config is not config else None


def load_config(block: Any, location: str) -> Any:
    """The model's config alone (no weights), to read its context window before loading it."""
    import json

    from transformers import AutoConfig

    adapter = Path(location) / "adapter_config.json"
    if not (Path(location) / "config.json").is_file() and adapter.is_file():
        # A LoRA adapter folder: the context window is its base model's.
        try:
            location = json.loads(adapter.read_text(encoding="utf-8"))["base_model_name_or_path"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{adapter}: cannot read the base model of the adapter ({exc})") from None
    try:
        return AutoConfig.from_pretrained(location, revision=block.revision, trust_remote_code=block.trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - any unreadable config is the user's folder, said in one line
        raise ModelLoadError(f"model.name_or_path: cannot read the config of {location}: {_first_line(exc)}") from None


def prompt_measure(recipe: Any, location: str) -> tuple[Any, int | None]:
    """(tokenizer, prompt limit) of the model at ``location`` (a resolved folder or hub id), the way
    ``train`` measures prompts: the tokenizer loaded as training loads it, and ``prompt.max_prompt_tokens``
    or else the model's context window minus the completion length (``preview`` and ``evaluate`` use this)."""
    from grail_rl.data.dataset import prompt_limit

    tokenizer = load_tokenizer(recipe.model, location)
    if recipe.prompt.max_prompt_tokens is not None:
        return tokenizer, prompt_limit(recipe, None)
    return tokenizer, prompt_limit(recipe, context_window(load_config(recipe.model, location)))


def lora_config(block: Any):
    """A PEFT LoraConfig for the block's ``lora`` section, or None for full fine-tuning."""
    if block.lora is None:
        return None
    from peft import LoraConfig

    lora = block.lora
    targets = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def load_policy(block: Any, base_dir: Path | None = None):
    """(model, tokenizer, peft_config) for a recipe's model block."""
    location = model_location(block, base_dir)
    tokenizer = load_tokenizer(block, location)
    model = load_model(block, location)
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, lora_config(block)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
