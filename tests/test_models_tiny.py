"""The offline tiny model: builds once, encodes identically after a reload, and loads through the recipe path."""

from __future__ import annotations

import json

import pytest

from grail_rl.models.loading import ModelLoadError, load_policy, load_tokenizer, resolve_model_location
from grail_rl.models.tiny import MARKER, TinySpec, build_tokenizer, ensure_tiny_model
from grail_rl.recipe.blocks import ModelBlock
from tests.conftest_training import REPO_ROOT, tiny_model  # noqa: F401  (fixture)

TEXTS = [
    "VIEWER 32-year-old woman; watches YouTube weekly.\n\nOPTIONS\n1. Title (Channel, 120s long)",
    "<think>\noption 2 fits\n</think>\n<answer>\n2\n</answer><opinion>increase</opinion>",
    "Été — 43,105 views \u200b tabs\tand\nnewlines, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]


def test_encodings_survive_a_reload(tiny_model):  # noqa: F811
    from transformers import AutoTokenizer

    fresh = build_tokenizer(TinySpec())
    reloaded = AutoTokenizer.from_pretrained(tiny_model)
    real = (REPO_ROOT.parent / "shared" / "data" / "grail-validation" / "gun_study1.jsonl")
    texts = list(TEXTS)
    if real.is_file():
        texts += [m["content"] for m in json.loads(real.open().readline())["messages"]]
    for text in texts:
        assert reloaded.encode(text) == fresh.encode(text), text[:40]
        assert reloaded.decode(reloaded.encode(text)) == text
    messages = [{"role": "user", "content": "hi"}]
    rendered = reloaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_cached_build_is_reused_and_rebuilt_when_outdated(tiny_model):  # noqa: F811
    stamp = (tiny_model / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model(tiny_model) == tiny_model
    assert (tiny_model / "model.safetensors").stat().st_mtime_ns == stamp
    assert json.loads((tiny_model / MARKER).read_text())["hidden_size"] == 64


def test_policy_loads_with_dtype_and_lora(tiny_model):  # noqa: F811
    block = ModelBlock(name_or_path=str(tiny_model), dtype="float32", lora={"r": 4, "alpha": 8})
    model, tokenizer, peft = load_policy(block)
    assert sum(p.numel() for p in model.parameters()) < 200_000
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == "<|endoftext|>"
    assert peft.r == 4 and peft.lora_alpha == 8


def test_missing_model_path_is_one_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no such folder"):
        resolve_model_location(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model_location(str(tmp_path / "empty"))
    assert resolve_model_location("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen/Qwen2.5-1.5B-Instruct"


def test_tokenizer_without_chat_template_is_refused_unless_the_recipe_gives_one(tiny_model, tmp_path):  # noqa: F811
    import shutil

    copy = tmp_path / "no-template"
    shutil.copytree(tiny_model, copy)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    (copy / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match="no chat template"):
        load_tokenizer(ModelBlock(name_or_path=str(copy)), str(copy))
    block = ModelBlock(name_or_path=str(copy), chat_template="{{ messages[0]['content'] }}")
    assert load_tokenizer(block, str(copy)).apply_chat_template([{"role": "user", "content": "x"}], tokenize=False) == "x"
