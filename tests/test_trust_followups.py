"""What an adversarial review found after the first round of trust fixes, each pinned by a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grail_rl.data.dataset import prompt_length
from grail_rl.errors import GrailError, RecipeError
from grail_rl.evaluation.metrics import Prediction
from grail_rl.evaluation.report import build_report, summary_lines
from grail_rl.recipe.loader import load_recipe
from grail_rl.training.callbacks import trim_metrics
from grail_rl.training.folder_lock import FolderLock
from tests.test_data_schema import raw_row

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE = """\
model: {name_or_path: some/model}
data: {synthetic: {n: 100}}
rewards: [{name: accuracy}]
output: {dir: out}
"""


def cli(*args, cwd, env=None, timeout=60):
    full = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "grail_rl", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_a_model_inside_the_random_interval_is_not_said_to_beat_it():
    predictions = [Prediction(1 + i % 4, 4, 1 + i % 4 if i < 27 else 1 + (i + 1) % 4) for i in range(100)]
    text = "\n".join(summary_lines(build_report("x", predictions, expected_rows=100)))
    assert "0.270" in text and "does NOT clearly beat it" in text and "the model beats it" not in text


@pytest.mark.parametrize(
    "extra, field",
    [
        ("discriminator: {name: nothing}\n", "discriminator"),
        ("trainer: {fp16: true, use_cpu: true}\n", "trainer.fp16"),
        ("logging: {run_name: r1}\n", "logging.run_name"),
        ("logging: {report_to: [tensorboard], project: p}\n", "logging.project"),
    ],
)
def test_more_settings_that_would_be_ignored_are_errors(tmp_path, extra, field):
    (tmp_path / "recipe.yaml").write_text(BASE + extra)
    with pytest.raises(RecipeError) as info:
        load_recipe(tmp_path / "recipe.yaml")
    assert f": {field}" in str(info.value)


def test_max_eval_samples_without_an_eval_split_is_an_error(tmp_path):
    (tmp_path / "train.jsonl").write_text("{}\n")
    (tmp_path / "recipe.yaml").write_text(BASE.replace("{synthetic: {n: 100}}", "{train: [{path: train.jsonl}], max_eval_samples: 5}"))
    with pytest.raises(RecipeError, match="data.max_eval_samples: takes effect only with an eval split"):
        load_recipe(tmp_path / "recipe.yaml")


def test_a_hub_revision_with_a_local_model_folder_is_an_error(tmp_path):
    from grail_rl.models.loading import load_tokenizer
    from grail_rl.recipe.blocks import ModelBlock

    with pytest.raises(GrailError, match="model.revision .* is the local folder"):
        load_tokenizer(ModelBlock(name_or_path=str(tmp_path), revision="v1"), str(tmp_path))


PLUGIN = """\
import sys
from pydantic import field_validator
from grail_rl.plugins import PluginConfig, PromptSection, hookimpl

class Loud(PromptSection):
    \"\"\"Prints while rendering.\"\"\"
    name = "loud"

    class Config(PluginConfig):
        level: int = 1

        @field_validator("level")
        @classmethod
        def _exit(cls, value):
            if value == 99:
                sys.exit(0)
            return value

    def render(self, row):
        print("debug: rendering a row")
        return "LOUD"

@hookimpl
def register_prompt_sections(register):
    register(Loud)
