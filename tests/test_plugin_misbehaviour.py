"""Plugins that misbehave: sys.exit at import, in a hook, in a constructor or in a reward; printing while the
CLI prints JSON; editing the completions in place; huge rewards. Each is the plugin's fault, named, never a
silent exit 0."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path
from types import SimpleNamespace

import pytest

from grail_rl.errors import GrailError
from grail_rl.plugins import PluginConfig, PromptSection, RewardFunction
from grail_rl.plugins.manager import Plugins, load_plugins
from grail_rl.plugins.registry import PluginSource
from grail_rl.prompts.builder import PromptBuilder
from grail_rl.rewards import RewardFault, build_reward_functions
from grail_rl.rewards.diagnostics import reward_statistics
from tests.plugin_doubles import make_plugin, reward_plugin

REPO_ROOT = Path(__file__).resolve().parents[1]


def fake_distribution(folder: Path, name: str, module_source: str) -> None:
    """An installed-looking distribution on ``folder`` (put on PYTHONPATH): a module and its entry point."""
    (folder / f"{name}.py").write_text(textwrap.dedent(module_source), encoding="utf-8")
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[grail_rl]\n{name} = {name}\n", encoding="utf-8")


def cli(*args: str, cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": os.pathsep.join([str(pythonpath), str(REPO_ROOT)])}
    return subprocess.run([sys.executable, "-m", "grail_rl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_plugins_that_exit_or_print_at_import_are_named_and_json_stays_json(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    fake_distribution(site, "exits_at_import", "import sys\nsys.exit(0)\n")
    fake_distribution(site, "noisy_plugin", """\
        print("hello from noisy_plugin")
        from grail_rl.plugins import hookimpl

        @hookimpl
        def register_rewards(register):
            print("registering")
        """)
    listed = cli("list-rewards", "--json", cwd=tmp_path, pythonpath=site)
    assert listed.returncode == 0, listed.stderr
    names = [r["name"] for r in json.loads(listed.stdout)]  # stdout is pure JSON despite the prints
    assert "accuracy" in names
    assert "exits_at_import" in listed.stderr and "called sys.exit(0)" in listed.stderr
    assert "hello from noisy_plugin" in listed.stderr
    plugins = json.loads(cli("plugins", "--json", cwd=tmp_path, pythonpath=site).stdout)
    assert [f["plugin"] for f in plugins["failed"]] == ["exits_at_import"]


def test_validate_json_prints_its_errors_as_json(tmp_path):
    (tmp_path / "recipe.yaml").write_text("model: {name_or_path: x}\nrewards: [{name: acuracy}]\n")
    out = cli("validate", "recipe.yaml", "--json", cwd=tmp_path, pythonpath=tmp_path)
    assert out.returncode == 2
    document = json.loads(out.stdout)
    assert document["ok"] is False and any("acuracy" in p for p in document["problems"])
    assert document["error"] == document["problems"][0]


def test_sys_exit_in_a_hook_is_a_plugin_failure():
    plugin = make_plugin("exits_in_hook", register_rewards=lambda register: sys.exit(3))
    plugins = load_plugins(builtins=False, use_entry_points=False, extra=[(plugin, PluginSource("exits_in_hook"))], blocked=())
    [failure] = plugins.failures
    assert failure.plugin == "exits_in_hook" and "called sys.exit(3)" in failure.error


def test_sys_exit_at_entry_point_import_is_a_plugin_failure(tmp_path, monkeypatch):
    (tmp_path / "exiting_module.py").write_text("raise SystemExit('bye')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = Plugins()
    assert plugins.add_entry_point(EntryPoint("exiting", "exiting_module", "grail_rl")) is False
    assert "called sys.exit('bye')" in plugins.failures[0].error


class ExitingReward(RewardFunction):
    """Ends the program from inside the reward."""

    name = "exiting"

    def __call__(self, completions, **kwargs):
        sys.exit(0)


class ExitingAtStart(RewardFunction):
    """Ends the program while it is built."""

    name = "exiting_at_start"

    def __init__(self, config: PluginConfig | None = None):
        sys.exit(0)

    def __call__(self, completions, **kwargs):
        return [0.0] * len(completions)


class Vandal(RewardFunction):
    """Rewrites the completions and a column in place, then scores."""

    name = "vandal"

    def __call__(self, completions, **kwargs):
        n = len(completions)
        for i, completion in enumerate(completions):
            if isinstance(completion, list):
                completion[0]["content"] = "<answer>1</answer>"
            else:
                completions[i] = "<answer>1</answer>"
        kwargs["gold_index"][:] = [1] * len(completions)
        completions.append("extra")
        return [0.0] * n


class Recorder(RewardFunction):
    """Records what it was given."""

    name = "recorder"
    seen: list = []

    def __call__(self, completions, **kwargs):
        Recorder.seen.append((json.dumps(completions), list(kwargs["gold_index"])))
        return [1.0] * len(completions)


class Huge(RewardFunction):
    """Finite but absurd values."""

    name = "huge"

    def __call__(self, completions, **kwargs):
        return [1e308] * len(completions)


def _build(*classes, on_fault="stop", fault_dir=None):
    plugins = load_plugins(builtins=False, use_entry_points=False, extra=[(reward_plugin("doubles", *classes), PluginSource("doubles"))],
                           blocked=())  # fmt: skip
    entries = [(plugins.rewards.get(cls.name), None, 1.0, on_fault) for cls in classes]
    return build_reward_functions(entries, fault_dir=fault_dir)[0]


def _call(func, completions, **columns):
    return func(completions=completions, prompts=[[{"role": "user", "content": "p"}]] * len(completions),
                trainer_state=SimpleNamespace(global_step=5), log_metric=lambda *a: None, **columns)  # fmt: skip


def test_a_reward_calling_sys_exit_stops_training_as_that_rewards_fault(tmp_path):
    [func] = _build(ExitingReward, fault_dir=tmp_path)
    with pytest.raises(RewardFault, match=r"reward 'exiting' \(plugin 'doubles'\) at step 5 raised called sys.exit\(0\)"):
        _call(func, ["a", "b"])


def test_a_reward_that_exits_while_built_is_one_line():
    with pytest.raises(GrailError, match=r"reward 'exiting_at_start' \(plugin 'doubles'\) failed to start: called sys"):
        _build(ExitingAtStart)


@pytest.mark.parametrize("conversational", [False, True])
def test_a_reward_editing_its_inputs_in_place_changes_nothing_for_the_next(conversational):
    Recorder.seen = []
    vandal, recorder = _build(Vandal, Recorder)
    texts = ["<answer>2</answer>", "<answer>3</answer>"]
    completions = [[{"role": "assistant", "content": t}] for t in texts] if conversational else list(texts)
    before = json.dumps(completions)
    gold = [2, 3]
    for func in (vandal, recorder):
        _call(func, completions, gold_index=gold)
    assert json.dumps(completions) == before and gold == [2, 3]
    assert Recorder.seen == [(before, [2, 3])]


def test_huge_finite_rewards_are_faults_and_diagnostics_never_overflow(tmp_path):
    [func] = _build(Huge, fault_dir=tmp_path)
    with pytest.raises(RewardFault, match="larger than 1e\\+06"):
        _call(func, ["a", "b"])
    stats = reward_statistics("x", [1e308, -1e308, 1e308])
    assert all(math.isfinite(v) for v in stats.values())
    assert stats["rewards/x/mean"] == pytest.approx(1e308 / 3)


class ExitingSection(PromptSection):
    """Exits while rendering."""

    name = "exiting_section"

    def render(self, row):
        raise SystemExit(1)


def test_a_section_that_exits_while_rendering_is_named():
    builder = PromptBuilder([ExitingSection()])
    with pytest.raises(GrailError, match="prompt section 'exiting_section' failed: called sys.exit"):
        builder.user_prompt({})
