"""Read YAML safely, the way a researcher means it.

PyYAML's SafeLoader follows YAML 1.1: it reads ``1e-5`` as a string, ``on``/``no``/``yes`` as booleans
and silently keeps the last of two duplicate keys. This loader reads floats and booleans as YAML 1.2
does (``1e-5`` is a number; only true/false are booleans), rejects duplicate keys, and records the line
of every key and item so validation errors can point at them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from grail_rl.errors import GrailError, RecipeError
from grail_rl.files import read_text_limited

BOOL_TAG = "tag:yaml.org,2002:bool"
FLOAT_TAG = "tag:yaml.org,2002:float"

# A location in a recipe: mapping keys and list indexes, e.g. ("rewards", 1, "weight").
Loc = tuple[str | int, ...]


class _RecipeYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and floats."""


_RecipeYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (BOOL_TAG, FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_RecipeYamlLoader.add_implicit_resolver(BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_RecipeYamlLoader.add_implicit_resolver(
    FLOAT_TAG,
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
            |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


# A recipe holds a few hundred values; aliases that expand beyond this are a "billion laughs" bomb.
MAX_VALUES = 100_000


class _Budget:
    """Counts the values built, so an alias bomb stops after :data:`MAX_VALUES` instead of exhausting memory."""

    def __init__(self, source: str):
        self.source = source
        self.left = MAX_VALUES

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise RecipeError([
                f"{self.source}: the YAML expands to more than {MAX_VALUES:,} values (aliases repeated inside "
                "aliases?); a recipe is a few hundred values, write it out plainly"
            ])  # fmt: skip


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    """Parse ``text``; return the data and a map from each location to its 1-based line.

    ``source`` names the text in error messages (a file path, or ``--set key=value``).
    """
    loader = _RecipeYamlLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        data = None if node is None else _build(loader, node, (), lines, _Budget(source))
    except RecursionError:
        raise RecipeError([f"{source}: invalid YAML: nested too deeply"]) from None
    except ValueError as exc:  # e.g. an integer with thousands of digits, which Python refuses to convert
        raise RecipeError([f"{source}: invalid YAML: {' '.join(str(exc).split())[:160]}"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        raise RecipeError([f"{where}: invalid YAML: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise RecipeError([f"{source}: invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    return data, lines


def _build(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, lines: dict[Loc, int], budget: _Budget) -> Any:
    budget.spend()
    source = budget.source
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve "<<" merge keys the standard way
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool) or key is None:
                raise RecipeError([f"{source}:{line}: a mapping key must be a plain name, got {key!r}"])
            if key in result:
                first = lines.get((*loc, key), "?")
                raise RecipeError([f"{source}:{line}: duplicate key '{key}' (first set at line {first}); keep one"])
            lines[(*loc, key)] = line
            result[key] = _build(loader, value_node, (*loc, key), lines, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*loc, i), lines, budget) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def read_recipe_file(path: Path) -> tuple[dict[str, Any], dict[Loc, int]]:
    """Read a recipe file: a non-empty YAML mapping. Errors name the file.

    Only a regular file of at most :data:`~grail_rl.files.MAX_TEXT_INPUT` bytes is read: a FIFO or a device
    such as ``/dev/zero`` is refused at once instead of blocking or reading forever.
    """
    try:
        text = read_text_limited(path, "recipe")
    except GrailError as exc:
        raise RecipeError([str(exc)]) from None
    data, lines = parse_yaml(text, str(path))
    if data is None:
        raise RecipeError([f"{path}: the recipe is empty; it needs at least model, data and rewards sections"])
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise RecipeError([f"{path}:1: a recipe must be a mapping of sections (model:, data:, rewards:, ...), got {kind}"])
    return data, lines


def parse_scalar(text: str, source: str) -> Any:
    """Parse one override value with the same rules as recipe files (``2e-6`` is a number)."""
    data, _ = parse_yaml(text, source)
    return data
