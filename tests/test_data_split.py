"""build_split: the dataset the trainer gets, mixtures, the drop report beside the run, long prompts,
and the preview command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grail_rl.data.dataset import build_split
from grail_rl.data.synth import generate
from grail_rl.recipe.loader import load_recipe
from grail_rl.testing import isolated_plugins

RECIPE = """\
model: {name_or_path: ./model}
data:
  train:
    - path: synth/train.jsonl
  eval:
    - path: synth/validation.jsonl
rewards: [{name: accuracy}]
output: {dir: out}
"""


@pytest.fixture
def synth_dir(tmp_path):
    generate(300, 5, tmp_path / "synth")
    with (tmp_path / "synth" / "train.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("{broken json\n")
        fh.write(json.dumps({"issue": "gun_control", "slate_items": [], "gold_index": 1}) + "\n")
    return tmp_path / "synth"


def load(path, *sets):
    plugins = isolated_plugins()
    return load_recipe(path, sets=sets, plugins=plugins).recipe, plugins


def test_train_split_columns_and_drop_report(synth_dir, write_recipe, tmp_path):
    recipe, plugins = load(write_recipe(RECIPE))
    dataset, report = build_split(recipe, plugins, "train", report_dir=tmp_path / "run")
    for column in ("prompt", "gold_index", "n_options", "issue", "participant_study", "opinion_direction"):
        assert column in dataset.column_names
    first = dataset[0]
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert 1 <= first["gold_index"] <= first["n_options"] == len(first["slate_titles"])
    assert first["opinion_direction"] in {"increase", "decrease", "no_change"}
    assert report.counts == {"malformed_json": 1, "empty_slate": 1}
    saved = json.loads((tmp_path / "run" / "drop_report_train.json").read_text())
    assert saved["dropped"] == 2 and saved["kept"] == len(dataset)
    assert saved["reasons"]["empty_slate"]["example"]["row"] == report.read


def test_weighted_mixture_is_seeded(synth_dir, write_recipe):
    text = RECIPE.replace(
        "    - path: synth/train.jsonl\n",
        "    - {path: synth/train.jsonl, weight: 3.0}\n    - {path: synth/validation.jsonl, weight: 1.0}\n  train_rows: 400\n",
    )
    recipe, plugins = load(write_recipe(text))
    a, _ = build_split(recipe, plugins, "train")
    b, _ = build_split(recipe, plugins, "train")
    assert len(a) == 400 and a["participant_id"] == b["participant_id"]
    sources = a["source"]
    assert sources.count("train.jsonl") == 300 and sources.count("validation.jsonl") == 100  # repeated to fill
    recipe, plugins = load(write_recipe(text), "data.seed=1")
    c, _ = build_split(recipe, plugins, "train")
    assert c["participant_id"] != a["participant_id"]


def test_eval_limit_and_long_prompts(synth_dir, write_recipe):
    recipe, plugins = load(write_recipe(RECIPE), "data.max_eval_samples=5")
    dataset, _ = build_split(recipe, plugins, "eval")
    assert len(dataset) == 5
    full, _ = build_split(recipe, plugins, "train")
    limit = sorted(full["prompt_length"])[len(full) // 2]
    recipe, plugins = load(write_recipe(RECIPE), f"prompt.max_prompt_tokens={limit}")
    dropped, report = build_split(recipe, plugins, "train")
    assert 0 < report.counts["prompt_too_long"] < len(full) and max(dropped["prompt_length"]) <= limit
    recipe, plugins = load(write_recipe(RECIPE), f"prompt.max_prompt_tokens={limit}", "prompt.long_prompts=truncate")
    cut, report = build_split(recipe, plugins, "train")
    assert report.truncated > 0 and len(cut) > len(dropped) and max(cut["prompt_length"]) <= limit


def test_synthetic_block_generates_into_a_cache(write_recipe, tmp_path):
    sources = "  train:\n    - path: synth/train.jsonl\n  eval:\n    - path: synth/validation.jsonl\n"
    recipe, plugins = load(write_recipe(RECIPE.replace(sources, "  synthetic: {n: 300, seed: 2}\n")))
    dataset, report = build_split(recipe, plugins, "eval")
    assert len(dataset) > 0 and report.dropped == 0
    assert (tmp_path / ".grail-synth" / "n300-seed2" / "summary.json").is_file()


def test_mixture_needs_weights_on_every_source(write_recipe, tmp_path):
    from grail_rl.errors import RecipeError

    (tmp_path / "a.jsonl").write_text("", encoding="utf-8")
    text = RECIPE.replace("    - path: synth/train.jsonl\n", "    - {path: a.jsonl, weight: 2.0}\n    - {path: a.jsonl}\n")
    with pytest.raises(RecipeError, match="weight on every data.train source"):
        load(write_recipe(text.replace("  eval:\n    - path: synth/validation.jsonl\n", "")))


def test_preview_cli(synth_dir, write_recipe, run_cli, tmp_path):
    from grail_rl.models.tiny import ensure_tiny_model

    ensure_tiny_model(tmp_path / "model")
    path = write_recipe(RECIPE + "prompt: {max_prompt_tokens: 1200}\n")
    result = run_cli("preview", str(path), "--n", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("=== prompt") == 2 and " tokens, gold " in result.stdout
    assert "VIEWER " in result.stdout and "OPTIONS\n1. " in result.stdout
    assert "longer than 1200 tokens (prompt.max_prompt_tokens): 0 truncated" in result.stderr
    data = json.loads(run_cli("preview", str(path), "--n", "1", "--json").stdout)
    assert data["unit"] == "tokens" and data["over_limit"] > 0 and len(data["prompts"]) == 1
    assert data["over_limit"] == data["dropped_too_long"] == data["drops"]["reasons"]["prompt_too_long"]["count"]
    # A model that is not there: preview cannot measure as train would, and says so in one line.
    missing = write_recipe(RECIPE.replace("./model", "./nowhere"), name="missing.yaml")
    failed = run_cli("preview", str(missing))
    assert failed.returncode == 2 and "nowhere" in failed.stderr and "Traceback" not in failed.stderr


def test_data_commands_import_no_torch():
    code = (
        "import sys; from grail_rl.cli import data_cmds, preview_cmd; import grail_rl.data.dataset, "
        "grail_rl.data.synth, grail_rl.data.audit, grail_rl.data.rendered, grail_rl.builtin.sections; "
        "print([m for m in ('torch', 'trl', 'transformers', 'datasets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
