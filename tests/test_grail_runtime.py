"""The discriminator runtime, the gail reward and the discriminator text, without a policy: every knob of the
``discriminator:`` block takes effect, state round-trips, and a plugin that misbehaves is named."""

from __future__ import annotations

import itertools
import logging
import math
import random
from pathlib import Path

import pytest

from grail_rl.errors import GrailError
from grail_rl.grail.reward import GailReward, lowest, transform
from grail_rl.grail.runtime import (
    AUC_HIGH,
    ChoiceBatchRow,
    DiscriminatorFailure,
    DiscriminatorRuntime,
    auc,
    is_heldout,
)
from grail_rl.grail.settings import DiscriminatorBlockKeys
from grail_rl.grail.texts import choice_text, option_text, split_choice
from grail_rl.plugins import Discriminator, PluginContext
from grail_rl.testing import check_reward_contract, discriminator_context


class Recording(Discriminator):
    """Scores by a fixed table and records every update it is asked to take."""

    name = "recording"

    def __init__(self, config=None, table=None):
        super().__init__(config)
        self.table = table or {}
        self.updates: list[tuple[list[str], list[str]]] = []
        self.setups: list[PluginContext] = []

    def setup(self, context):
        self.setups.append(context)

    def score(self, texts):
        return [self.table.get(t, 0.5) for t in texts]

    def update(self, real, fake):
        self.updates.append((list(real), list(fake)))
        return {"loss": 0.5, "accuracy": 0.75}

    def save(self, directory: Path) -> None:
        (directory / "updates.txt").write_text(str(len(self.updates)))

    def load(self, directory: Path) -> None:
        self.loaded = int((directory / "updates.txt").read_text())


def runtime(plugin=None, seed=0, context=None, **keys) -> DiscriminatorRuntime:
    rt = DiscriminatorRuntime(plugin or Recording(), DiscriminatorBlockKeys(**{"heldout_share": 0.0, **keys}))
    rt.setup(context or PluginContext(device="cpu", seed=seed))
    return rt


def rows(n=4, wrong=1, heldout=False):
    return [
        ChoiceBatchRow(gold=f"gold{i}", policy_wrong=[f"wrong{i}.{j}" for j in range(wrong)],
                       others=[f"other{i}.{j}" for j in range(3)], heldout=heldout)
        for i in range(n)
    ]  # fmt: skip


# -- the text ------------------------------------------------------------------------------------------------


def test_the_choice_comes_first_and_survives_truncation():
    from transformers import AutoTokenizer

    from grail_rl.grail.encoder import default_backbone

    context = "VIEWER a viewer\n\n" + "OPTIONS\n" + "\n".join(f"{i}. a long title number {i}" for i in range(400))
    text = option_text([{"role": "system", "content": "sys"}, {"role": "user", "content": context}],
                       ["Why We Need Action", "Leave It Alone"], ["Vox", "Fox News"], 2)  # fmt: skip
    assert text.startswith("CHOSEN: option 2 of 2: Leave It Alone | CHANNEL: Fox News\n\nVIEWER")
    assert split_choice(text)[1] == context
    tokenizer = AutoTokenizer.from_pretrained(default_backbone())
    kept = tokenizer.decode(tokenizer(text, truncation=True, max_length=24)["input_ids"], skip_special_tokens=True)
    assert "leave it alone | channel : fox news" in kept.lower()
    # The original's layout (context first, choice last) loses the choice at the same limit.
    original = context + "\nCHOSEN: Leave It Alone"
    cut = tokenizer.decode(tokenizer(original, truncation=True, max_length=24)["input_ids"], skip_special_tokens=True)
    assert "leave it alone" not in cut.lower()


def test_a_choice_line_stays_one_line_and_untitled_options_are_named():
    assert choice_text("a\nb", None, "ctx") == "CHOSEN: a b\n\nctx"
    assert choice_text(None, "c", "ctx", (1, 3)).startswith("CHOSEN: option 1 of 3: (untitled) | CHANNEL: c")


# -- AUC and held-out prompts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_auc_counts_pairs_with_ties_as_half(seed):
    rng = random.Random(seed)
    pos = [rng.choice([0.1, 0.2, 0.5, 0.9]) for _ in range(rng.randint(1, 12))]
    neg = [rng.choice([0.1, 0.2, 0.5, 0.9]) for _ in range(rng.randint(1, 12))]
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    assert auc(pos, neg) == pytest.approx(sum(pairs) / len(pairs))
    assert auc([], neg) is None


