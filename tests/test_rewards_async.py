"""Async rewards: a plugin with ``async def __call__`` stays async through the runtime wrapper (fault
handling, diagnostics), so TRL awaits the run's async rewards together.

Concurrency is shown without timing assertions: the two rewards meet at an ``asyncio.Barrier`` that only
opens when both are waiting at once; run one after the other, the first would wait alone until its timeout
and fault. The wall time is printed for the reader (``-s``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest

from grail_rl.errors import GrailError
from grail_rl.plugins import RewardFunction
from grail_rl.rewards.diagnostics import RewardDiagnostics
from grail_rl.rewards.runtime import AsyncGuardedReward, GuardedReward, is_async_reward
from tests.conftest_training import tiny_model, toy_dataset, write_recipe  # noqa: F401  (fixture)
from tests.plugin_doubles import ConstantReward

WAIT = 0.5


class Meeting:
    """A barrier for two, created in whichever event loop first uses it (TRL's runs on its own thread)."""

    def __init__(self) -> None:
        self.barrier: asyncio.Barrier | None = None

    async def meet(self) -> None:
        if self.barrier is None:
            self.barrier = asyncio.Barrier(2)
        await asyncio.wait_for(self.barrier.wait(), timeout=20)


class WaitsOnIO(RewardFunction):
    """Waits WAIT seconds as on I/O and meets its partner there; scores 1."""

    name = "waits_a"
    meeting: Meeting | None = None

    async def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        await asyncio.sleep(WAIT)
        if self.meeting is not None:
            await self.meeting.meet()
        return [1.0] * len(completions)


class WaitsToo(WaitsOnIO):
    name = "waits_b"


class ReturnsTooFew(RewardFunction):
    name = "too_few"

    async def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        return [1.0]


def test_an_async_plugin_gets_the_async_guard_that_trl_recognises():
    from trl.trainer.utils import is_async_callable

    guarded = GuardedReward(WaitsOnIO(), plugin="tests")
    assert isinstance(guarded, AsyncGuardedReward) and is_async_reward(WaitsOnIO())
    sync = GuardedReward(ConstantReward(), plugin="tests")
    assert is_async_callable(guarded) and not is_async_callable(sync) and type(sync) is GuardedReward


def test_two_async_rewards_wait_together_with_their_checks_and_diagnostics():
    meeting = Meeting()
    diagnostics = RewardDiagnostics(["waits_a", "waits_b"])
    rewards = []
    for cls in (WaitsOnIO, WaitsToo):
        plugin = cls()
        plugin.meeting = meeting
        rewards.append(GuardedReward(plugin, plugin="tests", diagnostics=diagnostics))

    async def both():
        return await asyncio.gather(*(r(["<answer>1</answer>"] * 4, prompts=["p"] * 4) for r in rewards))

    started = time.perf_counter()
    results = asyncio.run(both())
    print(f"two rewards waiting {WAIT} s each took {time.perf_counter() - started:.2f} s together")
    assert results == [[1.0] * 4, [1.0] * 4]


def test_an_async_plugins_faults_are_handled_like_any_other():
    guarded = GuardedReward(ReturnsTooFew(), plugin="tests")
    with pytest.raises(GrailError, match="reward 'too_few' .* returned 1 values for 3 completions"):
        asyncio.run(guarded(["a", "b", "c"]))
    abstaining = GuardedReward(ReturnsTooFew(), plugin="tests", on_fault="abstain")
    assert asyncio.run(abstaining(["a", "b"])) == [None, None]


@pytest.mark.slow
def test_trl_runs_two_async_rewards_concurrently_in_a_real_training_step(tmp_path, tiny_model):  # noqa: F811
    from grail_rl.recipe.loader import load_recipe
    from grail_rl.training.run import run_training

    meeting = Meeting()
    funcs = []
    for cls in (WaitsOnIO, WaitsToo):
        plugin = cls()
        plugin.meeting = meeting
        funcs.append(GuardedReward(plugin, plugin="tests"))
    path = write_recipe(tmp_path, tiny_model, trainer={"max_steps": 1})
    started = time.perf_counter()
    result = run_training(load_recipe(path), train_dataset=toy_dataset(8), reward_funcs=funcs,
                          reward_weights=[0.5, 0.5], console=False, evaluate=False)  # fmt: skip
    print(f"one step with two {WAIT} s async rewards: {time.perf_counter() - started:.2f} s")
    assert result.global_step == 1 and meeting.barrier is not None
