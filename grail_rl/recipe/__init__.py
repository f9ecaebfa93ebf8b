"""Recipes: YAML files validated by strict pydantic models before any model is loaded.

Use :func:`grail_rl.recipe.loader.load_recipe` to read, override and validate one.
"""