"""


@pytest.fixture
def loud_site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "loud_plugin.py").write_text(PLUGIN)
    info = site / "loud_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: loud_plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[grail_rl]\nloud_plugin = loud_plugin\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}


def test_a_plugin_option_check_that_exits_is_an_error_not_success(tmp_path, loud_site):
    (tmp_path / "recipe.yaml").write_text(BASE + "prompt: {sections: [{name: loud, level: 99}]}\n")
    out = cli("validate", "recipe.yaml", "--json", cwd=tmp_path, env=loud_site)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert json.loads(out.stdout)["ok"] is False and "sys.exit(0)" in out.stdout


def test_json_modes_print_only_json_even_for_usage_errors_and_printing_plugins(tmp_path, loud_site):
    out = cli("data", "audit", "/nonexistent", "--json", cwd=tmp_path)
    assert out.returncode == 2 and json.loads(out.stdout)["ok"] is False
    out = cli("data", "synth", "--n", "5", "--out", "x", "--json", cwd=tmp_path)
    assert out.returncode == 2 and "--n" in json.loads(out.stdout)["error"]
    from grail_rl.models.tiny import ensure_tiny_model

    ensure_tiny_model(tmp_path / "model")
    text = BASE.replace("some/model", "./model") + "prompt: {sections: [{name: loud}, {name: options}]}\n"
    (tmp_path / "recipe.yaml").write_text(text)
    out = cli("preview", "recipe.yaml", "--n", "1", "--json", cwd=tmp_path, env=loud_site, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["prompts"][0]["messages"][1]["content"].startswith("LOUD")
    assert "debug: rendering a row" in out.stderr


def test_a_folder_read_as_a_file_format_is_refused(tmp_path):
    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "a.jsonl").write_text("{}\n")
    out = cli("data", "audit", "rows", "--format", "jsonl", cwd=tmp_path)
    assert out.returncode == 2 and "is a folder, but format: jsonl reads a file" in out.stderr
    (tmp_path / "recipe.yaml").write_text(BASE.replace("{synthetic: {n: 100}}", "{train: [{path: rows, format: csv}]}"))
    with pytest.raises(RecipeError, match="is a folder, but format: csv reads a file"):
        load_recipe(tmp_path / "recipe.yaml")


def test_a_fifo_inside_a_saved_dataset_folder_is_refused(tmp_path):
    import datasets

    datasets.Dataset.from_list([raw_row()]).save_to_disk(str(tmp_path / "saved"))
    shard = next((tmp_path / "saved").glob("*.arrow"))
    shard.unlink()
    os.mkfifo(shard)
    out = cli("data", "audit", "saved", cwd=tmp_path, timeout=30)
    assert out.returncode == 2 and "is a FIFO" in out.stderr


def test_corrupt_parquet_data_is_one_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [raw_row(participant_id=f"p{i}") for i in range(200)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet", compression="NONE")
    data = bytearray((tmp_path / "rows.parquet").read_bytes())
    for i in range(200, len(data) - 300, 7):  # scramble the data pages, keep the footer readable
        data[i] ^= 0x5A
    (tmp_path / "rows.parquet").write_bytes(bytes(data))
    out = cli("data", "audit", "rows.parquet", cwd=tmp_path)
    assert out.returncode == 2 and "rows.parquet" in out.stderr and "Traceback" not in out.stderr
    assert "unexpected" not in out.stderr


def test_a_csv_line_without_end_is_refused_with_bounded_memory(tmp_path, monkeypatch):
    from grail_rl.data import sources
    from grail_rl.data.dataset import read_source
    from grail_rl.data.drops import DropReport

    monkeypatch.setattr(sources, "MAX_LINE", 1024)
    (tmp_path / "rows.csv").write_text("issue,slate_items_json\n" + "x" * 50_000 + "\n")
    with pytest.raises(GrailError, match="line 2 is longer than"):
        read_source(tmp_path / "rows.csv", "train", 0, DropReport())


def test_resumed_metrics_keep_each_step_once_and_survive_a_cut_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "reward": s / 10}) + "\n" for s in range(1, 11)) + '{"step": 11, "rew')
    trim_metrics(path, 5)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4, 5]


def test_a_data_file_named_eval_would_replace_the_eval_split_report(tmp_path):
    from grail_rl.models.tiny import ensure_tiny_model

    ensure_tiny_model(tmp_path / "model")
    (tmp_path / "eval.jsonl").write_text(json.dumps(raw_row()) + "\n")
    (tmp_path / "recipe.yaml").write_text(BASE.replace("some/model", "./model"))
    out = cli("evaluate", "recipe.yaml", "--base", "--data", "eval.jsonl", cwd=tmp_path)
    assert out.returncode == 2 and "would take the place of the recipe's own eval-split report" in out.stderr


def test_demo_refuses_a_negative_real_rows_before_training(tmp_path):
    out = cli("demo", "--real-rows", "-5", cwd=tmp_path, timeout=30)
    assert out.returncode == 2 and "--real-rows" in out.stderr


def test_a_symlink_planted_as_the_lock_file_is_never_written_through(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "victim.txt").write_text("precious")
    (tmp_path / "out" / ".grail-lock").symlink_to(tmp_path / "victim.txt")
    with pytest.raises(GrailError, match="is a symbolic link"):
        FolderLock(tmp_path / "out").acquire()
    assert (tmp_path / "victim.txt").read_text() == "precious"


class RecordingTokenizer:
    chat_template = "x"

    def __init__(self):
        self.kwargs = None

    def apply_chat_template(self, messages, tokenize, add_generation_prompt, **kwargs):
        self.kwargs = kwargs
        return " ".join(m["content"] for m in messages) + (" THINK" if kwargs.get("enable_thinking") else "")

    def __call__(self, text, add_special_tokens):
        return {"input_ids": text.split()}


def test_prompt_length_applies_the_chat_template_kwargs_training_uses():
    tokenizer = RecordingTokenizer()
    messages = [{"role": "user", "content": "a b c"}]
    assert prompt_length(messages, tokenizer, {"enable_thinking": True}) == 4
    assert tokenizer.kwargs == {"enable_thinking": True}
    assert prompt_length(messages, tokenizer) == 3



def rendered_file(path: Path) -> Path:
    """A small rendered-prompt file (the study's format), made with the default sections."""
    from grail_rl.data.schema import normalize_row
    from grail_rl.prompts.builder import PromptBuilder

    builder = PromptBuilder.default()
    records = []
    for i in range(3):
        row = normalize_row(raw_row(participant_id=f"p{i}"))
        records.append({"messages": builder.messages(row), "gold_index": row["gold_index"], "n_options": 2,
                        "issue": "gun_control", "participant_study": "study1"})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_import_rendered_never_writes_over_its_input_or_an_existing_file(tmp_path):
    source = rendered_file(tmp_path / "val.jsonl")
    original = source.read_bytes()
    for target in ("val.jsonl", str(source), "./val.jsonl"):
        out = cli("data", "import-rendered", "val.jsonl", "--out", target, "--overwrite", cwd=tmp_path)
        assert out.returncode == 2 and "is also the input" in out.stderr
    (tmp_path / "link.jsonl").symlink_to(source)
    out = cli("data", "import-rendered", "val.jsonl", "--out", "link.jsonl", "--overwrite", cwd=tmp_path)
    assert out.returncode == 2 and source.read_bytes() == original
    (tmp_path / "rows.jsonl").write_text("mine\n")
    out = cli("data", "import-rendered", "val.jsonl", "--out", "rows.jsonl", cwd=tmp_path)
    assert out.returncode == 2 and "already exists; pass --overwrite" in out.stderr
    assert (tmp_path / "rows.jsonl").read_text() == "mine\n"
    out = cli("data", "import-rendered", "val.jsonl", "--out", "rows.jsonl", "--overwrite", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 3
    assert cli("data", "import-rendered", "val.jsonl", cwd=tmp_path).returncode == 0  # the default name is new
    assert cli("data", "import-rendered", "val.jsonl", cwd=tmp_path).returncode == 2  # ... and then it is not


def test_synth_never_replaces_an_earlier_set_unasked(tmp_path):
    assert cli("data", "synth", "--n", "40", "--out", "set", cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "set").iterdir()}
    again = cli("data", "synth", "--n", "60", "--seed", "3", "--out", "set", cwd=tmp_path)
    assert again.returncode == 2 and "already exists; pass --overwrite" in again.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "set").iterdir()} == before
    assert cli("data", "synth", "--n", "60", "--seed", "3", "--out", "set", "--overwrite", cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "set" / "summary.json").read_text())["n"] == 60


