"""Read a recipe file, apply overrides, validate it against the installed plugins, run cross-field checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from grail_rl.errors import RecipeError, describe_exception
from grail_rl.plugins.manager import Plugins, load_plugins
from grail_rl.recipe.error_messages import Location, dotted, format_validation_error
from grail_rl.recipe.overrides import parse_set, parse_trl_flags, set_in
from grail_rl.recipe.schema import build_recipe_model, cross_field_problems
from grail_rl.recipe.yaml_loader import Loc, read_recipe_file


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe with where it came from and the plugins it was validated against."""

    recipe: Any
    path: Path
    plugins: Plugins
    overrides: tuple[str, ...] = ()

    def resolved(self) -> dict[str, Any]:
        """The full recipe with every default filled in, as plain JSON-able data."""
        return self.recipe.model_dump(mode="json")


def load_recipe(
    path: str | Path,
    *,
    sets: Sequence[str] = (),
    trainer_args: Sequence[str] = (),
    plugins: Plugins | None = None,
) -> LoadedRecipe:
    """Load and validate ``path``; raise :class:`RecipeError` with one line per problem."""
    path = Path(path)
    plugins = plugins if plugins is not None else load_plugins()
    data, lines = read_recipe_file(path)

    origins: dict[Loc, str] = {}
    overrides = [parse_set(s) for s in sets] + parse_trl_flags(trainer_args)
    for loc, value, origin in overrides:
        set_in(data, loc, value, origin)
        origins[loc] = origin

    model = build_recipe_model(plugins)
    where = Location(str(path), lines, origins)
    try:
        recipe = model.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, model, plugins, where)) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin's Config validator that raised something else (or sys.exit)
        raise RecipeError([f"{path}: a plugin's option check failed while validating: {describe_exception(exc)}"]) from exc
    problems = cross_field_problems(recipe)
    if problems:
        raise RecipeError([f"{where.describe(loc)}: {dotted(loc)}: {msg}" for loc, msg in problems])
    return LoadedRecipe(recipe, path, plugins, tuple(o for _, _, o in overrides))