def test_held_out_prompts_follow_the_share_and_never_change():
    contexts = [f"viewer {i}" for i in range(2000)]
    share = sum(is_heldout(c, 0.2) for c in contexts) / len(contexts)
    assert 0.17 < share < 0.23
    assert [is_heldout(c, 0.2) for c in contexts] == [is_heldout(c, 0.2) for c in contexts]
    assert not any(is_heldout(c, 0.0) for c in contexts)


# -- every knob takes effect -------------------------------------------------------------------------------


def test_updates_per_step_and_minibatch_size_shape_each_update():
    rt = runtime(updates_per_step=3, minibatch_size=8)
    rt.learn(rows(), step=1, log=None)
    assert len(rt.plugin.updates) == 3 and rt.updates == 3
    for real, fake in rt.plugin.updates:
        assert len(real) == 4 and len(fake) == 4
        assert all(t.startswith("gold") for t in real) and all(t.startswith("wrong") for t in fake)


def test_extra_negatives_come_from_the_other_in_slate_options():
    rt = runtime(extra_negatives=2, minibatch_size=64)
    rt.learn(rows(n=4, wrong=0), step=1, log=None)  # the policy chose no wrong option: only extra negatives
    (real, fake), = rt.plugin.updates
    assert {t.split(".")[0] for t in fake} <= {"other0", "other1", "other2", "other3"}
    assert len(set(fake)) <= 8 and {t.split(".")[0] for t in fake} == {"other0", "other1", "other2", "other3"}
    none = runtime(extra_negatives=0)
    none.learn(rows(n=4, wrong=0), step=1, log=None)
    assert none.plugin.updates == []  # nothing fake to learn from


def test_the_replay_buffer_keeps_past_negatives_up_to_its_size():
    rt = runtime(replay_size=5, minibatch_size=200)
    rt.learn(rows(n=4, wrong=1), step=1, log=None)
    assert list(rt.replay) == [f"wrong{i}.0" for i in range(4)]
    later = [ChoiceBatchRow(gold="goldX", policy_wrong=["new"], others=[])]
    rt.learn(later, step=2, log=None)
    assert len(rt.replay) == 5 and rt.replay[-1] == "new"
    _, fake = rt.plugin.updates[-1]
    assert {"new", "wrong1.0"} <= set(fake)  # the second update drew on the replayed negatives
    no_replay = runtime(replay_size=0, minibatch_size=200)
    no_replay.learn(rows(), step=1, log=None)
    no_replay.learn(later, step=2, log=None)
    assert set(no_replay.plugin.updates[-1][1]) == {"new"}


def test_train_false_and_evaluation_never_update():
    frozen = runtime(train=False)
    frozen.learn(rows(), step=1, log=None)
    assert frozen.plugin.updates == [] and frozen.updates == 0
    evaluating = runtime(context=PluginContext(device="cpu", in_training_step=lambda: False))
    evaluating.learn(rows(), step=1, log=None)
    assert evaluating.plugin.updates == []


def test_held_out_rows_are_scored_for_the_auc_and_never_trained_on():
    table = {f"gold{i}": 0.9 for i in range(20)} | {f"wrong{i}.0": 0.1 for i in range(20)}
    rt = runtime(Recording(table=table))
    logged = {}
    rt.learn(rows(n=20, heldout=True), step=1, log=lambda k, v: logged.__setitem__(k, v))
    assert rt.plugin.updates == []
    assert logged["discriminator/auc"] == 1.0 and logged["discriminator/updates"] == 0
    # The AUC is the current discriminator's: every held-out text is scored again at each step.
    rt.plugin.table = {f"gold{i}": 0.1 for i in range(20)} | {f"wrong{i}.0": 0.9 for i in range(20)}
    rt.learn([], step=2, log=lambda k, v: logged.__setitem__(k, v))
    assert logged["discriminator/auc"] == 0.0


def test_evaluation_rows_never_enter_the_held_out_window():
    rt = runtime(Recording(), context=PluginContext(device="cpu", in_training_step=lambda: False))
    rt.learn(rows(n=20, heldout=True), step=1, log=None)
    assert len(rt.heldout_real) == 0 and len(rt.heldout_fake) == 0


def test_a_prompt_split_across_ranks_counts_its_gold_once():
    from grail_rl.grail.runtime import merge_rows

    a = ChoiceBatchRow(gold="g", policy_wrong=["w1"], others=["o"])
    b = ChoiceBatchRow(gold="g", policy_wrong=["w2"], others=["o"])
    merged = merge_rows([a, b, ChoiceBatchRow(gold="h", policy_wrong=[], others=[])])
    assert [(r.gold, r.policy_wrong) for r in merged] == [("g", ["w1", "w2"]), ("h", [])]
    assert a.policy_wrong == ["w1"]  # the rows passed in are not changed


