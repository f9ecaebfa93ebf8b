"""The ``llm_judge`` reward against a real HTTP server on 127.0.0.1 (tests/openai_double.py, which echoes the
end of the rubric it is sent, so a rubric ending in the completion makes the judge's score the completion's own
"Score: N"): scores, the cache, bounded concurrency, an outage (abstains, training goes on), 500s (retried),
and recipe validation."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from grail_rl.errors import RecipeError
from grail_rl.rewards.llm_judge import LlmJudgeConfig, LlmJudgeReward
from tests.conftest_training import run_cli, tiny_model, write_recipe  # noqa: F401  (fixture)
from tests.openai_double import DoubleServer


@contextmanager
def served_judge(tmp_path: Path) -> Iterator[LlmJudgeReward]:
    """A default llm_judge whose server (the double) runs until the block ends, for the contract tests."""
    server = DoubleServer(tmp_path).start()
    try:
        yield LlmJudgeReward(LlmJudgeConfig(endpoint=server.url, model="double"))
    finally:
        server.kill()


def judge(server: DoubleServer, **options) -> LlmJudgeReward:
    return LlmJudgeReward(LlmJudgeConfig(endpoint=server.url, model="double", rubric="Rate this.\n{{ completion }}",
                                         **options))  # fmt: skip


def call(reward: LlmJudgeReward, completions: list[str], **columns) -> tuple[list[float | None], dict[str, float]]:
    logged: dict[str, float] = {}
    values = asyncio.run(reward(completions, prompts=["p"] * len(completions), log_metric=logged.__setitem__, **columns))
    return values, logged


def test_scores_are_parsed_mapped_and_cached_by_rubric(double):
    server = double().start()
    reward = judge(server, score_min=1, score_max=9)
    values, logged = call(reward, ["Score: 5", "Score: 9", "score = 1", "Score: 5", "no score", "Score: 10",
                                   "Score: 2 then Score: 3", "Score: nan"])  # fmt: skip
    assert values == [0.5, 1.0, 0.0, 0.5, None, None, 0.25, None]
    assert logged["rewards/llm_judge/requests"] == 7 and logged["rewards/llm_judge/cache_hit_rate"] == 1 / 8
    assert logged["rewards/llm_judge/unscored_rate"] == 3 / 8 and logged["rewards/llm_judge/request_seconds"] > 0
    assert len(server.requests()) == 7  # the repeated completion was asked once

    again, logged = call(reward, ["Score: 9", "no score", "Score: 4"])
    assert again == [1.0, None, 0.375]
    assert logged["rewards/llm_judge/requests"] == 1 and logged["rewards/llm_judge/cache_hit_rate"] == 2 / 3
    assert len(server.requests()) == 8  # warm cache: only the new completion reached the server


def test_the_cache_is_bounded_and_can_be_turned_off(double):
    server = double().start()
    small = judge(server, cache_size=2)
    for text in ["Score: 1", "Score: 2", "Score: 1", "Score: 3"]:
        call(small, [text])
    assert len(server.requests()) == 3  # "Score: 1" the second time came from the cache, and is now recent
    call(small, ["Score: 1"])  # kept: "Score: 2" was the least recently used
    assert len(server.requests()) == 3
    call(small, ["Score: 2"])  # evicted: asked again
    assert len(server.requests()) == 4 and len(small._cache) == 2
    off = judge(server, cache_size=0)
    call(off, ["Score: 1"])
    call(off, ["Score: 1"])
    assert len(server.requests()) == 6


def test_the_rubric_reads_row_columns_and_requests_stay_within_the_concurrency(double):
    server = double("--latency", "0.2").start()
    reward = LlmJudgeReward(LlmJudgeConfig(endpoint=server.url, model="double", concurrency=4,
                                           rubric="Gold: {{ gold_title }}\n{{ completion }}"))  # fmt: skip
    values, _ = call(reward, [f"Score: {i % 10}" for i in range(16)], gold_title=[f"t{i}" for i in range(16)])
    assert values == [(i % 10) / 10 for i in range(16)]
    inflight = [r["inflight"] for r in server.requests()]
    assert max(inflight) <= 4 and max(inflight) > 1  # concurrent, and bounded
    with pytest.raises(ValueError, match="'gold_title'"):
        call(reward, ["Score: 1"])  # the batch lacks the column the rubric names


def test_an_outage_makes_the_judge_abstain_and_it_scores_again_after(double, caplog):
    server = double().start()
    reward = judge(server, max_retries=0)
    assert call(reward, ["Score: 4"])[0] == [0.4]
    server.kill()
    with caplog.at_level(logging.WARNING, logger="grail_rl.rewards.llm_judge"):
        values, logged = call(reward, ["Score: 4", "Score: 6"])
    assert values == [0.4, None]  # the cached score stays; the new one abstains
    assert logged["rewards/llm_judge/failed_requests"] == 1 and logged["rewards/llm_judge/failed_attempts"] >= 1
    assert "1 of 2 completions abstain" in caplog.text and "cannot reach" in caplog.text
    server.start()
    assert call(reward, ["Score: 6"])[0] == [0.6]  # a failure is never cached


def test_an_outage_pauses_the_judge_so_batches_do_not_wait_on_a_dead_server(double, caplog):
    server = double().start()
    reward = judge(server, max_retries=0, concurrency=2, outage_pause=1.0)
    server.kill()
    with caplog.at_level(logging.WARNING, logger="grail_rl.rewards.llm_judge"):
        values, logged = call(reward, [f"Score: {i}" for i in range(8)])
        assert values == [None] * 8 and logged["rewards/llm_judge/skipped"] >= 1  # not every one waited
        assert logged["rewards/llm_judge/failed_requests"] + logged["rewards/llm_judge/skipped"] == 8
        values, logged = call(reward, ["Score: 3"])
        assert values == [None] and logged["rewards/llm_judge/skipped"] == 1  # paused: not even asked
    assert caplog.text.count("completions abstain") == 1  # one warning per outage
    server.start()
    time.sleep(1.1)
    assert call(reward, ["Score: 3"])[0] == [0.3]  # after the pause it asks again


def test_500s_for_a_while_are_retried_and_counted(double):
    server = double("--fault", "status", "--fault-count", "3", "--retry-after", "0.05").start()
    values, logged = call(judge(server, max_retries=3), ["Score: 2", "Score: 8"])
    assert values == [0.2, 0.8] and logged["rewards/llm_judge/failed_attempts"] == 3
    assert logged["rewards/llm_judge/failed_requests"] == 0


def recipe_with(tmp_path, **judge_options):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"name_or_path": "./no-model"},
        "data": {"synthetic": {"n": 40, "seed": 1, "cache_dir": str(tmp_path / "synth")}},
        "rewards": [{"name": "accuracy"}, {"name": "llm_judge", "endpoint": "http://127.0.0.1:9/v1", "model": "m",
                                           **judge_options}],
        "output": {"dir": str(tmp_path / "out")},
    }))  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"score_pattern": "score: \\d+"}, "needs exactly one group"),
        ({"score_pattern": "(unclosed"}, "not a regular expression"),
        ({"score_min": 5, "score_max": 5}, "must be above score_min"),
        ({"endpoint": "127.0.0.1:8000"}, "give an http:// or https:// URL"),
        ({"rubric": "{{ completion }} for {{ nope }}"}, "names {{ nope }}, which no row has"),
        ({"rubric": "{{ completions }}"}, "did you mean {{ completion }}"),
        ({"rubric": "rate {{ prompt }}"}, "has no {{ completion }}"),
        ({"rubric": "{{ completion }} for {{ gold title }}"}, "{{ gold title }} is not a placeholder"),
        ({"score_pattern": "(\\d*)"}, "matches an empty reply"),
        ({"score_min": -1e308, "score_max": 1e308}, "too large"),
        ({"model": "   "}, "give the model name"),
        ({"api_key": "sk-123"}, "never holds an API key"),
        ({"timeout": float("nan")}, "timeout"),
    ],
)
def test_bad_judge_settings_are_recipe_errors(tmp_path, options, message):
    from grail_rl.recipe.loader import load_recipe

    with pytest.raises(RecipeError, match=message) as caught:
        load_recipe(recipe_with(tmp_path, **options))
    assert "rewards[1]" in str(caught.value)


def test_an_optional_row_field_in_the_rubric_is_carried_into_the_split(tmp_path):
    from grail_rl.data.dataset import build_split
    from grail_rl.recipe.loader import load_recipe

    loaded = load_recipe(recipe_with(tmp_path, rubric="Now watching {{ current_video_title }}.\n{{ completion }}"))
    dataset, _ = build_split(loaded.recipe, loaded.plugins, "train", limit=None)
    assert "current_video_title" in dataset.column_names


@pytest.mark.slow
def test_training_uses_the_judge_and_goes_on_through_an_outage(tmp_path, tiny_model, double):  # noqa: F811
    healthy = double().start()
    rewards = [{"name": "accuracy"},
               {"name": "llm_judge", "endpoint": healthy.url, "model": "double", "rubric": "Score: 5 {{ completion }}"}]
    write_recipe(tmp_path, tiny_model, rewards=rewards, trainer={"max_steps": 2})
    proc = run_cli("train", str(tmp_path / "recipe.yaml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logged = [json.loads(line) for line in (tmp_path / "out/metrics.jsonl").read_text().splitlines()]
    steps = [m for m in logged if "rewards/llm_judge/mean" in m]
    assert steps and all(m["rewards/llm_judge/mean"] == pytest.approx(0.5) for m in steps)
    assert all("rewards/llm_judge/seconds" in m and "rewards/llm_judge/cache_hit_rate" in m for m in steps)

    # The server answers the setup check, then only 500s: the judge abstains and training finishes.
    failing = double("--fault", "status", "--fault-count", "100000", "--fault-after", "1").start()
    rewards[1].update(endpoint=failing.url, max_retries=0)
    write_recipe(tmp_path, tiny_model, rewards=rewards, trainer={"max_steps": 2}, output={"dir": str(tmp_path / "out2")})
    proc = run_cli("train", str(tmp_path / "recipe.yaml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "completions abstain: the judge failed" in proc.stderr
    logged = [json.loads(line) for line in (tmp_path / "out2/metrics.jsonl").read_text().splitlines()]
    steps = [m for m in logged if "rewards/llm_judge/abstain_rate" in m]
    assert steps and all(m["rewards/llm_judge/abstain_rate"] == 1.0 and m["rewards/llm_judge/failed_requests"] > 0
                         for m in steps)  # fmt: skip

    # A judge that is down before the run starts stops it before the first step, in one line.
    failing.kill()
    write_recipe(tmp_path, tiny_model, rewards=rewards, trainer={"max_steps": 2}, output={"dir": str(tmp_path / "out3")})
    proc = run_cli("train", str(tmp_path / "recipe.yaml"), cwd=tmp_path)
    assert proc.returncode == 2 and "cannot reach" in proc.stderr and "Traceback" not in proc.stderr


def test_setup_checks_the_server_even_inside_a_running_event_loop(double):
    server = double().start()
    reward = judge(server)

    async def in_a_notebook() -> None:
        reward.setup(None)  # a running loop here, as in Jupyter or TRL's reward loop

    asyncio.run(in_a_notebook())
    assert len(server.requests()) == 1
    server.kill()
    with pytest.raises(Exception, match="cannot reach"):
        judge(server, max_retries=0).setup(None)


def test_an_unscored_reply_is_asked_again_when_sampling_could_change_it(double):
    server = double().start()
    greedy, sampled = judge(server), judge(server, temperature=0.7)
    for reward in (greedy, sampled):
        call(reward, ["no score here"])
        call(reward, ["no score here"])
    assert len(server.requests()) == 3  # greedy asked once (cached), sampled twice


def test_check_rewards_checks_the_judges_server_and_fails_a_judge_that_never_scores(tmp_path, double):
    server = double().start()

    def check(**options):
        path = tmp_path / "judge.yaml"
        path.write_text(yaml.safe_dump({
            "model": {"name_or_path": "./no-model"},
            "data": {"synthetic": {"n": 60, "seed": 1, "cache_dir": str(tmp_path / "synth")}},
            "rewards": [{"name": "accuracy"}, {"name": "llm_judge", "model": "double", **options}],
            "output": {"dir": str(tmp_path / "out")},
        }))  # fmt: skip
        return run_cli("check-rewards", str(path), "--n", "4", cwd=tmp_path)

    scoring = check(endpoint=server.url, rubric="Score: 7 {{ completion }}")  # a score before each reply
    assert scoring.returncode == 0, scoring.stdout[-2000:] + scoring.stderr[-2000:]
    silent = check(endpoint=server.url)  # the double echoes the default rubric: never a number to read
    assert silent.returncode == 2 and "NEVER SCORED: reward 'llm_judge'" in silent.stdout
    wrong = check(endpoint=server.url, model="nope")
    assert wrong.returncode == 2 and "reward 'llm_judge':" in wrong.stderr and "'nope'" in wrong.stderr
