"""Field helpers shared by the recipe blocks: strict base model, paths relative to the recipe, TRL mapping.

A path in a recipe is resolved against the folder of the recipe file (passed as validation context
``base_dir``) and normalised (``recipes/demo/../../runs`` becomes ``runs``), so a recipe means the same
thing from any working directory. Numbers must be finite everywhere: NaN and infinities are refused, also
inside free-form mappings such as ``trainer.lr_scheduler_kwargs``.
"""

from __future__ import annotations

import math
import os
import stat
import types
import typing
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

from grail_rl.files import special_kind

TRL_KEY = "trl"


class Block(BaseModel):
    """A recipe section: unknown keys are errors, values are not coerced from strings, numbers are finite."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


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
    # normpath, not resolve(): "runs/../x" reads as the user meant it, and a symlinked folder keeps its name.
    return Path(os.path.normpath(path)) if path.is_absolute() else path


_RELATIVE = "relative paths are resolved against the recipe's folder"


def _kind_of(path: Path) -> str | None:
    """None when missing, else "file", "folder" or the special kind (a FIFO, a device, a socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return special_kind(mode) or "an unknown kind of file"


def _must_be_file(path: Path) -> Path:
    kind = _kind_of(path)
    if kind is None:
        raise ValueError(f"{path}: no such file ({_RELATIVE})")
    if kind == "folder":
        raise ValueError(f"{path}: it is a folder; give a file")
    if kind != "file":
        raise ValueError(f"{path} is {kind}, not a regular file; give a file on disk")
    return path


def _must_exist(path: Path) -> Path:
    kind = _kind_of(path)
    if kind is None:
        raise ValueError(f"{path}: no such file or folder ({_RELATIVE})")
    if kind not in ("file", "folder"):
        raise ValueError(f"{path} is {kind}, not a regular file or folder; give a file or folder on disk")
    return path


def _finite_values(value: Any, where: str = "") -> Any:
    """Refuse NaN and infinities anywhere inside a free-form mapping or list."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'value'} is {value}; NaN and infinities are not allowed, give a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite_values(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _finite_values(item, f"{where}[{i}]")
    return value


# A free-form mapping (passed on to TRL or transformers) whose numbers must still be finite.
FiniteMapping = Annotated[dict[str, Any], AfterValidator(_finite_values)]


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
