"""``grail-rl new-plugin``: a package that installs with pip into a fresh environment, is listed, validates in a
recipe and passes its own tests; bad names and existing folders are one line and leave nothing behind."""

from __future__ import annotations

import json
import sys

import pytest

from tests.test_plugin_install import _run, fresh_venv


def new_plugin(tmp_path, *args: str):
    return _run([sys.executable, "-m", "grail_rl", "new-plugin", *args], tmp_path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["Judge"], "'Judge' is not a plugin name"),
        (["my-judge"], "'my-judge' is not a plugin name"),
        (["class"], "'class' is not a plugin name"),
        (["foo_"], "'foo_' is not a plugin name"),
        (["_foo"], "'_foo' is not a plugin name"),
        (["a" * 247], "the name is 247 characters long; use at most 64"),
        (["accuracy"], "'accuracy' is a built-in reward of grail-rl"),
        (["viewer", "--kind", "section"], "'viewer' is a built-in section of grail-rl"),
        (["judge", "--dir", "missing"], "--dir missing: no such folder"),
    ],
)
def test_a_bad_name_or_folder_is_one_line_and_writes_nothing(tmp_path, args, message):
    proc = new_plugin(tmp_path, *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "grail-rl-judge").mkdir()
    (tmp_path / "grail-rl-judge" / "mine.txt").write_text("my work")
    proc = new_plugin(tmp_path, "judge")
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert [p.name for p in (tmp_path / "grail-rl-judge").iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grail-rl-judge"]  # no staging folder left


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["reward", "section", "discriminator"])
def test_a_new_plugin_installs_lists_validates_and_passes_its_tests(tmp_path, kind):
    made = new_plugin(tmp_path, f"my_{kind}", "--kind", kind)
    assert made.returncode == 0, made.stderr
    package = tmp_path / f"grail-rl-my-{kind}"
    python = str(fresh_venv(tmp_path) / "bin" / "python")
    installed = _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", str(package)],
                     tmp_path)  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listing = {"reward": "list-rewards", "section": "list-sections", "discriminator": "list-discriminators"}[kind]
    listed = _run([python, "-m", "grail_rl", listing, "--json"], tmp_path)
    entry = next(e for e in json.loads(listed.stdout) if e["name"] == f"my_{kind}")
    assert entry["distribution"] == f"grail-rl-my-{kind}"
    block = {
        "reward": "rewards:\n  - name: accuracy\n  - {name: my_reward, weight: 0.5, correct: 1.0}\n",
        "section": "prompt:\n  sections: [{name: viewer}, {name: my_section}]\nrewards: [{name: accuracy}]\n",
        "discriminator": "discriminator: {name: my_discriminator, smoothing: 2.0}\n"
        "rewards: [{name: accuracy}, {name: gail}]\n",
    }[kind]
    (tmp_path / "recipe.yaml").write_text(
        "model: {name_or_path: ./model}\ndata: {synthetic: {n: 60}}\n" + block + "output: {dir: out}\n"
    )
    valid = _run([python, "-m", "grail_rl", "validate", "recipe.yaml"], tmp_path)
    assert valid.returncode == 0, valid.stderr
    tests = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")], tmp_path)
    assert tests.returncode == 0 and "passed" in tests.stdout, tests.stdout[-2000:]