def test_a_constant_answer_is_flagged_and_every_baseline_says_where_it_was_fitted():
    from grail_rl.evaluation.baselines import FitRows

    predictions = [Prediction(2 if i < 40 else 5, 5, 2) for i in range(100)]  # answers 2 everywhere
    fit = FitRows([(1, 4)] * 50, "50 rows of the recipe's train split (synthetic: train.jsonl)")
    report = build_report("gun", predictions, expected_rows=100, train_rows=fit, other_data=True)
    text = "\n".join(summary_lines(report))
    assert "DEGENERATE: the model gave option 2 on 100 of 100 rows (100%)" in text
    assert "best trivial baseline  always_last 0.600" in text and "does NOT beat it" in text
    assert "fitted on 50 rows of the recipe's train split (synthetic: train.jsonl), not on the evaluated data" in text
    assert "model answers          2 100%" in text and "gold positions         2 40% · 5 60%" in text
    data = report.as_dict()
    assert data["degenerate"]["answer"] == 2 and data["answers"] == {"2": 100}


def test_without_a_prompt_limit_the_context_window_minus_the_completion_is_the_limit(tmp_path):
    from grail_rl.data.dataset import prompt_limit

    (tmp_path / "recipe.yaml").write_text(BASE + "trainer: {max_completion_length: 100}\n")
    recipe = load_recipe(tmp_path / "recipe.yaml").recipe
    assert prompt_limit(recipe, 1024) == 924 and prompt_limit(recipe, None) is None
    with pytest.raises(GrailError, match="leaves no room for a prompt"):
        prompt_limit(recipe, 100)
    (tmp_path / "recipe.yaml").write_text(BASE + "prompt: {max_prompt_tokens: 50}\n")
    assert prompt_limit(load_recipe(tmp_path / "recipe.yaml").recipe, 1024) == 50


