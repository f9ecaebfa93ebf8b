"""``grail-rl new-plugin NAME --kind reward|section|discriminator``: a ready plugin package to start from.

The package (``grail-rl-NAME``, import name ``grail_rl_NAME``) holds a pyproject with the ``grail_rl`` entry
point, one plugin class with a documented Config registered through its kind's hook, tests that use
:mod:`grail_rl.testing` (the reward contract and the gold ranking for a reward), and a README. It installs with
``pip install ./grail-rl-NAME`` and its plugin is then listed and usable by name in a recipe. Nothing is written
when the name is not a Python identifier or the folder exists; the files are written into a staging folder
that is renamed into place once complete. No torch.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import tempfile
from pathlib import Path

from grail_rl.errors import GrailError

KINDS = ("reward", "section", "discriminator")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A grail-rl {kind} plugin: {name}."
requires-python = ">=3.11"
dependencies = ["grail-rl"]

# What makes grail-rl find the plugin: one entry point in the grail_rl group.
[project.entry-points.grail_rl]
{name} = "{package}"

[tool.setuptools]
packages = ["{package}"]
"""

REWARD = '''\
"""{name}: a grail-rl reward plugin (made by grail-rl new-plugin; replace the scoring with your own).

Use it in a recipe after ``pip install ./{dist}``::

    rewards:
      - name: accuracy
      - name: {name}
        weight: 0.5
        correct: 1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from grail_rl.plugins import PluginConfig, RewardFunction, hookimpl
from grail_rl.rewards.columns import column, completion_texts
from grail_rl.rewards.parser import parse_answer_text


class {cls}(RewardFunction):
    """Scores `correct` when the answer is the option the viewer clicked, 0 otherwise; abstains when unparsed."""

    name = "{name}"
    # The row fields this reward reads (docs/rewards.md lists them); the data pipeline carries exactly these.
    row_fields = ("gold_index",)

    class Config(PluginConfig):
        correct: float = Field(1.0, ge=0.0, le=10.0, description="The score of a correct answer.")

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        golds = column(kwargs, "gold_index", len(completions), reward=self.name, required=True)
        scores: list[float | None] = []
        for text, gold in zip(completion_texts(completions), golds, strict=True):
            pick = parse_answer_text(text)
            scores.append(None if pick is None else (self.config.correct if pick == gold else 0.0))
        return scores


@hookimpl
def register_rewards(register):
    register({cls})
'''

REWARD_TEST = '''\
"""{name}'s tests, with grail-rl's own checks for reward plugins."""

import {package}

from grail_rl.testing import check_gold_ranking, check_reward_contract, isolated_plugins


def test_the_reward_contract():
    check_reward_contract({package}.{cls}())


def test_no_wrong_reply_scores_above_the_ideal_one():
    check_gold_ranking({package}.{cls}())


def test_it_registers_through_the_hook():
    plugins = isolated_plugins({package}, builtins=False, names=["{name}"])
    assert plugins.rewards.get("{name}").cls is {package}.{cls}
'''

SECTION = '''\
"""{name}: a grail-rl prompt-section plugin (made by grail-rl new-plugin; replace the text with your own).

Use it in a recipe after ``pip install ./{dist}``::

    prompt:
      sections:
        - name: viewer
        - name: {name}
          header: CHANNEL PLAYING NOW
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from grail_rl.plugins import PluginConfig, PromptSection, hookimpl


class {cls}(PromptSection):
    """The channel of the video playing now, under its own header; left out when the row has none."""

    name = "{name}"

    class Config(PluginConfig):
        header: str = Field("CHANNEL PLAYING NOW", min_length=1, description="The block's first line.")

    def render(self, row: Mapping[str, Any]) -> str | None:
        channel = (row.get("current") or {{}}).get("channel_title")
        return f"{{self.config.header}}\\n{{channel}}" if channel else None


@hookimpl
def register_prompt_sections(register):
    register({cls})
'''

