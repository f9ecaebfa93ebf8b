"""Prompt sections: the default text, options, third-party sections and the recipe's choices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grail_rl.data.schema import normalize_row
from grail_rl.plugins import PluginConfig, PromptSection
from grail_rl.prompts.builder import PromptBuilder, default_system_prompt
from grail_rl.testing import isolated_plugins
from tests.plugin_doubles import make_plugin

ROW = normalize_row({
    "issue": "gun_control",
    "current_video_title": "Gun Control: America's Got A Gun Problem", "current_video_channel": "AJ+",
    "slate_items": [
        {"id": "aaaaaaaaaaa", "title": "Most Americans Want More Gun Control", "channel_title": "The New York Times",
         "duration": 231, "view_count": 43105, "like_count": 706, "comment_count": 40},
        {"id": "bbbbbbbbbbb", "title": "Why Does America Love Guns?", "view_count": 380334, "like_count": 5370},
    ],
    "gold_index": 2,
    "watched_detailed": [
        {"title": f"Old {i}", "channel_title": "AJ+", "watch_seconds": 37, "total_seconds": 156} for i in range(15)
    ],
    "age": 32, "race": "White (non-Hispanic)", "gender": "female", "pid1": "Republican", "ideo1": "Conservative",
    "income": "$60,000-$69,999", "college": True, "freq_youtube": 3, "stricter_laws": True, "gun_index": 0.35,
    "gun_enthusiasm": 1,
})  # fmt: skip


def default_builder(**kwargs):
    return PromptBuilder.default(isolated_plugins(), **kwargs)


def test_default_sections_render_the_study_format():
    text = default_builder().user_prompt(ROW)
    blocks = text.split("\n\n")
    assert blocks[0] == (
        "VIEWER 32-year-old, White (non-Hispanic) woman; republican conservative; $60,000-$69,999; "
        "college-educated; watches YouTube weekly.\nInitial Viewpoint: Supports stricter gun laws"
    )
    assert blocks[1] == "CURRENTLY WATCHING Gun Control: America's Got A Gun Problem (from AJ+)"
    history = blocks[2].split("\n")
    assert history[0] == "RECENTLY WATCHED (NEWEST LAST)" and len(history) == 13  # default max_history 12
    assert history[1] == "1. Old 3 (watched 37s of 156s (24% complete), from AJ+)"
    assert blocks[3] == (
        "SURVEY HIGHLIGHTS\nparty identification is Republican, ideology is Conservative, watches YouTube weekly, "
        "gun regulation support score is 35%, and identifies as enthusiastic about guns."
    )
    assert blocks[4] == (
        "OPTIONS\n1. Most Americans Want More Gun Control (The New York Times, 231s long) — Engagement: views "
        "43,105, likes 706, comments 40\n2. Why Does America Love Guns? — Engagement: views 380,334, likes 5,370"
    )
    assert blocks[5].endswith("will the viewer's opinion on Gun control increase, decrease, or stay the same?")


def test_carried_text_is_used_when_survey_fields_are_absent():
    row = {**ROW, "survey": {}, "viewer_text": "carried line.", "viewpoint_text": None, "highlights_text": "x."}
    text = default_builder().user_prompt(row)
    assert text.startswith("VIEWER carried line.\n\nCURRENTLY")
    assert "SURVEY HIGHLIGHTS\nx." in text


def test_empty_history_and_section_options():
    plugins = isolated_plugins()
    sections = [
        plugins.prompt_sections.get("recently_watched").build({"max_history": 0}),
        plugins.prompt_sections.get("options").build({"show_ids": True, "engagement": "none"}),
        plugins.prompt_sections.get("questions").build({"opinion": False}),
    ]
    builder = PromptBuilder(sections, system_prompt="sys")
    text = builder.user_prompt({**ROW, "history": []})
    assert "RECENTLY WATCHED (NEWEST LAST)\n(no recently watched videos available)" in text
    assert "2. Why Does America Love Guns? (id bbbbbbbbbbb)\n" in text
    assert "Engagement" not in text and "opinion" not in text
    assert builder.messages(ROW)[0] == {"role": "system", "content": "sys"}
    assert len(PromptBuilder(sections, "").messages(ROW)) == 1


def test_engagement_from_a_stats_file(tmp_path):
    stats = tmp_path / "stats.json"
    stats.write_text('{"aaaaaaaaaaa": {"view_count": 5, "like_count": null, "comment_count": 1}}', encoding="utf-8")
    section = isolated_plugins().prompt_sections.get("options").build({"engagement": "stats", "video_stats": stats})
    text = section.render(ROW)
    assert "— Engagement: views 5, comments 1\n" in text
    assert text.endswith("views 380,334, likes 5,370")  # not in the file: the item's own counts


def test_default_system_prompt_asks_for_the_study_format():
    text = default_system_prompt()
    for tag in ("<think>", "<answer>", "<opinion>", "no_change"):
        assert tag in text


class MoodSection(PromptSection):
    """MOOD: a third-party section."""

    name = "mood"

    class Config(PluginConfig):
        word: str = "curious"

    def render(self, row: Mapping[str, Any]) -> str | None:
        return f"MOOD {self.config.word} about {row['issue']}"


def test_a_third_party_section_plugs_into_a_recipe(write_recipe, tmp_path):
    from grail_rl.recipe.loader import load_recipe

    (tmp_path / "train.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "system.txt").write_text("Be brief.", encoding="utf-8")
    plugin = make_plugin("mood_plugin", register_prompt_sections=lambda register: register(MoodSection))
    plugins = isolated_plugins(plugin)
    path = write_recipe("""\
        model: {name_or_path: ./model}
        data: {train: [{path: train.jsonl}]}
        prompt:
          system_prompt_file: system.txt
          sections:
            - name: mood
              word: calm
            - name: options
              show_ids: true
        rewards: [{name: accuracy}]
        output: {dir: out}
        """)
    recipe = load_recipe(path, plugins=plugins).recipe
    messages = PromptBuilder.from_recipe(recipe, plugins).messages(ROW)
    assert messages[0]["content"] == "Be brief."
    assert messages[1]["content"].startswith("MOOD calm about gun_control\n\nOPTIONS\n1. Most")
