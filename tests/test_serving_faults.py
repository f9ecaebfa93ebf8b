"""``grail-rl generate`` against a server that misbehaves: a real HTTP server of our own on 127.0.0.1
(tests/openai_double.py, run as its own process so it can be killed) answering 500s for a while, answering
slower than the timeout, cutting answers short, refusing connections at the start, killed mid-run and started
again. After every fault and resume, each row is in the output exactly once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest_training import cli_env
from tests.openai_double import DoubleServer, free_port

ROOT = Path(__file__).resolve().parents[1]
RECIPE = """\
model: {name_or_path: ./no-model}
data: {synthetic: {n: 120, seed: 3, cache_dir: synth}, max_eval_samples: 6}
rewards: [{name: accuracy}]
output: {dir: out}
"""


@pytest.fixture(autouse=True)
def recipe_file(tmp_path):
    (tmp_path / "recipe.yaml").write_text(RECIPE)


def generate_args(tmp_path: Path, url: str, *args: object) -> list[str]:
    return [sys.executable, "-m", "grail_rl", "generate", str(tmp_path / "recipe.yaml"), "--endpoint", url,
            "--served-model", "double", "--max-tokens", "8", *map(str, args)]  # fmt: skip


def generate(tmp_path: Path, url: str, *args: object, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(generate_args(tmp_path, url, *args), cwd=tmp_path, env=cli_env(**env), capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def row_ids(path: Path) -> list[int]:
    return sorted(json.loads(line)["row_id"] for line in path.read_text().splitlines())


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert text in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_every_row_once_with_the_key_sent_but_never_written_and_a_datasets_folder(tmp_path, double):
    server = double().start()
    out, key = tmp_path / "gen.jsonl", "sk-test-do-not-leak-1234"
    proc = generate(tmp_path, server.url, "--out", out, "--limit", "30", "--n", "2", "--concurrency", "4",
                    "--dataset-dir", tmp_path / "ds", GRAIL_RL_API_KEY=key)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert row_ids(out) == list(range(30)) and "30 rows written, 30 of 30" in proc.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(len(r["generations"]) == 2 and r["settings"]["n"] == 2 for r in records)
    sent = hashlib.sha256(f"Bearer {key}".encode()).hexdigest()[:16]
    assert {r["auth"] for r in server.requests()} == {sent}  # the key from the environment reached the server
    everything = proc.stdout + proc.stderr + "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*")
                                                     if p.is_file() and p != server.log)  # fmt: skip
    assert key not in everything

    from datasets import load_from_disk

    saved = load_from_disk(str(tmp_path / "ds"))
    assert saved["row_id"] == list(range(30)) and "gold_index" in saved.column_names
    assert [len(g) for g in saved["generations"]] == [2] * 30
    assert not [p for p in tmp_path.iterdir() if ".staging" in p.name]

    again = generate(tmp_path, server.url, "--out", out, "--limit", "30", "--n", "2", "--dataset-dir", tmp_path / "ds")
    assert_one_line_error(again, 2, "--dataset-dir")  # an existing folder is never replaced
    done = generate(tmp_path, server.url, "--out", out, "--limit", "30", "--n", "2")
    assert done.returncode == 0 and "nothing to generate: all 30 rows" in done.stdout
    changed = generate(tmp_path, server.url, "--out", out, "--limit", "30", "--n", "3")
    assert_one_line_error(changed, 2, "other settings (n 2 there, 3 now)")
    assert row_ids(out) == list(range(30))


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        (["--fault", "status", "--fault-count", "8", "--retry-after", "0.05"], []),  # 500s for a while
        (["--fault", "status", "--status", "429", "--fault-count", "4"], []),  # rate limited
        (["--fault", "slow", "--fault-count", "3", "--slow-delay", "2.5"], ["--timeout", "1"]),  # slower than the timeout
        (["--fault", "truncate", "--fault-count", "3"], []),  # answers cut short
        (["--fault", "hang-up", "--fault-count", "3"], []),  # connections dropped unanswered
        (["--fault", "garbage", "--fault-count", "3"], []),  # a 200 that is not JSON
    ],
    ids=["500", "429", "slow", "truncate", "hang-up", "garbage"],
)
def test_a_misbehaving_server_loses_and_duplicates_nothing(tmp_path, double, fault, options):
    server = double(*fault, "--fault-after", "1").start()  # the server check passes; rows meet the faults
    out = tmp_path / "gen.jsonl"
    proc = generate(tmp_path, server.url, "--out", out, "--limit", "12", "--concurrency", "3", *options)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert row_ids(out) == list(range(12))
    faults = [r for r in server.requests() if r["fault"] != "none"]
    assert faults, "the fault never happened"
    assert len(server.requests()) == 12 + 1 + len(faults)  # each row once, the check, and one retry per fault


def test_connections_refused_at_the_start_are_waited_for(tmp_path, double):
    server = double()
    out = tmp_path / "gen.jsonl"
    run = subprocess.Popen(generate_args(tmp_path, server.url, "--out", out, "--limit", "8"), cwd=tmp_path,
                           env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(1.5)  # the client is retrying refused connections by now
    server.start()
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr[-3000:]
    assert row_ids(out) == list(range(8))


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} rows after {timeout} s")


@pytest.mark.slow
def test_a_server_killed_mid_run_stops_the_run_cleanly_and_the_rerun_completes_it(tmp_path, double):
    server = double("--latency", "0.05").start()
    out = tmp_path / "gen.jsonl"
    args = ("--out", out, "--limit", "60", "--concurrency", "4", "--retries", "1")
    run = subprocess.Popen(generate_args(tmp_path, server.url, *args), cwd=tmp_path, env=cli_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_lines(out, 10, run)
    server.kill()
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr[-3000:]
    assert "rows are missing" in stderr and "stopped early: the server failed" in stderr and "rerun" in stderr
    assert "Traceback" not in stderr
    kept = row_ids(out)
    assert 10 <= len(kept) < 60 and len(set(kept)) == len(kept)

    server.start()
    again = generate(tmp_path, server.url, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming: {len(kept)} of 60 rows" in again.stderr
    assert row_ids(out) == list(range(60))


@pytest.mark.slow
def test_a_server_restarted_within_the_retries_costs_no_row(tmp_path, double):
    server = double("--latency", "0.05").start()
    out = tmp_path / "gen.jsonl"
    run = subprocess.Popen(generate_args(tmp_path, server.url, "--out", out, "--limit", "60", "--concurrency", "4",
                                         "--retries", "8"), cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_lines(out, 10, run)
    server.kill()
    time.sleep(1.0)
    server.start()
    stdout, stderr = run.communicate(timeout=180)
    assert run.returncode == 0, stderr[-3000:]
    assert row_ids(out) == list(range(60))


@pytest.mark.slow
def test_generate_killed_mid_run_resumes_without_duplicates(tmp_path, double):
    server = double("--latency", "0.05").start()
    out = tmp_path / "gen.jsonl"
    args = ("--out", out, "--limit", "40", "--concurrency", "2")
    run = subprocess.Popen(generate_args(tmp_path, server.url, *args), cwd=tmp_path, env=cli_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_lines(out, 6, run)
    os.kill(run.pid, signal.SIGKILL)
    run.communicate()
    again = generate(tmp_path, server.url, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert row_ids(out) == list(range(40))


def test_a_row_the_server_refuses_is_left_for_the_rerun_and_the_others_are_written(tmp_path, double):
    server = double("--refuse-containing", "synth-000002").start()  # the viewer of rows 5, 6 and 7
    (tmp_path / "t.txt").write_text("Viewer {{ participant_id }} picks one of:\n{{ slate_titles }}")
    out = tmp_path / "gen.jsonl"
    args = ("--out", out, "--template", tmp_path / "t.txt", "--limit", "8", "--concurrency", "2")
    proc = generate(tmp_path, server.url, *args)
    assert_one_line_error(proc, 1, "maximum context length")
    assert row_ids(out) == [0, 1, 2, 3, 4]  # only the refused viewer's rows are missing


def test_bad_servers_and_a_busy_output_are_one_line_and_leave_no_file(tmp_path, double):
    garbage = double("--fault", "garbage", "--fault-count", "1000").start()
    out = tmp_path / "gen.jsonl"
    proc = generate(tmp_path, garbage.url, "--out", out, "--limit", "4", "--retries", "1")
    assert_one_line_error(proc, 2, "the answer is not JSON")
    assert not out.exists()
    down = generate(tmp_path, f"http://127.0.0.1:{free_port()}/v1", "--out", out, "--retries", "0")
    assert_one_line_error(down, 2, "cannot reach http://127.0.0.1:")
    assert not out.exists()

    server = double().start()
    wrong = generate(tmp_path, server.url, "--out", out, "--limit", "4", "--served-model", "nope")
    assert_one_line_error(wrong, 2, "'nope'")

    from grail_rl.serving.generate import lock_output

    out.write_text("")
    with lock_output(out):
        busy = generate(tmp_path, server.url, "--out", out, "--limit", "4")
    assert_one_line_error(busy, 2, "being written by another grail-rl generate")
    assert out.read_text() == ""


def test_a_served_evaluation_spanning_many_chunks_survives_500s(tmp_path, double):
    """Several chunks (one event loop each) through one client, with 500s on the way: every row scored once."""
    server = double("--fault", "status", "--fault-count", "3", "--fault-after", "5", "--retry-after", "0.05").start()
    (tmp_path / "recipe.yaml").write_text(RECIPE.replace("n: 120", "n: 400").replace("max_eval_samples: 6", "max_eval_samples: 30"))
    proc = subprocess.run([sys.executable, "-m", "grail_rl", "evaluate", str(tmp_path / "recipe.yaml"), "--endpoint",
                           server.url, "--served-model", "double", "--concurrency", "2"], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next((tmp_path / "out/evaluations").glob("served-*/eval/eval-eval.json")).read_text())
    assert report["complete"] and report["overall"]["n"] == 30
    assert len(server.requests()) == 30 + 1 + 3


@pytest.mark.slow
def test_a_served_evaluation_stopped_by_a_dead_server_resumes_where_it_stopped(tmp_path, double):
    server = double("--latency", "0.05").start()
    (tmp_path / "recipe.yaml").write_text(RECIPE.replace("n: 120", "n: 600").replace("max_eval_samples: 6", "max_eval_samples: 60"))
    command = [sys.executable, "-m", "grail_rl", "evaluate", str(tmp_path / "recipe.yaml"), "--endpoint", server.url,
               "--served-model", "double", "--concurrency", "2"]  # fmt: skip
    run = subprocess.Popen([*command, "--retries", "1"], cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = list((tmp_path / "out/evaluations").glob("served-*/eval/*.progress-*.jsonl"))
        if logs and logs[0].read_text().count("\n") >= 17:  # a header and two chunks of eight rows
            break
        assert run.poll() is None, run.communicate()
        time.sleep(0.05)
    server.kill()
    stdout, stderr = run.communicate(timeout=180)
    assert run.returncode == 2 and "cannot reach" in stderr and "Traceback" not in stderr, stderr[-2000:]
    scored = logs[0].read_text().count("\n") - 1
    assert 16 <= scored < 60

    server.start()
    before = len(server.requests())
    again = subprocess.run(command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(next((tmp_path / "out/evaluations").glob("served-*/eval/eval-eval.json")).read_text())
    assert report["complete"] and report["overall"]["n"] == 60
    assert len(server.requests()) - before == 1 + 60 - scored  # the check, then only the rows not scored yet


def test_generate_over_a_data_file_with_the_recipes_prompt_sections(tmp_path, double):
    from grail_rl.data.synth import generate as synthesize

    synthesize(200, 5, tmp_path / "other")
    rows = (tmp_path / "other/train.jsonl").read_text().count("\n")
    server = double().start()
    out = tmp_path / "gen.jsonl"
    proc = generate(tmp_path, server.url, "--out", out, "--data", tmp_path / "other/train.jsonl", "--concurrency", "8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert row_ids(out) == list(range(rows))  # every row of the file, not the recipe's own split
    both = generate(tmp_path, server.url, "--out", tmp_path / "x.jsonl", "--data", tmp_path / "other/train.jsonl",
                    "--split", "eval")  # fmt: skip
    assert_one_line_error(both, 2, "--data and --split exclude each other")
    missing = generate(tmp_path, server.url, "--out", tmp_path / "x.jsonl", "--data", tmp_path / "nope.jsonl")
    assert_one_line_error(missing, 2, "nope.jsonl: no such file")
    assert not (tmp_path / "x.jsonl").exists()


def test_a_file_that_is_not_generates_output_is_refused_untouched(tmp_path, double):
    server = double().start()
    for name, content in [("notes.txt", b"my notes, no newline"), ("results.json", b'{"accuracy": 0.5}'),
                          ("blob.bin", bytes(range(256)) * 12), ("partial.jsonl", b'{"row_id": 0, "prompt_hash": "x"}\n{"ok"')]:  # fmt: skip
        path = tmp_path / name
        path.write_bytes(content)
        proc = generate(tmp_path, server.url, "--out", path, "--limit", "3")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert path.read_bytes() == content, name  # not one byte cut
    assert len(server.requests()) == 0


def test_records_that_were_edited_and_a_smaller_limit_are_named(tmp_path, double):
    server = double().start()
    out = tmp_path / "gen.jsonl"
    assert generate(tmp_path, server.url, "--out", out, "--limit", "4").returncode == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["finish_reasons"] == ["stop"] for r in records)
    smaller = generate(tmp_path, server.url, "--out", out, "--limit", "2")
    assert_one_line_error(smaller, 2, "beyond the 2 rows of this run (a smaller --limit?)")
    records[1]["generations"] = None
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    edited = generate(tmp_path, server.url, "--out", out, "--limit", "4")
    assert_one_line_error(edited, 2, "line 2 does not hold 1 generations")


def test_rows_the_server_refuses_never_stop_the_others(tmp_path, double):
    server = double("--refuse-containing", "synth-000002").start()  # three rows in a row, every time
    (tmp_path / "t.txt").write_text("Viewer {{ participant_id }} picks one of:\n{{ slate_titles }}")
    out = tmp_path / "gen.jsonl"
    args = ("--out", out, "--template", tmp_path / "t.txt", "--limit", "30", "--concurrency", "2")
    first = generate(tmp_path, server.url, *args)
    assert_one_line_error(first, 1, "rows are missing")
    assert "stopped early" not in first.stderr and "row 5: " in first.stderr and "maximum context length" in first.stderr
    missing = int(first.stderr.split("error: ")[1].split(" rows are missing")[0])
    written = row_ids(out)
    assert len(written) == 30 - missing and 5 not in written and 10 in written and 29 in written


@pytest.mark.parametrize(("fault", "message"), [
    (["--fault", "drip", "--slow-delay", "0.3"], "no complete answer within"),  # each byte in time, the answer never
    (["--fault", "null"], "the answer has no text (finish reason: content_filter)"),
])  # fmt: skip
def test_a_dripping_or_empty_answer_is_a_failed_row_not_a_hang_or_an_empty_generation(tmp_path, double, fault, message):
    server = double(*fault, "--fault-count", "3", "--fault-after", "1").start()
    out = tmp_path / "gen.jsonl"
    args = ("--out", out, "--limit", "6", "--concurrency", "1", "--timeout", "1", "--retries", "0")
    first = generate(tmp_path, server.url, *args)
    assert_one_line_error(first, 1, message)
    assert row_ids(out) == [] and "stopped early: the server failed 3 rows in a row" in first.stderr
    again = generate(tmp_path, server.url, *args)  # the faults are over
    assert again.returncode == 0 and row_ids(out) == list(range(6))
    assert all(json.loads(line)["generations"] != [""] for line in out.read_text().splitlines())


@pytest.mark.parametrize(("endpoint", "message"), [
    ("http://127.0.0.1:99999/v1", "is not a valid URL"),
    ("http://[::1", "is not a valid URL"),
    ("http://", "with a host"),
    ("ftp://127.0.0.1/v1", "give an http:// or https:// URL"),
    ("http://user:sk-123@127.0.0.1:9/v1", "the URL holds a credential (user info)"),
    ("http://127.0.0.1:9/v1?api_key=sk-123", "the URL holds a credential (api_key)"),
])  # fmt: skip
def test_a_malformed_endpoint_is_one_line_and_leaves_no_file(tmp_path, endpoint, message):
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    proc = generate(tmp_path, endpoint, "--out", tmp_path / "gen.jsonl")
    assert_one_line_error(proc, 2, message)
    assert "sk-123" not in proc.stderr or "user info" in message and "sk-123" not in proc.stderr
    assert not (tmp_path / "gen.jsonl").exists()


def test_output_places_that_cannot_work_are_refused_before_any_request(tmp_path, double):
    server = double().start()
    (tmp_path / "a-file").write_text("x")
    for args, message in [
        (["--out", tmp_path / "a-file/gen.jsonl"], "is a file, not a folder"),
        (["--out", tmp_path / "d/gen.jsonl", "--dataset-dir", tmp_path / "d"], "would hold --out"),
        (["--out", tmp_path / "g.jsonl", "--dataset-dir", tmp_path / "g.jsonl"], "would hold --out"),
        (["--out", tmp_path / "g.jsonl", "--dataset-dir", tmp_path / "a-file/ds"], "is a file, not a folder"),
    ]:
        proc = generate(tmp_path, server.url, *args, "--limit", "2")
        assert_one_line_error(proc, 2, message)
    assert len(server.requests()) == 0


def test_a_retry_after_too_long_to_honour_is_not_retried_and_the_message_says_so(tmp_path, double):
    server = double("--fault", "status", "--status", "429", "--retry-after", "100000", "--fault-count", "1000").start()
    proc = generate(tmp_path, server.url, "--out", tmp_path / "gen.jsonl", "--limit", "2")
    assert_one_line_error(proc, 2, "answered 429 (injected failure 1), after 1 attempt; it asks to wait 100000 s")
    assert len(server.requests()) == 1


def test_a_full_disk_mid_run_stops_cleanly_and_the_rerun_completes(tmp_path, double):
    import resource

    server = double("--reply-size", "20000").start()
    out = tmp_path / "gen.jsonl"
    args = generate_args(tmp_path, server.url, "--out", out)  # 104 rows of ~20 KB: 2 MB

    def small_disk() -> None:  # no file may grow past 1 MB, as on a full disk (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    full = subprocess.run(args, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300,
                          preexec_fn=small_disk)  # fmt: skip
    assert_one_line_error(full, 1, "stopped early: cannot write")
    text = out.read_text()
    assert text.endswith("\n") and 0 < len(text.splitlines()) < 104  # whole records only, none half-written
    again = generate(tmp_path, server.url, "--out", out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert row_ids(out) == list(range(104))


def evaluate_served(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grail_rl", "evaluate", str(tmp_path / "recipe.yaml"), "--endpoint", url,
                           "--served-model", "double", *args], cwd=tmp_path, env=cli_env(), capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_a_served_evaluation_stopped_in_its_first_chunk_resumes_with_the_same_command(tmp_path, double):
    failing = double("--fault", "status", "--fault-after", "1", "--fault-count", "1000")
    failing.start()
    first = evaluate_served(tmp_path, failing.url, "--retries", "0")
    assert first.returncode == 2 and "answered 500" in first.stderr, first.stderr[-2000:]
    failing.kill()
    healthy = DoubleServer(tmp_path)
    healthy.port = failing.port  # the same server, back up: the same settings
    healthy.start()
    try:
        again = evaluate_served(tmp_path, healthy.url)
    finally:
        healthy.kill()
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads(next((tmp_path / "out/evaluations").glob("served-*/eval/eval-eval.json")).read_text())
    assert report["complete"] and report["overall"]["n"] == 6


def test_rows_the_server_refuses_are_scored_as_unanswered_and_said_so(tmp_path, double):
    server = double("--refuse-containing", "Democrat").start()  # in 4 of the 16 prompts
    (tmp_path / "recipe.yaml").write_text(RECIPE.replace("max_eval_samples: 6", "max_eval_samples: 16")
                                          + "trainer: {chat_template_kwargs: {enable_thinking: false}}\n")  # fmt: skip
    proc = evaluate_served(tmp_path, server.url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = next((tmp_path / "out/evaluations").glob("served-*/eval"))
    outputs = [json.loads(line)["output"] for line in (folder / "eval-eval.predictions.jsonl").read_text().splitlines()]
    refused = [o for o in outputs if o.startswith("[no answer: the server refused this row")]
    assert len(refused) == 4 and len(outputs) == 16 and "4 rows the server refused were scored" in proc.stderr
    report = json.loads((folder / "eval-eval.json").read_text())
    assert report["complete"] and "enable_thinking" in report["meta"]["generator"]
    assert all(r["chat_template_kwargs"] == {"enable_thinking": False} for r in server.requests()[1:])  # after the check


@pytest.mark.slow
def test_a_wait_the_server_asks_for_extends_the_whole_call_deadline(tmp_path, double):
    # --timeout 1 --retries 1: a 10 s deadline for the call; the server asks to wait 11 s once, then answers.
    server = double("--fault", "status", "--status", "429", "--retry-after", "11", "--fault-count", "1",
                    "--fault-after", "1").start()  # fmt: skip
    out = tmp_path / "gen.jsonl"
    proc = generate(tmp_path, server.url, "--out", out, "--limit", "2", "--concurrency", "1", "--timeout", "1",
                    "--retries", "1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert row_ids(out) == [0, 1]


def test_templates_and_options_generate_cannot_honour_are_refused_and_prompts_render_as_text(tmp_path, double):
    server = double().start()
    out = tmp_path / "gen.jsonl"
    for text, message in [("  \n", "is empty"), ("{{ gold title }} {{ slate_titles }}", "{{ gold title }} is not a placeholder")]:
        (tmp_path / "t.txt").write_text(text)
        assert_one_line_error(generate(tmp_path, server.url, "--out", out, "--template", tmp_path / "t.txt"), 2, message)
    options = generate(tmp_path, server.url, "--out", out, "--max_completion_length", "8")
    assert_one_line_error(options, 2, "generate takes no trainer options (--max_completion_length)")
    assert not out.exists() and len(server.requests()) == 0

    (tmp_path / "t.txt").write_text("Rate this viewer:\n{{ prompt }}")
    proc = generate(tmp_path, server.url, "--out", out, "--template", tmp_path / "t.txt", "--limit", "2",
                    "--dataset-dir", tmp_path / "ds")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    from datasets import load_from_disk

    saved = load_from_disk(str(tmp_path / "ds"))
    assert all(p.startswith("Rate this viewer:\n") and "'role'" not in p for p in saved["prompt"])  # the user text
    assert "prompt_length" not in saved.column_names  # it measured the recipe's prompt, not the template's


def test_served_models_whose_names_read_alike_get_their_own_folders(tmp_path):
    from types import SimpleNamespace

    from grail_rl.evaluation.runner import served_choice
    from grail_rl.serving.client import Endpoint

    loaded = SimpleNamespace(recipe=SimpleNamespace(output=SimpleNamespace(dir=str(tmp_path / "out"))))
    folders = {served_choice(loaded, Endpoint(url, name), None).label
               for url, name in [("http://a/v1", "org/m"), ("http://a/v1", "org_m"), ("http://b/v1", "org/m")]}  # fmt: skip
    assert len(folders) == 3 and all(f.startswith("served-org_m-") for f in folders)
    assert served_choice(loaded, Endpoint("http://a/v1", "org/m"), None).label in folders  # the same model: the same
