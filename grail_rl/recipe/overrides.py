"""Command-line overrides: ``--set trainer.learning_rate=2e-6`` and TRL-style ``--learning_rate 2e-6``.

Overrides are applied to the raw YAML data before validation, so they are validated exactly like the
file, and errors name the override that caused them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from grail_rl.errors import RecipeError
from grail_rl.plugins.registry import suggest
from grail_rl.recipe.blocks import HubBlock, LoggingBlock, OutputBlock, TrainerBlock
from grail_rl.recipe.fields import trl_name
from grail_rl.recipe.yaml_loader import Loc, parse_scalar

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def parse_dotted(path: str, origin: str) -> Loc:
    """``rewards[1].weight`` or ``rewards.1.weight`` -> ("rewards", 1, "weight")."""
    parts: list[str | int] = []
    for chunk in path.split("."):
        if chunk.isdigit():
            parts.append(int(chunk))
            continue
        pos = 0
        for match in _PART.finditer(chunk):
            if match.start() != pos:
                break
            parts.append(match.group(1) if match.group(1) else int(match.group(2)))
            pos = match.end()
        if pos != len(chunk) or not chunk:
            raise RecipeError([f"{origin}: '{path}' is not a dotted recipe path (e.g. trainer.learning_rate)"])
    return tuple(parts)


def set_in(data: dict[str, Any], loc: Loc, value: Any, origin: str) -> None:
    """Set ``data[loc] = value``, creating mappings on the way; list items must already exist."""
    node: Any = data
    for i, part in enumerate(loc[:-1]):
        nxt = loc[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                have = len(node) if isinstance(node, list) else 0
                raise RecipeError([f"{origin}: there is no item [{part}] (the list has {have})"])
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise RecipeError([f"{origin}: cannot set '{part}' inside a {type(node).__name__}"])
        if part not in node or node[part] is None:
            node[part] = [] if isinstance(nxt, int) else {}
        node = node[part]
    last = loc[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise RecipeError([f"{origin}: there is no item [{last}] to replace"])
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise RecipeError([f"{origin}: cannot set '{last}' inside a {type(node).__name__}"])


def parse_set(expression: str) -> tuple[Loc, Any, str]:
    """``key.path=value`` -> (location, parsed value, origin label for messages)."""
    origin = f"--set {expression}"
    if "=" not in expression:
        raise RecipeError([f"{origin}: expected KEY=VALUE, e.g. --set trainer.learning_rate=2e-6"])
    key, raw = expression.split("=", 1)
    return parse_dotted(key.strip(), origin), parse_scalar(raw, origin), origin


def trl_flag_targets() -> dict[str, Loc]:
    """TRL-style flag name -> recipe location, for every field that maps onto GRPOConfig."""
    targets: dict[str, Loc] = {name: ("trainer", name) for name in TrainerBlock.model_fields}
    for section, block in (("logging", LoggingBlock), ("hub", HubBlock), ("output", OutputBlock)):
        for field in block.model_fields:
            name = trl_name(block, field)
            if name:
                targets.setdefault(name, (section, field))
    return targets


def parse_trl_flags(args: Sequence[str]) -> list[tuple[Loc, Any, str]]:
    """``["--learning_rate", "2e-6", "--bf16"]`` -> overrides; a bare flag means true."""
    targets = trl_flag_targets()
    out: list[tuple[Loc, Any, str]] = []
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise RecipeError([f"unexpected argument '{token}'; trainer options look like --learning_rate 2e-6"])
        key, eq, raw = token[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                raw = args[i + 1]
                i += 1
            else:
                raw = "true"
        i += 1
        origin = f"--{key} {raw}"
        if key not in targets:
            hint = suggest(key, list(targets)).replace("'", "'--", 1)
            raise RecipeError(
                [f"--{key}: not a trainer option.{hint} Use --set SECTION.KEY=VALUE for other recipe fields."]
            )
        out.append((targets[key], parse_scalar(raw, origin), origin))
    return out