def test_each_update_runs_under_a_seed_from_the_runtime_so_dropout_agrees_across_ranks():
    import torch

    class Noisy(Recording):
        def update(self, real, fake):
            self.draws = getattr(self, "draws", []) + [torch.rand(1).item()]
            return {"loss": 0.1}

    first, second = runtime(Noisy(), seed=4), runtime(Noisy(), seed=4)
    torch.manual_seed(1)
    first.learn(rows(), step=1, log=None)
    torch.manual_seed(2)  # another global torch state (TRL seeds each rank differently)
    second.learn(rows(), step=1, log=None)
    assert first.plugin.draws == second.plugin.draws


def test_warmup_trains_on_gold_against_other_options_once(tmp_path):
    import datasets

    data = datasets.Dataset.from_list([
        {"prompt": [{"role": "user", "content": f"viewer {i}"}], "gold_index": 1 + i % 3, "n_options": 3,
         "slate_titles": ["t1", "t2", "t3"], "slate_channels": ["c1", "c2", "c3"]}
        for i in range(12)
    ])  # fmt: skip
    rt = runtime(warmup_steps=5, minibatch_size=4)
    rt.warmup(data)
    assert len(rt.plugin.updates) == 5 and rt.warmup_done == 5
    for real, fake in rt.plugin.updates:
        for r, f in zip(real, fake, strict=True):
            assert split_choice(r)[1] == split_choice(f)[1] and r != f  # same viewer, another option
    rt.warmup(data)
    assert len(rt.plugin.updates) == 5  # done once: a resumed run does not warm up again


def test_device_auto_follows_the_run_and_cuda_without_a_gpu_is_one_line():
    rt = runtime(context=PluginContext(device="cpu", local_rank=1))
    assert rt.plugin.setups[0].device == "cpu"
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(GrailError, match="discriminator.device is 'cuda' but this machine has no CUDA GPU"):
            runtime(device="cuda")


def test_state_round_trips_with_rng_replay_and_counters(tmp_path):
    rt = runtime(replay_size=10, extra_negatives=1, seed=3)
    rt.learn(rows(), step=1, log=None)
    rt.save_state(tmp_path)
    again = runtime(replay_size=10, extra_negatives=1, seed=99)
    again.load_state(tmp_path)
    assert (again.updates, list(again.replay), again.plugin.loaded) == (rt.updates, list(rt.replay), 1)
    assert again.rng.random() == rt.rng.random()
    other = DiscriminatorRuntime(GailLike(), DiscriminatorBlockKeys())
    with pytest.raises(GrailError, match="holds a 'recording' discriminator, the recipe's is 'other'.*--fresh-discriminator"):
        other.load_state(tmp_path)


class GailLike(Recording):
    name = "other"


def test_the_ngram_discriminator_state_gives_the_same_scores_after_a_reload(tmp_path):
    context = discriminator_context(extra_negatives=1, minibatch_size=8)
    rt = context.discriminator
    batch = [ChoiceBatchRow(gold=f"CHOSEN: a{i}\n\nviewer {i}", policy_wrong=[f"CHOSEN: b{i}\n\nviewer {i}"],
                            others=[f"CHOSEN: c{i}\n\nviewer {i}"]) for i in range(6)]  # fmt: skip
    for step in range(5):
        rt.learn(batch, step=step, log=None)
    probe = [row.gold for row in batch] + [row.policy_wrong[0] for row in batch]
    rt.save_state(tmp_path)
    fresh = discriminator_context(extra_negatives=1, minibatch_size=8).discriminator
    assert fresh.score(probe) != rt.score(probe)
    fresh.load_state(tmp_path)
    assert fresh.score(probe) == rt.score(probe) and fresh.digest() == rt.digest()
    rt.learn(batch, step=6, log=None)
    fresh.learn(batch, step=6, log=None)
    assert fresh.digest() == rt.digest()  # the optimizer and RNG came back too: the next step is the same


# -- health ---------------------------------------------------------------------------------------------------


