"""The distilabel pipeline builder (the ``distilabel`` extra): grail-rl's rows and prompts in a distilabel
pipeline, run against a real server on 127.0.0.1 (tests/openai_double.py); the key stays out of its cache;
without distilabel it is one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest_training import cli_env
from tests.openai_double import DoubleServer
from tests.test_serving_faults import RECIPE

pytest.importorskip("distilabel", reason="the distilabel extra (installed by the dev extra)")


def test_the_pipeline_generates_for_every_row_and_keeps_the_key_out_of_its_files(tmp_path, monkeypatch):
    from grail_rl.serving.distilabel_pipeline import build_distilabel_pipeline

    key = "sk-test-distilabel-do-not-leak"
    monkeypatch.setenv("GRAIL_RL_API_KEY", key)
    (tmp_path / "recipe.yaml").write_text(RECIPE.replace("cache_dir: synth", f"cache_dir: {tmp_path / 'synth'}"))
    (tmp_path / "t.txt").write_text("{{ slate_titles }}\nWhich of these would viewer {{ participant_id }} watch?")
    server = DoubleServer(tmp_path).start()
    try:
        pipeline = build_distilabel_pipeline(tmp_path / "recipe.yaml", endpoint=server.url, model="double", limit=5,
                                             n=2, max_tokens=8, template=tmp_path / "t.txt",
                                             cache_dir=tmp_path / "cache")  # fmt: skip
        rows = pipeline.run(use_cache=False)["default"]["train"]
    finally:
        server.kill()
    assert sorted(rows["row_id"]) == list(range(5)) and "gold_index" in rows.column_names
    # The double echoes the prompt: each generation is the rendered template of its row.
    assert all(len(g) == 2 and "would viewer synth-" in g[0] for g in rows["generation"])
    assert len(server.requests()) == 5  # one request per row, asking for n=2 choices
    assert all(r["auth"] == __import__("hashlib").sha256(f"Bearer {key}".encode()).hexdigest()[:16]
               for r in server.requests())  # fmt: skip
    written = [p.read_text(errors="replace") for p in (tmp_path / "cache").rglob("*") if p.is_file()
               and p.suffix in (".yaml", ".json", ".jsonl", ".txt", ".log")]  # fmt: skip
    assert written and not any(key in text for text in written)


def test_without_distilabel_the_builder_is_one_line():
    code = ("import sys; sys.modules['distilabel'] = None\n"
            "from grail_rl.errors import GrailError\n"
            "from grail_rl.serving.distilabel_pipeline import build_distilabel_pipeline\n"
            "try:\n    build_distilabel_pipeline('r.yaml', endpoint='http://x/v1', model='m')\n"
            "except GrailError as exc:\n    print(exc)\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert "pip install 'grail-rl[distilabel]'" in proc.stdout, proc.stderr
