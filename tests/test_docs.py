"""The docs cannot drift: every hook is documented with its exact signature, and docs/recipes.md is
exactly what the schema generates."""

from __future__ import annotations

import inspect

from grail_rl.plugins import hookspecs
from grail_rl.plugins.manager import HOOK_KINDS
from grail_rl.recipe.reference import all_field_paths, render_reference
from tests.conftest import REPO_ROOT


def _hook_names() -> list[str]:
    return [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "grail_rl_spec")]


def test_every_hook_is_loaded_by_the_manager():
    assert sorted(_hook_names()) == sorted(HOOK_KINDS)


def test_every_hook_has_a_heading_with_its_exact_signature():
    docs = (REPO_ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name in _hook_names():
        signature = str(inspect.signature(getattr(hookspecs, name))).replace("'", "")
        assert f"### `{name}{signature}`" in docs, f"docs/plugins.md lacks a heading for {name}{signature}"


def test_recipe_reference_is_current():
    committed = (REPO_ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert committed == render_reference(), (
        "docs/recipes.md is stale: run `python -m grail_rl.recipe.reference > docs/recipes.md`"
    )


def test_recipe_reference_names_every_field():
    committed = (REPO_ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    paths = all_field_paths()
    assert "trainer.learning_rate" in paths and "rewards[].weight" in paths
    for path in paths:
        assert f"`{path}`" in committed