@pytest.mark.slow
def test_evaluate_data_with_max_samples_on_a_recipe_without_an_eval_split(tmp_path):
    from grail_rl.models.tiny import ensure_tiny_model

    ensure_tiny_model(tmp_path / "model")
    rows = "".join(json.dumps(raw_row(participant_id=f"p{i}")) + "\n" for i in range(5))
    (tmp_path / "train.jsonl").write_text(rows)
    (tmp_path / "other.jsonl").write_text(rows)
    text = BASE.replace("some/model", "./model").replace("{synthetic: {n: 100}}", "{train: [{path: train.jsonl}]}")
    (tmp_path / "recipe.yaml").write_text(text + "trainer: {max_completion_length: 8}\n")
    out = cli("evaluate", "recipe.yaml", "--base", "--data", "other.jsonl", "--max-samples", "2", cwd=tmp_path,
              timeout=180)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "evaluations" / "base" / "eval" / "eval-other.json").read_text())
    assert report["evaluated_rows"] == 2 and report["complete"]


# --- a second adversarial review ---------------------------------------------------------------------


def test_the_demo_never_replaces_a_folder_it_did_not_build(tmp_path):
    from grail_rl.models.tiny import build_atomically

    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "NOTES.txt").write_text("mine")
    with pytest.raises(GrailError, match="is not a tiny model grail-rl built"):
        build_atomically(tmp_path / "my-model", lambda staging: None, lambda: False)
    assert (tmp_path / "my-model" / "NOTES.txt").read_text() == "mine"


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
def test_an_output_that_is_a_fifo_a_link_or_a_device_is_never_replaced(tmp_path, kind):
    source = rendered_file(tmp_path / "val.jsonl")
    target = tmp_path / "out.jsonl"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink":
        (tmp_path / "real.jsonl").write_text("mine\n")
        target.symlink_to(tmp_path / "real.jsonl")
    else:  # a device node of our own (what /dev/null is): never point a test at the real one
        import stat

        try:
            os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("creating a device node needs CAP_MKNOD")
    out = cli("data", "import-rendered", str(source), "--out", str(target), "--overwrite", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    if kind == "fifo":
        assert target.is_fifo()
    elif kind == "symlink":
        assert target.is_symlink() and (tmp_path / "real.jsonl").read_text() == "mine\n"
    else:
        assert target.is_char_device()


@pytest.mark.parametrize("command", [["data", "synth", "--n", "20", "--out", "/proc/no-such-folder"],
                                     ["data", "import-rendered", "val.jsonl", "--out", "/proc/x.jsonl"]])
def test_an_unwritable_output_is_one_line_not_a_bug_report(tmp_path, command):
    rendered_file(tmp_path / "val.jsonl")
    out = cli(*command, cwd=tmp_path)
    assert out.returncode == 2 and "cannot write" in out.stderr and "unexpected" not in out.stderr, out.stderr


def test_a_users_readme_and_look_alike_files_survive_a_replacement(tmp_path):
    from grail_rl.training.hub import write_model_card
    from grail_rl.training.output_claim import claim_output_dir

    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"format": "grail-rl run", "training_started": True, "recipe": {}}))
    (out / "README.md").write_text("my notes")
    for name in ("vocab.json", "tokenizer_notes.txt"):
        (out / name).write_text("mine")
    (out / "runs").mkdir()
    (out / "runs" / "mine.txt").write_text("mine")
    assert write_model_card(out / "README.md", {}, {}, hub_model_id=None) is False
    claim = claim_output_dir(out, resume=False, overwrite=True)
    claim.commit()
    claim.release()
    assert sorted(p.name for p in out.iterdir() if p.name != ".grail-lock") == [
        "README.md", "runs", "tokenizer_notes.txt", "vocab.json",
    ]  # fmt: skip
    assert (out / "README.md").read_text() == "my notes"


