"""Listing and validation commands import no torch, trl or transformers, and list what is installed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.test_recipe_validation import VALID

HEAVY = ("torch", "trl", "transformers")

PROBE = """
import sys
from grail_rl.cli.main import cli
try:
    cli(sys.argv[1:], prog_name="grail-rl", standalone_mode=False)
finally:
    print("HEAVY=" + ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def _probe(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args",
    [
        ["list-rewards"],
        ["list-rewards", "--json"],
        ["list-sections"],
        ["list-discriminators"],
        ["plugins", "--json"],
        ["--help"],
        ["validate", "recipe.yaml"],
    ],
)
def test_listing_and_validation_import_no_heavy_modules(args, tmp_path):
    (tmp_path / "train.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "recipe.yaml").write_text(VALID, encoding="utf-8")
    result = _probe(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stderr or result.stderr.rstrip().endswith("HEAVY="), result.stderr


def test_list_rewards_json_describes_each_builtin(run_cli):
    result = run_cli("list-rewards", "--json")
    assert result.returncode == 0, result.stderr
    rewards = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"accuracy", "format", "tag_count", "soft_overlong", "length", "repetition"} <= set(rewards)
    accuracy = rewards["accuracy"]
    assert accuracy["plugin"] == "builtin_rewards"
    assert accuracy["distribution"] == "grail-rl"
    assert accuracy["description"]
    assert {"name", "type", "required", "default", "description"} <= set(accuracy["config"][0])


def test_list_rewards_table_names_every_reward(run_cli):
    result = run_cli("list-rewards")
    assert result.returncode == 0
    for name in ("accuracy", "format", "soft_overlong"):
        assert name in result.stdout


@pytest.mark.parametrize("columns", ["80", "60"])
def test_list_rewards_table_keeps_every_column_on_a_narrow_terminal(run_cli, columns):
    result = run_cli("list-rewards", env={"COLUMNS": columns})
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= int(columns)
    # Cells fold onto several lines: join each column's text over the first reward's lines.
    body = [line.strip("│").split("│") for line in lines if line.startswith("│")]
    first = [row for row in body[: next(i for i, r in enumerate(body[1:], 1) if r[0].strip())]]
    cells = ["".join(part.strip() for part in column) for column in zip(*first, strict=True)]
    assert cells[0] == "accuracy"
    assert cells[1].replace(" ", "") == "builtin_rewards(grail-rl0.1.0)"
    assert cells[2].startswith("Next-click") and "opinion_share=0.5" in cells[3]


def test_version(run_cli):
    from grail_rl import __version__

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"grail-rl, version {__version__}"


def test_blocking_a_builtin_plugin_removes_its_rewards(run_cli):
    result = run_cli("list-rewards", "--json", env={"GRAIL_RL_BLOCK_PLUGINS": "builtin_rewards"})
    assert json.loads(result.stdout) == []
    plugins = json.loads(run_cli("plugins", "--json", env={"GRAIL_RL_BLOCK_PLUGINS": "builtin_rewards"}).stdout)
    assert plugins["blocked"] == ["builtin_rewards"]


def test_a_full_disk_is_one_line_not_a_bug_report(tmp_path):
    import resource

    def small_disk() -> None:  # no file may grow past 64 KB, as on a full disk (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65_536, 65_536))

    proc = subprocess.run([sys.executable, "-m", "grail_rl", "data", "synth", "--n", "2000", "--out", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=120, preexec_fn=small_disk)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.startswith("error: no space left"), proc.stderr
    assert "bug" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s/train.jsonl").exists()  # the atomic write left nothing half-made in its place
