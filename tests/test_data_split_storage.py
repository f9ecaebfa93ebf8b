"""build_split writes its output as a memory-mapped Arrow file, where cache_dir says, so memory stays flat."""

from __future__ import annotations

from grail_rl.data.dataset import build_split
from tests.test_data_split import RECIPE, load, synth_dir  # noqa: F401  (synth_dir is a fixture)


def test_split_is_memory_mapped_from_the_cache_dir(synth_dir, write_recipe, tmp_path):  # noqa: F811
    recipe, plugins = load(write_recipe(RECIPE))
    dataset, report = build_split(recipe, plugins, "train", cache_dir=tmp_path / "arrow")
    files = [f["filename"] for f in dataset.cache_files]
    assert files and all(str(tmp_path / "arrow") in f for f in files)
    assert report.kept == len(dataset) > 0


def test_a_mixture_is_memory_mapped_too(synth_dir, write_recipe, tmp_path):  # noqa: F811
    text = RECIPE.replace("    - path: synth/train.jsonl\n", "    - path: synth/train.jsonl\n      weight: 1.0\n")
    text = text.replace("data:\n", "data:\n  train_rows: 50\n")
    recipe, plugins = load(write_recipe(text))
    dataset, _ = build_split(recipe, plugins, "train", cache_dir=tmp_path / "arrow")
    assert len(dataset) == 50
    assert dataset.cache_files
