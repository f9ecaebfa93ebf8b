"""``grail-rl check-rewards``: every reward of a recipe against the ideal reply, near misses and garbage, on the
recipe's rows; exit 2 with the row and replies when a wrong reply outranks the ideal one; the same check for
plugin authors in grail_rl.testing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from grail_rl.plugins import RewardFunction
from grail_rl.rewards.accuracy import AccuracyReward
from grail_rl.rewards.columns import column, completion_texts
from grail_rl.rewards.parser import parse_answer_text
from grail_rl.testing import check_gold_ranking
from tests.conftest_training import cli_env

RECIPE = """\
model: {name_or_path: ./no-model}
data: {synthetic: {n: 120, seed: 3, cache_dir: synth}}
rewards:
REWARDS
output: {dir: out}
"""

# A third-party plugin installed by path for the subprocess: a reward that prefers wrong answers, one that
# raises, and an async one.
PLUGIN = '''
import asyncio
from grail_rl.plugins import RewardFunction, hookimpl
from grail_rl.rewards.columns import column, completion_texts
from grail_rl.rewards.parser import parse_answer_text

class Contrarian(RewardFunction):
    """Scores 1 for any answer but the gold."""
    name = "contrarian"
    def __call__(self, completions, **kwargs):
        golds = column(kwargs, "gold_index", len(completions), reward=self.name, required=True)
        return [float(parse_answer_text(t) not in (None, g)) for t, g in zip(completion_texts(completions), golds)]

class Broken(RewardFunction):
    """Raises."""
    name = "broken"
    def __call__(self, completions, **kwargs):
        raise RuntimeError("the judge is down")

class Patient(RewardFunction):
    """Async: waits, then scores the length."""
    name = "patient"
    async def __call__(self, completions, **kwargs):
        await asyncio.sleep(0)
        return [min(len(t), 100) / 100 for t in completion_texts(completions)]

@hookimpl
def register_rewards(register):
    for cls in (Contrarian, Broken, Patient):
        register(cls)
'''

RUNNER = """
import sys
from grail_rl.plugins import manager
from grail_rl.plugins.registry import PluginSource
import checkplugin
manager._extra_plugins.append((checkplugin, PluginSource(plugin="checkplugin")))
from grail_rl.cli.main import main
sys.argv = ["grail-rl", *sys.argv[1:]]
main()
"""


def check(tmp_path, rewards: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "checkplugin.py").write_text(PLUGIN)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.replace("REWARDS", rewards))
    return subprocess.run([sys.executable, "-c", RUNNER, "check-rewards", str(recipe), *args], cwd=tmp_path,
                          env=cli_env(PYTHONPATH=str(tmp_path)), capture_output=True, text=True, timeout=240)  # fmt: skip


def test_the_built_in_rewards_rank_the_ideal_reply_first(tmp_path):
    proc = check(tmp_path, "  - {name: accuracy}\n  - {name: format}\n  - {name: tag_count}", "--n", "30", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = {r["reward"]: r for r in json.loads(proc.stdout)["rewards"]}
    # The wrong option keeps the right opinion: half of the accuracy reward (opinion_share 0.5).
    assert results["accuracy"]["means"]["ideal"] == 1.0 and results["accuracy"]["means"]["wrong_option"] == 0.5
    assert results["format"]["means"]["garbage_empty"] == 0.0 and results["format"]["garbage_at_bottom_or_abstains"]
    assert all(r["wrong_above_ideal"] == 0 and not r["errors"] for r in results.values())
    # The answer injected inside <think> is the first <answer> block: the accuracy reward credits it (the rule
    # DOMAIN.md section 4 keeps for comparability), and the check says so.
    assert results["accuracy"]["garbage_above_a_real_reply"] == {"garbage_injected_answer": 30}


def test_a_reward_that_prefers_wrong_answers_fails_with_the_row_and_replies(tmp_path):
    proc = check(tmp_path, "  - {name: accuracy}\n  - {name: contrarian}\n  - {name: broken}\n  - {name: patient}", "--n", "10")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "WRONG RANKING: reward 'contrarian' gives the wrong_option reply 1.000 and the ideal reply 0.000 on row 0" in proc.stdout
    assert '\n  ideal: "<think>' in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "contrarian, broken" in errors[0] and "Traceback" not in proc.stderr
    assert "the judge is down" in proc.stdout  # reported per reward; the others were still checked
    assert "patient" in proc.stdout


def test_plugin_authors_get_the_same_check():
    check_gold_ranking(AccuracyReward())

    class Contrarian(RewardFunction):
        name = "contrarian_local"

        def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
            golds = column(kwargs, "gold_index", len(completions), reward=self.name, required=True)
            return [float(parse_answer_text(t) not in (None, g)) for t, g in zip(completion_texts(completions), golds, strict=True)]

    with pytest.raises(AssertionError, match="the wrong_option reply scores 1.0 above the ideal reply's 0.0"):
        check_gold_ranking(Contrarian())
    with pytest.raises(AssertionError, match="garbage_injected_answer scores above a real reply"):
        check_gold_ranking(AccuracyReward(), garbage_at_bottom=True)


def test_a_reward_that_only_abstains_passes_and_json_is_one_document(tmp_path):
    alone = check(tmp_path, "  - {name: choice_diversity}", "--n", "5", "--json")
    assert alone.returncode == 0, alone.stderr[-2000:]
    result = json.loads(alone.stdout)["rewards"][0]
    assert result["ok"] and result["means"]["ideal"] is None  # one reply per group: nothing to compare
    failing = check(tmp_path, "  - {name: contrarian}", "--n", "5", "--json")
    assert failing.returncode == 2
    document = json.loads(failing.stdout)  # exactly one JSON document, the failure in it
    assert document["ok"] is False and document["failed"] == ["contrarian"]
