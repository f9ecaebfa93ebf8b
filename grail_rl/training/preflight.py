"""Optional packages a recipe asks for (trackers, vLLM, flash attention): checked before anything heavy loads.

transformers and TRL look for these only when the trainer or model is built, after the data and the model
are loaded, and a missing package then fails with a long traceback (a tracker named through ``"all"`` is
even skipped silently). A run that asked for something it would not get is refused up front instead, with
one line naming the recipe field and the extra to install. Nothing is imported to check: only
``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import Any

from grail_rl.errors import GrailError

# tracker -> modules that provide it (any one is enough), mirroring transformers' availability checks.
TRACKER_MODULES: dict[str, tuple[str, ...]] = {
    "wandb": ("wandb",),
    "tensorboard": ("tensorboard", "tensorboardX"),
    "trackio": ("trackio",),
}
VLLM_MODULE = "vllm"
FLASH_ATTENTION_MODULES: dict[str, str] = {
    "flash_attention_2": "flash_attn",
    "flash_attention_3": "flash_attn_interface",
}
# transformers can fetch a flash-attention kernel from the hub instead when the `kernels` package is present.
KERNELS_MODULE = "kernels"


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_trackers(report_to: Iterable[str]) -> list[str]:
    """The trackers in ``report_to`` whose package is not importable here (without importing it)."""
    return [
        name
        for name in report_to
        if name in TRACKER_MODULES and not any(installed(module) for module in TRACKER_MODULES[name])
    ]


def check_trackers(report_to: Iterable[str]) -> None:
    """Raise a one-line :class:`GrailError` when a requested tracker is not installed."""
    missing = missing_trackers(report_to)
    if missing:
        one = len(missing) == 1
        raise GrailError(
            f"logging.report_to: {', '.join(missing)} {'is' if one else 'are'} not installed; "
            f"pip install 'grail-rl[{','.join(missing)}]' or remove {'it' if one else 'them'} from "
            "logging.report_to"
        )


def check_generation_kwargs(recipe: Any) -> None:
    """``trainer.generation_kwargs`` keys transformers' GenerationConfig knows; it would keep an unknown one
    (a typo like ``temprature``) as a plain attribute and ignore it. vLLM checks its own SamplingParams."""
    given = recipe.trainer.generation_kwargs or {}
    if not given or recipe.trainer.use_vllm:
        return
    from transformers import GenerationConfig

    known = set(GenerationConfig().to_dict())
    unknown = sorted(key for key in given if key not in known)
    if unknown:
        from grail_rl.plugins.registry import suggest

        hints = "".join(suggest(key, sorted(known)) for key in unknown)
        raise GrailError(
            f"trainer.generation_kwargs: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a "
            f"generation setting transformers knows, so it would be ignored.{hints} Remove it or fix the name"
        )


def check_precision(recipe: Any) -> None:
    """fp16 on a machine without a GPU would be silently ignored by accelerate: refuse it."""
    if not recipe.trainer.fp16:
        return
    import torch

    if not torch.cuda.is_available():
        raise GrailError(
            "trainer.fp16: fp16 mixed precision needs a GPU and this machine has none, so it would be ignored; "
            "remove it (bf16 works on CPUs)"
        )


def check_optional_packages(recipe: Any) -> None:
    """Every optional package the recipe relies on is installed, or a one-line :class:`GrailError`."""
    check_trackers(recipe.logging.report_to)
    if recipe.trainer.use_vllm and not installed(VLLM_MODULE):
        raise GrailError(
            "trainer.use_vllm: vLLM is not installed; on a GPU machine pip install 'grail-rl[vllm]', "
            "or set trainer.use_vllm: false to generate with transformers"
        )
    attention = recipe.model.attn_implementation
    module = FLASH_ATTENTION_MODULES.get(attention or "")
    if module is not None and not installed(module) and not installed(KERNELS_MODULE):
        raise GrailError(
            f"model.attn_implementation: {attention} needs the {module} package (or `kernels`), neither "
            "is installed; install one on the GPU machine or use 'sdpa'"
        )
