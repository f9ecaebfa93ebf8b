"""Turn pydantic validation errors into one line each: ``file:line: dotted.path: what is wrong``.

Locations are written the way a user reads a recipe (``rewards[1].weight``), without the plugin tags
pydantic inserts for discriminated unions, and unknown keys get a "did you mean" from the keys that
are valid at that place.
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from grail_rl.errors import UnknownPluginError
from grail_rl.plugins.kinds import KINDS
from grail_rl.plugins.manager import Plugins
from grail_rl.plugins.registry import Registry, suggest
from grail_rl.recipe.fields import union_members
from grail_rl.recipe.yaml_loader import Loc

# Keys of the original project's recipes that its trainer ignored silently, and what they mean here.
KNOWN_MISTAKES = {
    "kl_target": "there is no adaptive KL target in GRPO; the KL coefficient is trainer.beta",
    "clip_range": "the policy-ratio clipping range is trainer.epsilon (and epsilon_high)",
    "evaluation_strategy": "it is called trainer.eval_strategy",
    "gradient_checkpointing": "it is called trainer.activation_checkpointing",
    "torch_dtype": "it is called model.dtype",
    "max_prompt_length": "TRL no longer truncates prompts; use prompt.max_prompt_tokens and prompt.long_prompts",
    "warmup_ratio": "use trainer.warmup_steps; a value below 1 is a fraction of the total steps",
    "gamma": "GRPO has no discount factor",
    "model_name_or_path": "it is called model.name_or_path",
}


class Location:
    """Where an error is: the file (or override) and line, and the user-facing dotted path."""

    def __init__(self, source: str, lines: dict[Loc, int], origins: dict[Loc, str]):
        self.source = source
        self.lines = lines
        self.origins = origins

    def line_of(self, loc: Loc) -> int:
        """The line of ``loc`` (or its closest parent) in the file; 0 for overrides and unknown places."""
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.origins:
                return 0
            if loc[:n] in self.lines:
                return self.lines[loc[:n]]
        return 0

    def describe(self, loc: Loc) -> str:
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.origins:
                return self.origins[loc[:n]]
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.lines:
                return f"{self.source}:{self.lines[loc[:n]]}"
        return self.source


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(recipe)"


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _tag_of(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("name")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return get_args(field.annotation)[0]


def walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Loc, list[type[BaseModel]]]:
    """Strip union tags from ``loc``; also return the models that could sit at the end of it."""
    candidates: list[Any] = [root]
    clean: list[Any] = []
    for part in loc:
        models = [t for t in candidates if _is_model(t)]
        if isinstance(part, int):
            candidates = [m for t in candidates if get_origin(t) is list for m in union_members(get_args(t)[0])]
            clean.append(part)
            continue
        owners = [m for m in models if part in m.model_fields]
        if owners:
            candidates = [x for m in owners for x in union_members(m.model_fields[part].annotation)]
            clean.append(part)
            continue
        tagged = [m for m in models if _tag_of(m) == part]
        if tagged:
            candidates = tagged  # a union tag pydantic adds: not part of the user's path
            continue
        candidates = []
        clean.append(part)
    return tuple(clean), [t for t in candidates if _is_model(t)]


def plugin_registry_at(loc: Loc, plugins: Plugins) -> Registry | None:
    """The registry whose plugin names are valid at ``loc`` (a block's ``name``), if any."""
    for kind in KINDS:
        n = len(kind.recipe_path)
        if loc[:n] != kind.recipe_path:
            continue
        if not kind.many or (len(loc) > n and isinstance(loc[n], int)):
            return plugins.registry(kind.key)
    return None


def describe_error(error: dict[str, Any], root: type[BaseModel], plugins: Plugins) -> tuple[Loc, str]:
    """One pydantic error as (clean location, message)."""
    clean, _ = walk(root, error["loc"])
    kind = error["type"]
    value = error.get("input")
    registry = plugin_registry_at(clean, plugins)

    if kind in ("union_tag_invalid", "union_tag_not_found") or (
        registry is not None and clean[-1:] == ("name",) and kind == "literal_error"
    ):
        if registry is None:
            return clean, error["msg"]
        block_loc = clean if kind != "literal_error" else clean[:-1]
        name = error.get("ctx", {}).get("tag") if kind == "union_tag_invalid" else value
        if kind == "union_tag_not_found" or name is None:
            available = ", ".join(registry.names()) or "(none installed)"
            return block_loc, f"missing 'name': which {registry.label} plugin? Available: {available}"
        try:
            registry.get(str(name))
        except UnknownPluginError as exc:
            return (*block_loc, "name"), str(exc)
    if kind == "extra_forbidden":
        key = str(clean[-1]) if clean else "?"
        _, parents = walk(root, error["loc"][:-1])
        valid = sorted({f for m in parents for f in m.model_fields})
        if key in KNOWN_MISTAKES:
            return clean, f"unknown key '{key}': {KNOWN_MISTAKES[key]}"
        hint = suggest(key, valid) or (f" Valid keys here: {', '.join(valid)}." if valid else "")
        return clean, f"unknown key '{key}'.{hint}"
    if kind == "missing":
        return clean, f"missing required key '{clean[-1] if clean else '?'}'"
    if kind == "finite_number" or (isinstance(value, float) and not math.isfinite(value)):
        return clean, f"must be a finite number, got {yaml_number(value)} (NaN and infinities are not allowed)"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    elif message.startswith("Assertion failed, "):
        message = message[len("Assertion failed, ") :]
    if kind == "literal_error" and isinstance(value, str):
        expected = [a.strip(" '") for a in error.get("ctx", {}).get("expected", "").replace(" or ", ",").split(",")]
        message += f", got '{value}'.{suggest(value, [e for e in expected if e])}".rstrip(".")
    elif kind in ("bool_type", "bool_parsing") and isinstance(value, str):
        message += f", got '{value}' (write true or false)"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        message += f", got {value!r}" if not isinstance(value, dict | list) else f", got a {type(value).__name__}"
    return clean, message


def yaml_number(value: Any) -> str:
    """A non-finite float as YAML writes it (.nan, .inf, -.inf); anything else as repr."""
    if isinstance(value, float) and math.isnan(value):
        return ".nan"
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)


def format_validation_error(
    exc: ValidationError, root: type[BaseModel], plugins: Plugins, where: Location
) -> list[str]:
    located: list[tuple[int, str]] = []
    for error in exc.errors(include_url=False):
        loc, message = describe_error(error, root, plugins)
        line = f"{where.describe(loc)}: {dotted(loc)}: {message}"
        if all(line != seen for _, seen in located):  # a union can report one problem once per member
            located.append((where.line_of(loc), line))
    return [line for _, line in sorted(located, key=lambda item: item[0])]
