"""``grail-rl evaluate --endpoint URL --served-model NAME``: a model behind a real OpenAI-compatible server on
127.0.0.1 (``transformers serve`` on the tiny model) evaluated like a local one; a wrong model name and an
unreachable URL are one line each."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest_training import cli_env, tiny_model  # noqa: F401  (fixture)
from tests.openai_double import free_port
from tests.test_eval_predictions import evaluate

RECIPE = """\
model: {name_or_path: ./no-model}
data: {synthetic: {n: 120, seed: 3, cache_dir: synth}, max_eval_samples: 6}
rewards: [{name: accuracy}]
trainer: {max_completion_length: 16}
output: {dir: out}
"""


@pytest.fixture(scope="module")
def server(tiny_model):  # noqa: F811
    """``transformers serve`` on the tiny model; its base URL and model name. Stopped after the module."""
    port = free_port()
    binary = Path(sys.executable).parent / "transformers"
    proc = subprocess.Popen([str(binary), "serve", str(tiny_model), "--host", "127.0.0.1", "--port", str(port)],
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {proc.stderr.read()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("transformers serve did not start within 120 s")
    yield f"http://127.0.0.1:{port}/v1", str(tiny_model)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.slow
def test_a_served_model_is_evaluated_like_a_local_one_and_bad_names_are_one_line(tmp_path, server):
    url, model = server
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    proc = evaluate(tmp_path, "--endpoint", url, "--served-model", model)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NO_TORCH" in proc.stdout  # nothing local is loaded
    folder = next((tmp_path / "out/evaluations").glob("served-*/eval"))
    report = json.loads((folder / "eval-eval.json").read_text())
    assert report["complete"] and report["overall"]["n"] == 6 and report["meta"]["generator"].startswith("served, greedy")
    outputs = [json.loads(line)["output"] for line in (folder / "eval-eval.predictions.jsonl").read_text().splitlines()]
    assert len(outputs) == 6 and all(isinstance(text, str) and text for text in outputs)

    wrong = evaluate(tmp_path, "--endpoint", url, "--served-model", "no-such-model", "--out", tmp_path / "w")
    assert wrong.returncode == 2 and "'no-such-model'" in wrong.stderr and "check the model name" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_an_unreachable_server_and_bad_options_are_one_line(tmp_path):
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    down = evaluate(tmp_path, "--endpoint", f"http://127.0.0.1:{free_port()}/v1", "--served-model", "m", "--retries", "0")
    assert down.returncode == 2 and "cannot reach http://127.0.0.1:" in down.stderr and "Traceback" not in down.stderr
    for args, message in [
        (["--endpoint", "http://x/v1"], "--endpoint and --served-model go together"),
        (["--endpoint", "localhost:8000", "--served-model", "m"], "give an http:// or https:// URL"),
        (["--endpoint", "http://x/v1", "--served-model", "m", "--base"], "it takes no --model, --base"),
        (["--endpoint", "http://x/v1", "--served-model", "m", "--mode", "choice-logprob"], "do not apply"),
        (["--concurrency", "4"], "apply to a served model"),
        (["--base", "--retries", "2"], "apply to a served model"),
    ]:
        proc = evaluate(tmp_path, *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def run_generate(tmp_path, url, model, *args):
    return subprocess.run([sys.executable, "-m", "grail_rl", "generate", str(tmp_path / "recipe.yaml"), "--endpoint", url,
                           "--served-model", model, *map(str, args)], cwd=tmp_path, env=cli_env(), capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_generate_writes_each_row_once_and_resumes_after_a_cut(tmp_path, server):
    url, model = server
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    out = tmp_path / "gen.jsonl"
    first = run_generate(tmp_path, url, model, "--out", out, "--limit", "10", "--n", "2", "--max-tokens", "8")
    assert first.returncode == 0, first.stderr[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["row_id"] for r in records) == list(range(10)) and all(len(r["generations"]) == 2 for r in records)
    # A kill mid-run: four rows kept, the fifth cut in the middle of its line.
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:4]) + lines[4][:20])
    again = run_generate(tmp_path, url, model, "--out", out, "--limit", "10", "--n", "2", "--max-tokens", "8")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming: 4 of 10 rows" in again.stderr and "6 rows written, 10 of 10" in again.stdout
    assert sorted(json.loads(line)["row_id"] for line in out.read_text().splitlines()) == list(range(10))

    (tmp_path / "t.txt").write_text("Pick one of:\n{{ slate_titles }}\nfor {{ no_such_field }}")
    bad = run_generate(tmp_path, url, model, "--out", tmp_path / "t.jsonl", "--template", tmp_path / "t.txt")
    assert bad.returncode == 2 and "the rows have no field 'no_such_field'" in bad.stderr
    (tmp_path / "t.txt").write_text("Pick one of:\n{{ slate_titles }}")
    other = run_generate(tmp_path, url, model, "--out", out, "--limit", "10", "--template", tmp_path / "t.txt")
    assert other.returncode == 2 and "holds a row of other data" in other.stderr
    assert sorted(json.loads(line)["row_id"] for line in out.read_text().splitlines()) == list(range(10))  # untouched


@pytest.mark.slow
def test_a_fault_proxy_in_front_of_transformers_serve_costs_no_row(tmp_path, server, double):
    """The double relays to the real server (--upstream), failing some requests on the way: 500s, then answers
    cut in the middle. Every row gets the real model's generation, once."""
    url, model = server
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    out = tmp_path / "gen.jsonl"
    for fault in ("status", "truncate"):
        proxy = double("--upstream", url, "--model", model, "--fault", fault, "--fault-count", "3", "--fault-after", "1",
                       "--retry-after", "0.05").start()  # fmt: skip
        proc = run_generate(tmp_path, proxy.url, model, "--out", out, "--limit", str(6 if fault == "status" else 12),
                            "--max-tokens", "8", "--concurrency", "3")  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len([r for r in proxy.requests() if r["fault"] != "none"]) == 3
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["row_id"] for r in records) == list(range(12))
    assert all(r["generations"][0] and r["finish_reasons"][0] in ("stop", "length") for r in records)