SECTION_TEST = '''\
"""{name}'s tests."""

import {package}

from grail_rl.data.schema import normalize_row
from grail_rl.testing import isolated_plugins

RAW = {{"issue": "gun_control", "current_video_title": "Now", "current_video_channel": "A channel",
       "slate_items": [{{"id": "a", "title": "First"}}, {{"id": "b", "title": "Second"}}], "gold_index": 1}}


def test_it_renders_the_row():
    text = {package}.{cls}().render(normalize_row(RAW))
    assert text == "CHANNEL PLAYING NOW\\nA channel"


def test_a_row_without_the_field_leaves_the_block_out():
    assert {package}.{cls}().render(normalize_row({{**RAW, "current_video_channel": None}})) is None


def test_it_registers_through_the_hook():
    plugins = isolated_plugins({package}, builtins=False, names=["{name}"])
    assert plugins.prompt_sections.get("{name}").cls is {package}.{cls}
'''

DISCRIMINATOR = '''\
"""{name}: a grail-rl discriminator plugin (made by grail-rl new-plugin; replace the model with your own).

It learns, per word, how much more often it appears in real (human) choice texts than in the policy's, and
scores a text by the average of its words' log-odds. Use it in a recipe after ``pip install ./{dist}``::

    discriminator:
      name: {name}
      smoothing: 1.0
    rewards:
      - name: accuracy
      - name: gail
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from grail_rl.plugins import Discriminator, PluginConfig, hookimpl


class {cls}(Discriminator):
    """Word log-odds of real against policy texts, averaged over a text's words, as P(real)."""

    name = "{name}"

    class Config(PluginConfig):
        smoothing: float = Field(1.0, gt=0.0, le=100.0, description="Added to every word count (Laplace).")

    def __init__(self, config=None):
        super().__init__(config)
        self.real: Counter[str] = Counter()
        self.fake: Counter[str] = Counter()

    def _log_odds(self, word: str) -> float:
        a = self.config.smoothing
        return math.log((self.real[word] + a) / (self.fake[word] + a))

    def score(self, texts: Sequence[str]) -> list[float]:
        out = []
        for text in texts:
            words = text.lower().split()
            mean = sum(self._log_odds(w) for w in words) / len(words) if words else 0.0
            out.append(1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, mean)))))
        return out

    def update(self, real: Sequence[str], fake: Sequence[str]) -> dict[str, float]:
        for text in real:
            self.real.update(text.lower().split())
        for text in fake:
            self.fake.update(text.lower().split())
        return {{"vocabulary": float(len(self.real | self.fake))}}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "counts.json").write_text(json.dumps({{"real": self.real, "fake": self.fake}}))

    def load(self, directory: Path) -> None:
        data = json.loads((directory / "counts.json").read_text())
        self.real, self.fake = Counter(data["real"]), Counter(data["fake"])


@hookimpl
def register_discriminators(register):
    register({cls})
'''

DISCRIMINATOR_TEST = '''\
"""{name}'s tests."""

import {package}

from grail_rl.testing import isolated_plugins


def test_it_learns_to_tell_real_from_policy_texts_and_keeps_it_across_a_save(tmp_path):
    disc = {package}.{cls}()
    for _ in range(5):
        disc.update(["a viewer picks the news"] * 4, ["option option option"] * 4)
    real, fake = disc.score(["the news", "option option"])
    assert 0.0 <= fake < 0.5 < real <= 1.0
    disc.save(tmp_path / "state")
    again = {package}.{cls}()
    again.load(tmp_path / "state")
    assert again.score(["the news"]) == [real]


def test_it_registers_through_the_hook():
    plugins = isolated_plugins({package}, builtins=False, names=["{name}"])
    assert plugins.discriminators.get("{name}").cls is {package}.{cls}
'''