def test_a_discriminator_that_always_wins_is_warned_about_naming_the_knobs(caplog):
    table = {f"gold{i}": 0.99 for i in range(10)} | {f"wrong{i}.0": 0.01 for i in range(10)}
    rt = runtime(Recording(table=table), collapse_patience=3)
    with caplog.at_level(logging.WARNING, logger="grail_rl.training"):
        for step in range(1, 5):
            rt.learn(rows(n=10, heldout=True), step=step, log=None)
    warnings = [r.getMessage() for r in caplog.records if "held-out AUC" in r.getMessage()]
    assert len(warnings) == 1 and f">= {AUC_HIGH}" in warnings[0] and "learning_rate" in warnings[0]


@pytest.mark.parametrize(
    "result, message",
    [
        (None, "update returned NoneType None, not a dict"),
        (0, "update returned int 0, not a dict"),
        ({"loss": float("nan")}, "the update's loss is nan"),
        ({"loss": "nan"}, "the update's loss is nan"),
    ],
)
def test_an_update_that_returns_junk_or_a_nan_loss_stops_training(result, message):
    import numpy as np

    plugin = Recording()
    plugin.update = lambda real, fake: result
    with pytest.raises(DiscriminatorFailure, match=message):
        runtime(plugin).learn(rows(), step=1, log=None)
    plugin.update = lambda real, fake: {"loss": np.float32("nan")}
    with pytest.raises(DiscriminatorFailure, match="loss is nan"):
        runtime(plugin).learn(rows(), step=1, log=None)


def test_metrics_an_update_does_not_report_are_not_logged_as_nan():
    plugin = Recording()
    plugin.update = lambda real, fake: {"loss": 0.25}
    logged = {}
    runtime(plugin).learn(rows(), step=1, log=lambda k, v: logged.__setitem__(k, v))
    assert logged["discriminator/loss"] == 0.25 and "discriminator/accuracy" not in logged


def test_an_odd_minibatch_gets_the_extra_text_real():
    rt = runtime(minibatch_size=5)
    rt.learn(rows(), step=1, log=None)
    (real, fake), = rt.plugin.updates
    assert (len(real), len(fake)) == (3, 2)


def test_a_broken_discriminator_stops_training_even_with_on_fault_abstain():
    from grail_rl.rewards.runtime import GuardedReward

    plugin = Recording()
    plugin.score = lambda texts: [math.nan] * len(texts)
    context = PluginContext(device="cpu", discriminator=runtime(plugin))
    guarded = GuardedReward(GailReward(), plugin="builtin_rewards", on_fault="abstain")
    guarded.setup(context)
    with pytest.raises(DiscriminatorFailure, match="not a probability"):
        guarded(["<answer>1</answer>", "<answer>2</answer>"], **_columns(2))


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda texts: [0.5] * (len(texts) - 1), "returned 1 values for 2 texts"),
        (lambda texts: [math.nan] * len(texts), "not a probability"),
        (lambda texts: [1.5] * len(texts), "not a probability"),
        (lambda texts: ["x"] * len(texts), "not numbers"),
    ],
)
def test_a_discriminator_that_scores_badly_is_named(bad, message):
    plugin = Recording()
    plugin.score = bad
    rt = runtime(plugin)
    with pytest.raises(GrailError, match=rf"discriminator 'recording' \(plugin '\?'\): score {message}|{message}"):
        rt.score(["a", "b"])


def test_a_discriminator_that_raises_or_exits_is_named():
    plugin = Recording()

    def update(real, fake):
        raise SystemExit(1)

    plugin.update = update
    rt = runtime(plugin)
    with pytest.raises(GrailError, match="discriminator 'recording' .* failed to update: called sys.exit"):
        rt.learn(rows(), step=1, log=None)


# -- the gail reward ------------------------------------------------------------------------------------------


def test_transforms_and_their_lowest_values():
    assert transform(0.25, "prob") == 0.25
    assert transform(0.25, "log") == pytest.approx(math.log(0.25))
    assert transform(0.25, "logit") == pytest.approx(math.log(0.25 / 0.75))
    assert transform(0.0, "log") == pytest.approx(math.log(1e-6)) and transform(1.0, "logit") < 14
    assert lowest("prob") == 0.0 and lowest("log") == pytest.approx(math.log(1e-6))


def _columns(n):
    return {
        "prompts": [[{"role": "user", "content": f"viewer {i // 2}"}] for i in range(n)],
        "gold_index": [1] * n,
        "slate_titles": [["first", "second", "third"]] * n,
        "slate_channels": [["c1", "c2", "c3"]] * n,
    }


