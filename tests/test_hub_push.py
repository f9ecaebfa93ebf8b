"""Pushing to the hub without a network: huggingface_hub's API is replaced in-process by a recorder.

Checks: the model is pushed on every save and at the end, each checkpoint gets its own revision when
asked, the model card carries the recipe and metrics, and the token (set only in the environment) is
written to no file of the output folder and to no log.
"""

from __future__ import annotations

import pytest

from grail_rl.recipe.loader import load_recipe
from grail_rl.training.run import run_training
from tests.conftest_training import tiny_model, toy_dataset, write_recipe  # noqa: F401  (fixture)

TOKEN = "hf_grailTESTtoken0123456789abcdefSECRET"


class FakeHub:
    """Records every call that would have reached the hub; answers like the hub would."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def install(self, monkeypatch):
        from huggingface_hub import HfApi
        from huggingface_hub.hf_api import CommitInfo, RepoUrl

        fake = self

        def create_repo(self, repo_id, **kwargs):
            fake.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
            return RepoUrl(f"http://127.0.0.1:9/{repo_id}", endpoint="http://127.0.0.1:9")

        def create_branch(self, repo_id, *, branch, **kwargs):
            fake.calls.append(("create_branch", {"repo_id": repo_id, "branch": branch, **kwargs}))

        def upload_folder(self, *, repo_id, folder_path, commit_message=None, revision=None, run_as_future=False,
                          ignore_patterns=None, **kwargs):
            from concurrent.futures import Future
            from pathlib import Path

            root = Path(folder_path)
            paths = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
            fake.calls.append(("commit", {"repo_id": repo_id, "revision": revision, "paths": paths,
                                          "message": commit_message, "token": kwargs.get("token")}))
            info = CommitInfo(commit_url=f"http://127.0.0.1:9/{repo_id}/commit/0", commit_message=commit_message or "",
                              commit_description="", oid="0" * 40)  # fmt: skip
            if not run_as_future:
                return info
            future: Future = Future()
            future.set_result(info)
            return future

        def offline(self, *args, **kwargs):
            raise AssertionError("the test tried to reach the hub")

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "create_branch", create_branch)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
        for name in ("create_commit", "preupload_lfs_files", "upload_file", "whoami"):
            monkeypatch.setattr(HfApi, name, offline)
        return self


@pytest.mark.slow
def test_push_revisions_and_card_without_leaking_the_token(tmp_path, tiny_model, monkeypatch, caplog, capsys):  # noqa: F811
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # anything unpatched fails locally, never online
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    hub = FakeHub().install(monkeypatch)
    path = write_recipe(
        tmp_path, tiny_model, output={"save_steps": 2},
        hub={"push_to_hub": True, "hub_model_id": "grail/tiny-test", "revision_per_save": True},
    )  # fmt: skip
    result = run_training(load_recipe(path), train_dataset=toy_dataset(16), eval_dataset=toy_dataset(4),
                          console=True)  # fmt: skip

    branches = [c[1]["branch"] for c in hub.calls if c[0] == "create_branch"]
    assert branches == ["step-000002", "step-000004"]
    commits = [c[1] for c in hub.calls if c[0] == "commit"]
    on_branches = [c for c in commits if c["revision"] in branches]
    assert len(on_branches) == 2 and all("model.safetensors" in c["paths"] for c in on_branches)
    main_pushes = [c for c in commits if c["revision"] is None]
    assert main_pushes and "README.md" in main_pushes[-1]["paths"] and "model.safetensors" in main_pushes[-1]["paths"]
    card = (result.output_dir / "README.md").read_text()
    assert "grail-rl" in card and "max_steps: 4" in card and "eval/eval/accuracy" in card

    secret = TOKEN.encode()
    leaked = [p for p in result.output_dir.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert not leaked, f"token written to {leaked}"
    assert TOKEN not in caplog.text
    printed = capsys.readouterr()
    assert TOKEN not in printed.out and TOKEN not in printed.err
    assert all(c.get("token") is None for c in commits)  # never passed explicitly
