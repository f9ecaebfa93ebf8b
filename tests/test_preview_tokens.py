"""preview counts tokens with the recipe's tokenizer, exactly as train counts them, and drops or truncates
long prompts as training does."""

from __future__ import annotations

import json

import pytest

from grail_rl.models.tiny import ensure_tiny_model
from tests.test_data_split import RECIPE, synth_dir  # noqa: F401  (synth_dir is a fixture)

pytestmark = pytest.mark.slow


def test_preview_counts_tokens_with_a_local_tokenizer(synth_dir, write_recipe, run_cli, tmp_path):  # noqa: F811
    model = ensure_tiny_model(tmp_path / "model")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    path = write_recipe(RECIPE.replace("./model", str(model)) + "prompt: {max_prompt_tokens: 1250}\n")
    result = run_cli("preview", str(path), "--n", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["unit"] == "tokens"
    for shown in data["prompts"]:
        text = tokenizer.apply_chat_template(shown["messages"], tokenize=False, add_generation_prompt=True)
        assert shown["length"] == len(tokenizer(text, add_special_tokens=False)["input_ids"])
        assert shown["length"] <= 1250 and shown["over_limit"] is False  # over-long ones are dropped, not shown
    characters = sum(len(m["content"]) for m in data["prompts"][0]["messages"])
    assert 0 < data["prompts"][0]["length"] < characters  # tokens, not characters