README = """\
# {dist}

A grail-rl {kind} plugin, `{name}`, made by `grail-rl new-plugin`. Replace the example logic in
`{package}/__init__.py` with your own; keep the tests passing.

```bash
pip install ./{dist}                    # grail-rl finds it through the grail_rl entry point
grail-rl {listing} --json              # it is listed, with its options
pip install pytest && pytest {dist}/tests
```

The plugin API (`setup(context)`, Config options, the row fields a reward reads, async and group rewards) is in
grail-rl's docs/plugins.md and docs/rewards.md.
"""

TEMPLATES = {"reward": (REWARD, REWARD_TEST), "section": (SECTION, SECTION_TEST),
             "discriminator": (DISCRIMINATOR, DISCRIMINATOR_TEST)}  # fmt: skip
LISTINGS = {"reward": "list-rewards", "section": "list-sections", "discriminator": "list-discriminators"}


NAME = re.compile(r"^[a-z](?:[a-z0-9_]*[a-z0-9])?$")  # the registry's rule, and a valid package name
MAX_NAME = 64
KIND_KEYS = {"reward": "reward", "section": "prompt_section", "discriminator": "discriminator"}


def check_name(name: str, kind: str | None = None) -> None:
    """A name the registry accepts, that makes a valid distribution name, and that no built-in plugin of the
    kind already uses (the new one would be refused as a duplicate when loaded)."""
    if len(name) > MAX_NAME:
        raise GrailError(f"new-plugin: the name is {len(name)} characters long; use at most {MAX_NAME}")
    if not NAME.match(name) or keyword.iskeyword(name) or "__" in name:
        raise GrailError(
            f"new-plugin: {name!r} is not a plugin name: use lowercase letters, digits and single underscores, "
            "starting with a letter and not ending with an underscore (it becomes the recipe name and part of the "
            "Python package name)"
        )
    if kind in KIND_KEYS:
        from grail_rl.plugins.manager import load_plugins

        if name in load_plugins(use_entry_points=False).registry(KIND_KEYS[kind]):
            raise GrailError(f"new-plugin: {name!r} is a built-in {kind} of grail-rl; choose another name")


def new_plugin(name: str, kind: str, parent: Path) -> Path:
    """Write the package for plugin ``name`` of ``kind`` into ``parent/grail-rl-NAME``; returns that folder."""
    if kind not in KINDS:
        raise GrailError(f"new-plugin: --kind {kind!r}: choose one of {', '.join(KINDS)}")
    check_name(name, kind)
    dist = "grail-rl-" + name.replace("_", "-")
    package = f"grail_rl_{name}"
    target = parent / dist
    if target.exists() or target.is_symlink():
        raise GrailError(f"new-plugin: {target} already exists; choose another name or --dir (nothing was written)")
    if not parent.is_dir():
        raise GrailError(f"new-plugin: --dir {parent}: no such folder")
    values = {"name": name, "kind": kind, "dist": dist, "package": package,
              "cls": "".join(part.title() for part in name.split("_") if part) + kind.title(),
              "listing": LISTINGS[kind]}  # fmt: skip
    module, test = TEMPLATES[kind]
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{dist}.", dir=parent))
    except OSError as exc:
        raise GrailError(f"new-plugin: cannot write in {parent}: {exc.strerror or exc}") from None
    try:
        (staging / package).mkdir()
        (staging / "tests").mkdir()
        (staging / "pyproject.toml").write_text(PYPROJECT.format(**values), encoding="utf-8")
        (staging / package / "__init__.py").write_text(module.format(**values), encoding="utf-8")
        (staging / "tests" / f"test_{name}.py").write_text(test.format(**values), encoding="utf-8")
        (staging / "README.md").write_text(README.format(**values), encoding="utf-8")
        staging.chmod(0o755)
        try:
            os.rename(staging, target)  # fails rather than replace a folder that appeared meanwhile
        except OSError as exc:
            raise GrailError(f"new-plugin: cannot create {target}: {exc.strerror or exc} (nothing was written)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
