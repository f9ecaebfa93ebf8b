"""Generate ``docs/recipes.md``, the reference of every recipe field, from the schema itself.

Run ``python -m grail_rl.recipe.reference > docs/recipes.md`` after changing a block; a test fails when
the committed file differs from what this prints, so the reference cannot drift from the code.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from grail_rl.plugins.kinds import KINDS, kind_of
from grail_rl.plugins.manager import BUILTIN_DISTRIBUTION, load_plugins
from grail_rl.recipe.fields import trl_name, union_members
from grail_rl.recipe.plugin_blocks import block_fields
from grail_rl.recipe.schema import build_recipe_model

HEADER = """# Recipe reference

Every field a recipe can set, generated from the schema by `python -m grail_rl.recipe.reference`
(a test checks this file is current). Unknown keys are errors. Paths are resolved against the folder of
the recipe file. Fields marked **GRPOConfig** are passed to `trl.GRPOConfig` under the name shown;
the others are handled by grail-rl. Override any field on the command line with
`--set section.key=value`, and GRPOConfig fields TRL-style with `--name value`.

Plugin blocks (`rewards`, `prompt.sections`, `discriminator`) take `name` and the keys listed here, plus
the options of the named plugin: see `grail-rl list-rewards`, `list-sections`, `list-discriminators`.
"""

PLUGIN_LISTS = {kind.recipe_label: kind.key for kind in KINDS}


def _type_label(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _type_label(get_args(annotation)[0])
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in get_args(annotation))
    if origin in (typing.Union, __import__("types").UnionType):
        return " \\| ".join(_type_label(a) for a in get_args(annotation))
    if origin is list:
        return f"list of {_type_label(get_args(annotation)[0])}"
    if origin is dict:
        return "mapping"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: Any) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(defaults below)"
    return f"`{json.dumps(to_jsonable_python(value, fallback=str))}`"


def _rows(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, str, str, str]]:
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        members = union_members(info.annotation)
        nested = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        items = [a for m in members if get_origin(m) is list for a in union_members(get_args(m)[0])]
        trl = trl_name(model, name)
        description = (info.description or "").replace("|", "\\|")
        if trl:
            description += f" **GRPOConfig** `{trl}`."
        if path in PLUGIN_LISTS:
            kind = PLUGIN_LISTS[path]
            yield path, "list of plugin blocks" if items else "plugin block \\| null", _default(info), description
            item_path = f"{path}[]" if items else path
            yield f"{item_path}.name", "string", "required", f"The {kind_of(kind).label} plugin to use."
            for key, (annotation, field) in block_fields(kind).items():
                yield f"{item_path}.{key}", _type_label(annotation), _default(field), field.description or ""
            continue
        if nested and not items:
            yield path, _type_label(info.annotation), _default(info), description
            for sub in nested:
                yield from _rows(sub, path)
            continue
        item_models = [m for m in items if isinstance(m, type) and issubclass(m, BaseModel)]
        yield path, _type_label(info.annotation), _default(info), description
        for sub in item_models:
            yield from _rows(sub, f"{path}[]")


def render_reference() -> str:
    """The Markdown reference for the recipe schema with the built-in plugins."""
    model = build_recipe_model(load_plugins(distributions={BUILTIN_DISTRIBUTION}, blocked=()))
    out = [HEADER]
    for section, info in model.model_fields.items():
        out.append(f"\n## `{section}`\n\n{info.description or ''}\n")
        out.append("| key | type | default | description |\n|---|---|---|---|")
        for path, type_label, default, description in _section_rows(model, section):
            out.append(f"| `{path}` | {type_label} | {default} | {description} |")
    return "\n".join(out) + "\n"


def _section_rows(model: type[BaseModel], section: str) -> Iterator[tuple[str, str, str, str]]:
    for row in _rows(model, ""):
        if row[0] == section or row[0].startswith((f"{section}.", f"{section}[")):
            yield row


def all_field_paths() -> list[str]:
    """Every dotted field path of the recipe (used by the docs test)."""
    model = build_recipe_model(load_plugins(distributions={BUILTIN_DISTRIBUTION}, blocked=()))
    return [row[0] for row in _rows(model, "")]


if __name__ == "__main__":
    print(render_reference(), end="")