def test_rewards_that_are_not_lists_or_not_floats_are_faults():
    import numpy as np

    from grail_rl.plugins import RewardFunction
    from grail_rl.rewards import GuardedReward

    class Odd(RewardFunction):
        """Returns whatever it is told."""

        name = "odd"
        value: object = None

        def __call__(self, completions, **kwargs):
            return Odd.value

    guarded = GuardedReward(Odd(), plugin="p", on_fault="abstain")
    for value, expected in ((np.array(0.5), [None, None]), ([10**400, 1.0], [None, 1.0])):
        Odd.value = value
        assert guarded(["a", "b"]) == expected  # faults that abstain, never an escaping TypeError/OverflowError


def test_the_synthetic_cache_holding_other_sets_is_not_a_change(tmp_path):
    from grail_rl.training.resume import input_changes, input_fingerprints

    (tmp_path / "cache" / "n100-seed0").mkdir(parents=True)
    (tmp_path / "cache" / "n100-seed0" / "train.jsonl").write_text("{}\n")
    resolved = {"data": {"synthetic": {"n": 100, "seed": 0, "cache_dir": str(tmp_path / "cache")}}}
    recorded = input_fingerprints(resolved)
    (tmp_path / "cache" / "n60-seed3").mkdir()  # another recipe's set in the same cache
    (tmp_path / "cache" / "n60-seed3" / "train.jsonl").write_text("{}\n")
    assert input_changes(recorded, resolved) == []


def test_huge_numbers_in_a_recipe_are_one_line_and_huge_weights_normalise(tmp_path):
    from grail_rl.rewards.weights import normalise_weights

    (tmp_path / "recipe.yaml").write_text(BASE)
    out = cli("validate", "recipe.yaml", "--set", "trainer.learning_rate=" + "9" * 5000, cwd=tmp_path)
    assert out.returncode == 2 and "unexpected" not in out.stderr and "invalid YAML" in out.stderr
    assert normalise_weights([1e308, 1e308]) == [0.5, 0.5]


def test_an_audit_with_no_valid_rows_is_not_a_clean_audit(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"issue": "x", "slate_items": []}\n')
    out = cli("data", "audit", "bad.jsonl", "--fail-on-leak", cwd=tmp_path)
    assert out.returncode == 2 and "no valid rows to audit" in out.stderr


def test_resume_of_a_typo_folder_creates_nothing(tmp_path):
    from grail_rl.training.output_claim import claim_output_dir

    with pytest.raises(GrailError, match="does not exist, so it holds no run to resume"):
        claim_output_dir(tmp_path / "rusn" / "demo", resume=True, overwrite=False)
    assert not (tmp_path / "rusn").exists()


def test_ctrl_c_during_the_evaluation_after_training_points_to_evaluate(tmp_path):
    from types import SimpleNamespace

    from grail_rl.training.run import _record_end

    out = tmp_path / "out"
    (out / "final").mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({"format": "grail-rl run", "status": "trained", "training_started": True}))
    loaded = SimpleNamespace(path=tmp_path / "recipe.yaml")
    _record_end(out, loaded, KeyboardInterrupt(), SimpleNamespace(state=SimpleNamespace(global_step=4)))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and "grail-rl evaluate" in run["next"] and "--resume" not in run["next"]