@pytest.mark.parametrize("kind", ["prob", "log", "logit"])
def test_gail_scores_valid_choices_before_the_update_and_invalid_ones_lowest(kind):
    reward = GailReward(GailReward.Config(transform=kind))
    context = discriminator_context(extra_negatives=1, minibatch_size=4)
    reward.setup(context)
    completions = ["<answer>1</answer>", "<answer>2</answer>", "no answer", "<answer>7</answer>"]
    cols = _columns(4)
    expected = context.discriminator.score(
        [option_text(cols["prompts"][0], cols["slate_titles"][0], cols["slate_channels"][0], 1),
         option_text(cols["prompts"][1], cols["slate_titles"][1], cols["slate_channels"][1], 2)]
    )  # fmt: skip
    values = reward(completions, **cols)
    assert values[:2] == pytest.approx([transform(p, kind) for p in expected])
    assert values[2:] == [lowest(kind), lowest(kind)]
    assert context.discriminator.updates == 1  # it learned after scoring


def test_gail_can_abstain_on_invalid_answers_and_needs_a_discriminator():
    reward = GailReward(GailReward.Config(invalid="abstain"))
    with pytest.raises(GrailError, match="reward 'gail' has no discriminator"):
        reward(["<answer>1</answer>"], **_columns(1))
    with pytest.raises(GrailError, match="needs the recipe's discriminator block"):
        reward.setup(PluginContext(device="cpu"))
    reward.setup(discriminator_context(train=False))
    assert reward(["nothing", "<answer>1</answer>"], **_columns(2))[0] is None


def test_gail_honours_the_reward_contract():
    check_reward_contract(GailReward())


def test_the_texts_a_runtime_keeps_are_saved_apart_and_kept_off_the_hub(tmp_path):
    import fnmatch
    import json

    from grail_rl.training.hub import hidden_from_hub

    rt = runtime(replay_size=10, extra_negatives=1)
    rt.learn(rows(), step=1, log=None)
    rt.heldout_real.append("CHOSEN: a viewer's gold")
    rt.save_state(tmp_path)
    assert "wrong0.0" not in (tmp_path / "runtime.json").read_text()
    texts = json.loads((tmp_path / "texts.json").read_text())
    assert "wrong0.0" in texts["replay"] and texts["heldout_real"] == ["CHOSEN: a viewer's gold"]
    hidden = hidden_from_hub(push_data_files=False)
    for path in ("final/grail_state/discriminator/texts.json", "checkpoint-4/grail_state/discriminator/texts.json",
                 "grail_state/discriminator/texts.json"):  # fmt: skip
        assert any(fnmatch.fnmatch(path, pattern) for pattern in hidden), path
    assert not any(fnmatch.fnmatch("final/grail_state/discriminator/plugin/ngram.pt", p) for p in hidden)
    assert not any(fnmatch.fnmatch("grail_state/discriminator/texts.json", p) for p in hidden_from_hub(True))


def test_a_state_with_scores_instead_of_texts_in_its_windows_loads_without_them(tmp_path):
    import json

    rt = runtime()
    rt.save_state(tmp_path)
    (tmp_path / "texts.json").write_text(json.dumps({"heldout_real": [0.5, "kept"], "heldout_fake": [0.1]}))
    again = runtime()
    again.load_state(tmp_path)
    assert list(again.heldout_real) == ["kept"] and list(again.heldout_fake) == []


def test_a_damaged_state_is_one_line_naming_the_file(tmp_path):
    rt = runtime()
    rt.save_state(tmp_path)
    (tmp_path / "runtime.json").write_text("{cut sho")
    with pytest.raises(DiscriminatorFailure, match="runtime.json: cannot read the discriminator state"):
        runtime().load_state(tmp_path)


def test_init_from_loads_the_weights_and_counters_not_the_other_runs_texts_or_rng(tmp_path):
    trained = runtime(replay_size=10, extra_negatives=1, seed=3)
    trained.learn(rows(), step=1, log=None)
    trained.heldout_real.append("their viewer")
    trained.save_state(tmp_path)
    started = runtime(seed=5, init_from=tmp_path)
    assert started.updates == trained.updates and started.plugin.loaded == 1
    assert list(started.heldout_real) == [] and list(started.replay) == []
    resumed = DiscriminatorRuntime(Recording(), DiscriminatorBlockKeys(init_from=tmp_path, heldout_share=0.0))
    resumed.setup(PluginContext(device="cpu"), resuming=True)
    assert resumed.updates == 0  # a resume restores its own checkpoint instead


def test_an_update_leaves_the_global_torch_random_state_as_it_was():
    import torch

    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    runtime(extra_negatives=1).learn(rows(), step=1, log=None)
    assert torch.equal(torch.rand(3), expected)
