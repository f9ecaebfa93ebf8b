"""A model and data given as hub ids, downloaded by the real libraries from a local hub (``tests/local_hub.py``).

``grail-rl train`` runs as a subprocess with ``HF_ENDPOINT`` pointing at a
:class:`~tests.local_hub.LocalHub` on 127.0.0.1, ``HF_HUB_OFFLINE=0`` and ``HF_HOME`` inside the test's
folder, so transformers (``from_pretrained("grail/tiny")``) and datasets (``load_dataset("grail/viewers",
streaming=True)``) go through huggingface_hub's real download code and nothing touches the user's cache.
"""

from __future__ import annotations

import json

import pytest

from grail_rl.data.synth import generate
from tests.conftest_training import run_cli, tiny_model, write_recipe  # noqa: F401  (fixture)
from tests.local_hub import LocalHub

FLAGS = ("--max_steps", "1", "--no-eval", "--quiet")


def served(hub: LocalHub, method: str, path: str) -> bool:
    return any(r.method == method and r.path.split("?")[0] == path for r in hub.requests)


@pytest.mark.slow
def test_train_a_model_given_as_a_hub_id(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(tmp_path, tiny_model, model={"name_or_path": "grail/tiny", "dtype": "float32"})
    with LocalHub() as hub:
        commit = hub.add_repo("grail/tiny", tiny_model)
        proc = run_cli("train", str(path), *FLAGS, cwd=tmp_path, **hub.env(tmp_path / "hf-home"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "completed" and run["global_step"] == 1
    assert run["recipe"]["model"]["name_or_path"] == "grail/tiny"  # a hub id stays a hub id
    for name in ("config.json", "tokenizer.json", "chat_template.jinja", "model.safetensors"):
        assert served(hub, "GET", f"/grail/tiny/resolve/{commit}/{name}"), name
    snapshot = tmp_path / "hf-home" / "hub" / "models--grail--tiny" / "snapshots" / commit
    assert (snapshot / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    assert hub.unhandled == []


@pytest.mark.slow
def test_a_missing_hub_model_is_one_line_and_exit_2(tmp_path, tiny_model):  # noqa: F811
    path = write_recipe(tmp_path, tiny_model, model={"name_or_path": "grail/missing", "dtype": "float32"})
    with LocalHub() as hub:
        hub.add_repo("grail/tiny", tiny_model)
        proc = run_cli("train", str(path), *FLAGS, cwd=tmp_path, **hub.env(tmp_path / "hf-home"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: model.name_or_path: cannot load a tokenizer from grail/missing"
    )
    assert "Traceback" not in proc.stderr
    assert served(hub, "GET", "/api/models/grail/missing")  # it asked the hub, which said RepoNotFound


@pytest.mark.slow
def test_train_on_data_given_as_a_hub_dataset_id(tmp_path, tiny_model):  # noqa: F811
    synth = generate(60, 1, tmp_path / "synth")
    files = {name: (tmp_path / "synth" / name).read_bytes() for name in ("train.jsonl", "validation.jsonl")}
    path = write_recipe(
        tmp_path, tiny_model,
        data={"train": [{"hub": "grail/viewers"}], "eval": [{"hub": "grail/viewers", "split": "validation"}],
              "max_eval_samples": 6},
    )  # fmt: skip
    with LocalHub() as hub:
        commit = hub.add_repo("grail/viewers", repo_type="dataset", files=files)
        proc = run_cli("train", str(path), *FLAGS, cwd=tmp_path, **hub.env(tmp_path / "hf-home"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    train_report = json.loads((out / "drop_report_train.json").read_text())
    eval_report = json.loads((out / "drop_report_eval.json").read_text())
    # every row of both hub files was read through the streaming reader
    assert train_report["read"] == synth.train_rows == files["train.jsonl"].count(b"\n")
    assert eval_report["read"] == synth.validation_rows == files["validation.jsonl"].count(b"\n")
    for name in files:
        assert served(hub, "GET", f"/datasets/grail/viewers/resolve/{commit}/{name}"), name
    assert hub.unhandled == []
