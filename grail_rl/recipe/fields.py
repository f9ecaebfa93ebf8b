"""Field helpers shared by the recipe blocks: strict base model, paths relative to the recipe, TRL mapping.

A path in a recipe is resolved against the folder of the recipe file (passed as validation context
``base_dir``), so a recipe means the same thing from any working directory.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

TRL_KEY = "trl"


class Block(BaseModel):
    """A recipe section: unknown keys are errors and values are not coerced from strings."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def trl_field(default: Any = ..., *, description: str, trl: str | None = None, **kwargs: Any) -> Any:
    """A field passed unchanged to ``trl.GRPOConfig`` (under ``trl`` when its name differs there)."""
    return Field(default, description=description, json_schema_extra={TRL_KEY: trl or True}, **kwargs)


def trl_name(block: type[BaseModel], field: str) -> str | None:
    """The GRPOConfig name of ``block.field``, or None when grail-rl handles the field itself."""
    extra = block.model_fields[field].json_schema_extra
    if not isinstance(extra, dict) or TRL_KEY not in extra:
        return None
    value = extra[TRL_KEY]
    return field if value is True else str(value)


def _resolve(path: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = path.expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _must_be_file(path: Path) -> Path:
    if not path.is_file():
        hint = "it is a folder" if path.is_dir() else "no such file"
        raise ValueError(f"{path}: {hint} (relative paths are resolved against the recipe's folder)")
    return path


def _must_exist(path: Path) -> Path:
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder (relative paths are resolved against the recipe's folder)")
    return path


# A path (strings are accepted even in strict mode), made absolute against the recipe's folder.
RecipePath = Annotated[Path, Field(strict=False), AfterValidator(_resolve)]
ExistingFile = Annotated[Path, Field(strict=False), AfterValidator(_resolve), AfterValidator(_must_be_file)]
ExistingPath = Annotated[Path, Field(strict=False), AfterValidator(_resolve), AfterValidator(_must_exist)]


def union_members(annotation: Any) -> list[Any]:
    """The types an annotation admits, with Annotated and Optional/Union unwrapped (list[X] stays whole)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return union_members(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in union_members(arg)]
    return [annotation]
