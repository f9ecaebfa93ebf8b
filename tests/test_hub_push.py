"""Pushing to the hub, through huggingface_hub's real HTTP code, to a local hub (``tests/local_hub.py``).

One ``grail-rl train`` subprocess (4 steps, a save every 2, ``hub.revision_per_save``) pushes to a
:class:`~tests.local_hub.LocalHub` on 127.0.0.1; the tests then read back what the hub received.

Checks: the model is pushed on every save and at the end, each checkpoint gets its own revision holding
exactly that checkpoint, the model card carries the recipe and metrics, and the token (set only in the
subprocess's environment) reaches the hub only in the ``Authorization`` header: it is written to no file
of the output folder, to no uploaded file, to no request path or body and to no console output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.conftest_training import run_cli, tiny_model, write_recipe  # noqa: F401  (fixture)
from tests.local_hub import LocalHub

TOKEN = "hf_grailTESTtoken0123456789abcdefSECRET"
REPO = "grail/tiny-test"
BRANCHES = ["step-000002", "step-000004"]

pytestmark = pytest.mark.slow


@dataclass
class Pushed:
    hub: LocalHub
    proc: CompletedProcess[str]
    out: Path


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Pushed:  # noqa: F811
    tmp = tmp_path_factory.mktemp("push")
    path = write_recipe(
        tmp, tiny_model, output={"save_steps": 2},
        hub={"push_to_hub": True, "hub_model_id": REPO, "revision_per_save": True},
    )  # fmt: skip
    with LocalHub(token=TOKEN) as hub:  # writes without this exact bearer token are refused (401)
        proc = run_cli("train", str(path), cwd=tmp, HF_TOKEN=TOKEN, **hub.env(tmp / "hf-home"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Pushed(hub, proc, tmp / "out")


def test_every_save_pushes_its_own_revision_holding_that_checkpoint(pushed: Pushed):
    hub, out = pushed.hub, pushed.out
    assert sorted(hub.repo(REPO).branches) == ["main", *BRANCHES]
    for branch in BRANCHES:
        step = int(branch.removeprefix("step-"))
        assert [c.message for c in hub.history(REPO, branch)][-1] == f"grail-rl checkpoint at step {step}"
        local = {p.relative_to(out / f"checkpoint-{step}").as_posix(): p.read_bytes()
                 for p in (out / f"checkpoint-{step}").rglob("*") if p.is_file()}  # fmt: skip
        remote = hub.files(REPO, branch)
        assert "model.safetensors" in local
        # The revision is the checkpoint, byte for byte, and nothing else (.gitattributes comes with a repo).
        assert sorted(remote) == sorted([*local, ".gitattributes"])
        assert all(remote[name] == data for name, data in local.items())
    assert hub.unhandled == []


def test_main_gets_the_saves_and_the_end_of_training(pushed: Pushed):
    hub, out = pushed.hub, pushed.out
    messages = [c.message for c in hub.history(REPO, "main")]
    # TRL pushes each save to main in the background and skips a save while the previous push still runs,
    # so only the first save's push is certain; the end-of-training push always comes last.
    assert "Training in progress, step 2" in messages
    assert messages[-1] == "grail-rl: end of training (step 4)"
    main = hub.files(REPO, "main")
    assert main["model.safetensors"] == (out / "model.safetensors").read_bytes()
    assert main["model.safetensors"] == (out / "final" / "model.safetensors").read_bytes()
    assert main["config.json"] == (out / "config.json").read_bytes()
    assert not [name for name in main if name.startswith("checkpoint-")]  # those go to their revisions


def test_model_card_carries_the_recipe_and_the_metrics(pushed: Pushed):
    card = pushed.hub.files(REPO, "main")["README.md"]
    assert card == (pushed.out / "README.md").read_bytes()
    text = card.decode()
    assert "grail-rl" in text and "max_steps: 4" in text and "eval/eval/accuracy" in text
    assert f"hub_model_id: {REPO}" in text


def test_the_token_travels_only_in_the_authorization_header(pushed: Pushed):
    hub, out, proc = pushed.hub, pushed.out, pushed.proc
    writes = [r for r in hub.requests if r.method == "POST"]
    assert {r.path.split("?")[0].rsplit("/", 1)[0] for r in writes} >= {
        "/api/repos",
        f"/api/models/{REPO}/branch",
        f"/api/models/{REPO}/preupload",
        f"/api/models/{REPO}/commit",
    }
    assert all(r.authorization == f"Bearer {TOKEN}" for r in writes)
    secret = TOKEN.encode()
    assert not [r.path for r in hub.requests if TOKEN in r.path]
    assert not [r.path for r in hub.requests if secret in r.body]
    uploaded = [name for repo in hub.repos.values() for commit in repo.commits.values()
                for name, data in commit.files.items() if secret in data]  # fmt: skip
    assert not uploaded, f"token uploaded in {uploaded}"
    leaked = [p for p in out.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert not leaked, f"token written to {leaked}"
    assert TOKEN not in proc.stdout and TOKEN not in proc.stderr
    # the scan above would find it: the token is in the requests' headers and the folder has the run's log
    assert (out / "train.log").is_file() and any(
        r.authorization and TOKEN in r.authorization for r in hub.requests
    )


def data_bearing(name: str) -> bool:
    """What holds participants' data (prompts with survey answers, example rows): never pushed unasked."""
    return name.startswith(("completions/", "drop_report_", "reward_faults/")) or name == "train.log" or (
        name.endswith(".predictions.jsonl")
    )


def test_main_mirrors_the_output_folder_without_staging_copies_or_participants_data(pushed: Pushed):
    hub, out = pushed.hub, pushed.out
    local = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert any(name.startswith("completions/") for name in local) and "drop_report_train.json" in local
    pushable = {name for name in local if not name.startswith(("checkpoint-", "_", ".grail-")) and not data_bearing(name)}
    for commit in hub.history(REPO, "main"):
        assert not [name for name in commit.files if name.startswith((".staging/", ".grail-"))], commit.message
        assert not [name for name in commit.files if data_bearing(name)], commit.message
    main = hub.files(REPO, "main")
    assert set(main) - {".gitattributes"} == pushable
    assert "base_model" not in main["README.md"].decode() and "[None]" not in main["README.md"].decode()


def test_push_data_files_pushes_them_when_the_recipe_asks(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(
        tmp_path, tiny_model, trainer={"max_steps": 2}, output={"save_steps": 2},
        hub={"push_to_hub": True, "hub_model_id": REPO, "push_data_files": True},
    )  # fmt: skip
    with LocalHub(token=TOKEN) as hub:
        proc = run_cli("train", str(path), "--no-eval", cwd=tmp_path, HF_TOKEN=TOKEN, **hub.env(tmp_path / "hf-home"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    main = hub.files(REPO, "main")
    assert "train.log" in main and "drop_report_train.json" in main
    assert any(name.startswith("completions/") for name in main)
    assert not [name for name in main if name.startswith(".grail-")]
