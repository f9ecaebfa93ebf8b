"""A small Hugging Face Hub on 127.0.0.1, for tests that must exercise huggingface_hub's real HTTP code.

``LocalHub`` runs a real ``http.server.ThreadingHTTPServer`` (port 0, in a daemon thread) that speaks the
part of the hub's HTTP API that huggingface_hub, transformers, datasets and TRL use to download and upload
repositories. Point a process at it with ``hub.env(hf_home)`` (``HF_ENDPOINT``, ``HF_HUB_OFFLINE=0`` and a
private ``HF_HOME``), best in a subprocess: huggingface_hub reads ``HF_ENDPOINT`` once, at import, so
in-process code would also need ``huggingface_hub.constants.ENDPOINT`` patched.

The routes are exactly what the installed versions (huggingface_hub 2.4, transformers 5.23, datasets 5.2,
TRL 1.16) were seen to request; anything else is answered 404 *and* recorded in ``hub.unhandled``, so a
test can insist that the emulation covered everything (and a library upgrade that asks for more shows up
there instead of as a puzzling failure):

- downloads (``from_pretrained``, ``load_dataset(streaming=True)``): ``HEAD``/``GET
  /[datasets/]{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag`` (the git blob id),
  ``Content-Length`` and byte ranges (datasets reads through fsspec with ``Range``); a missing repo,
  revision or file is a 404 whose ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``,
  ``EntryNotFound``) huggingface_hub turns into its exceptions;
- repository metadata: ``GET /api/{models,datasets}/{repo}[/revision/{rev}]`` (the commit id and files)
  and ``GET .../tree/{rev}[/{path}]`` (transformers looks for ``additional_chat_templates/``, datasets for
  ``data/``; ``upload_folder(delete_patterns=...)`` lists a branch);
- uploads (``Trainer.push_to_hub``, ``HfApi.upload_folder``): ``POST /api/repos/create``, ``POST
  .../branch/{name}``, ``POST /api/validate-yaml`` (the model card), ``POST .../preupload/{rev}``
  (every file is ``regular``: its content travels base64 inside the commit, so no LFS or Xet server is
  needed) and ``POST .../commit/{rev}`` (NDJSON);
- background calls: ``GET /api/agent-harnesses`` (huggingface_hub's user-agent registry) and ``HEAD
  /api/telemetry/...`` (TRL), both answered as the hub would.

Every commit is kept whole (``path -> bytes``) per repository and branch, so a test reads back exactly what
was uploaded (``hub.files(repo, revision)``, ``hub.history(repo, branch)``). Every request is recorded
(method, path with query, headers, body) in ``hub.requests``. Writes need ``Authorization: Bearer TOKEN``
with the token given to ``LocalHub(token=...)``, as on the real hub, so a push without the token fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset"}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"  # what the hub puts in a new repo


def blob_id(data: bytes) -> str:
    """The git blob id of ``data``: what the hub reports as a file's ``oid`` and (for non-LFS files) ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Request:
    method: str
    path: str  # as sent, with the query string
    headers: dict[str, str]
    body: bytes

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class Commit:
    oid: str
    parent: str | None
    message: str
    files: dict[str, bytes]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit oid

    def resolve(self, revision: str) -> Commit | None:
        """A branch name, ``refs/heads/NAME`` or a full commit id."""
        name = revision.removeprefix("refs/heads/")
        if name in self.branches:
            return self.commits[self.branches[name]]
        return self.commits.get(revision)

    def commit(self, branch: str, files: dict[str, bytes], message: str) -> Commit:
        parent = self.branches.get(branch)
        digest = hashlib.sha1(
            json.dumps([parent, message, sorted((p, blob_id(d)) for p, d in files.items())]).encode()
        )
        commit = Commit(digest.hexdigest(), parent, message, dict(files))
        self.commits[commit.oid] = commit
        self.branches[branch] = commit.oid
        return commit


class HubError(Exception):
    """An error answer: status, the ``X-Error-Code`` huggingface_hub dispatches on, and a message."""

    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class LocalHub:
    """The hub emulation; use as a context manager (``with LocalHub(token=T) as hub: ... hub.url``)."""

    def __init__(self, token: str | None = None, user: str = "grail-tester"):
        self.token = token
        self.user = user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[Request] = []
        self.unhandled: list[str] = []  # "METHOD path" of requests no route knew
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> LocalHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- test-side access -------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        folder: Path | None = None,
        *,
        repo_type: str = "model",
        files: dict[str, bytes] | None = None,
    ) -> str:
        """Create ``repo_id`` with one commit on ``main`` holding ``folder``'s files (and/or ``files``)."""
        content = dict(files or {})
        if folder is not None:
            content |= {
                p.relative_to(folder).as_posix(): p.read_bytes()
                for p in sorted(folder.rglob("*"))
                if p.is_file()
            }
        with self._lock:
            repo = self.repos.setdefault((repo_type, repo_id), Repo(repo_type, repo_id))
            return repo.commit("main", content, "initial commit").oid

    def env(self, hf_home: Path) -> dict[str, str]:
        """Environment for a subprocess that should use this hub, online, with its cache in ``hf_home``."""
        # NO_PROXY: with HTTP(S)_PROXY set, httpx would send even 127.0.0.1 through the proxy.
        no_proxy = ",".join(
            v for v in ("127.0.0.1", os.environ.get("NO_PROXY"), os.environ.get("no_proxy")) if v
        )
        return {
            "HF_ENDPOINT": self.url,
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(hf_home),
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision`` (a branch or commit id), as uploaded."""
        with self._lock:
            commit = self.repo(repo_id, repo_type).resolve(revision)
            assert commit is not None, f"{repo_id} has no revision {revision!r}"
            return dict(commit.files)

    def history(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> list[Commit]:
        """The commits of ``branch``, oldest first."""
        with self._lock:
            repo = self.repo(repo_id, repo_type)
            out, oid = [], repo.branches.get(branch)
            while oid is not None:
                out.append(repo.commits[oid])
                oid = repo.commits[oid].parent
            return out[::-1]

    # -- request handling (called from the server's threads) --------------------------------------------

    def _find(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        return repo

    def _revision(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _check_write(self, authorization: str | None) -> None:
        if self.token is not None and authorization != f"Bearer {self.token}":
            raise HubError(401, "Invalid credentials in Authorization header")


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    server_version = "local-hub"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the base class's name)
        pass  # the hub records requests itself; stderr lines would only clutter pytest's output

    # Every method goes through _dispatch, so every request is recorded, PUT and DELETE too (no route uses
    # them, but an unexpected one must land in hub.unhandled rather than in http.server's 501).
    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        hub = self.hub
        with hub._lock:
            hub.requests.append(
                Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):  # never seen from huggingface_hub
            hub.unhandled.append(f"{self.command} {self.path} (chunked body)")
            self._send_json({"error": "local hub: chunked bodies are not emulated"}, 411)
            return
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        self.body = body
        try:
            with hub._lock:
                for method, pattern, handler in ROUTES:
                    match = pattern.fullmatch(split.path)
                    if match and self.command in method:
                        handler(
                            self,
                            hub,
                            **{k: unquote(v) for k, v in match.groupdict().items() if v is not None},
                        )
                        return
                hub.unhandled.append(f"{self.command} {self.path}")
                raise HubError(404, f"local hub: no route for {self.command} {split.path}")
        except HubError as exc:
            self._send_json({"error": exc.message}, exc.status, headers={
                **({"X-Error-Code": exc.code} if exc.code else {}), "X-Error-Message": exc.message, **exc.headers,
            })  # fmt: skip

    # -- answers ----------------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, payload: object, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )

    def _json_body(self) -> dict:
        return json.loads(self.body or b"{}")

    # -- downloads --------------------------------------------------------------------------------------

    def resolve(self, hub: LocalHub, repo: str, rev: str, path: str, kind: str | None = None) -> None:
        found = hub._find(REPO_TYPES[kind or "models"], repo)
        commit = hub._revision(found, rev)
        if path not in commit.files:
            # huggingface_hub caches "this file does not exist at this commit" using X-Repo-Commit.
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        data = commit.files[path]
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{blob_id(data)}"',
            "Accept-Ranges": "bytes",
        }
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if ranged and (ranged[1] or ranged[2]):  # fsspec (datasets' streaming) reads files in byte ranges
            if ranged[1]:
                start, end = int(ranged[1]), min(int(ranged[2] or len(data) - 1), len(data) - 1)
            else:  # a suffix range: the last N bytes
                start, end = max(len(data) - int(ranged[2]), 0), len(data) - 1
            if start >= len(data) or start > end:
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            self._send(
                206, data[start : end + 1], headers | {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
            )
            return
        self._send(200, data, headers)

    # -- repository metadata ----------------------------------------------------------------------------

    def repo_info(self, hub: LocalHub, kind: str, repo: str, rev: str = "main") -> None:
        found = hub._find(REPO_TYPES[kind], repo)
        commit = hub._revision(found, rev)
        self._send_json({
            "id": repo, "author": repo.split("/")[0] if "/" in repo else None, "sha": commit.oid,
            "private": found.private, "gated": False, "disabled": False, "tags": [],
            "siblings": [{"rfilename": p, "size": len(d), "blobId": blob_id(d)} for p, d in sorted(commit.files.items())],
        })  # fmt: skip

    def tree(self, hub: LocalHub, kind: str, repo: str, rev: str, path: str = "") -> None:
        commit = hub._revision(hub._find(REPO_TYPES[kind], repo), rev)
        path = path.strip("/")
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries = _entries(commit.files)
        if path and (path not in entries or entries[path]["type"] != "directory"):
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        prefix = f"{path}/" if path else ""
        out = [
            entry for name, entry in sorted(entries.items())
            if name.startswith(prefix) and (recursive or "/" not in name[len(prefix):])
        ]  # fmt: skip
        self._send_json(out)  # one page: no Link header, so huggingface_hub stops paginating

    def agent_harnesses(self, hub: LocalHub) -> None:
        # huggingface_hub fetches this registry (telemetry for its user agent) on its first request; an
        # empty registry means "no agent detected", which is what it falls back to when the fetch fails.
        self._send_json({"standardEnvVars": [], "harnesses": {}})

    def telemetry(self, hub: LocalHub) -> None:
        self._send(200, b"", {})  # TRL's trainers ping /api/telemetry/trl/... once; the hub just says OK

    def validate_yaml(self, hub: LocalHub) -> None:
        import yaml

        content = self._json_body().get("content", "")
        match = re.match(r"^---\n(.*?)\n---", content, re.S)  # the card's metadata block, if any
        try:
            if match:
                yaml.safe_load(match[1])
        except yaml.YAMLError as exc:
            self._send_json({"errors": [{"message": str(exc)}], "warnings": []}, 400)
            return
        self._send_json({"errors": [], "warnings": []})

    def create_repo(self, hub: LocalHub) -> None:
        hub._check_write(self.headers.get("Authorization"))
        payload = self._json_body()
        repo_id = f"{payload.get('organization') or hub.user}/{payload['name']}"
        repo_type = payload.get("type") or "model"
        url = f"{hub.url}/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}"
        if (repo_type, repo_id) in hub.repos:
            self._send_json({"error": "You already created this model repo", "url": url}, 409)
            return
        repo = hub.repos[(repo_type, repo_id)] = Repo(
            repo_type, repo_id, private=payload.get("visibility") == "private"
        )
        repo.commit("main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def create_branch(self, hub: LocalHub, kind: str, repo: str, branch: str) -> None:
        hub._check_write(self.headers.get("Authorization"))
        found = hub._find(REPO_TYPES[kind], repo)
        if branch in found.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        start = self._json_body().get("startingPoint") or "main"
        found.branches[branch] = hub._revision(found, start).oid
        self._send_json({})

    def preupload(self, hub: LocalHub, kind: str, repo: str, rev: str) -> None:
        hub._check_write(self.headers.get("Authorization"))
        commit = hub._revision(hub._find(REPO_TYPES[kind], repo), rev)
        files = self._json_body()["files"]
        self._send_json({
            "files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                 # the blob id of the file already there lets huggingface_hub skip unchanged files
                 "oid": blob_id(commit.files[f["path"]]) if f["path"] in commit.files else None}
                for f in files
            ],
            "commitOid": commit.oid,
        })  # fmt: skip

    def commit(self, hub: LocalHub, kind: str, repo: str, rev: str) -> None:
        hub._check_write(self.headers.get("Authorization"))
        found = hub._find(REPO_TYPES[kind], repo)
        if "create_pr" in self.query:
            raise HubError(400, "local hub: pull requests are not emulated")
        branch = rev.removeprefix("refs/heads/")
        if branch not in found.branches:  # the real hub commits only to an existing branch
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        files = dict(found.commits[found.branches[branch]].files)
        message = ""
        for line in self.body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value.get("summary", "")
                parent = value.get("parentCommit")
                if parent is not None and parent != found.branches[branch]:
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, f"local hub: unsupported encoding {value.get('encoding')!r}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(
                        404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound"
                    )
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: d for p, d in files.items() if not p.startswith(prefix)}
            else:  # lfsFile / copies: never asked for, since preupload answers "regular" for every file
                raise HubError(400, f"local hub: commit operation {key!r} is not emulated")
        new = found.commit(branch, files, message)
        prefix = "" if found.repo_type == "model" else f"{found.repo_type}s/"
        self._send_json({"success": True, "commitOid": new.oid, "pullRequestUrl": None,
                         "commitUrl": f"{hub.url}/{prefix}{repo}/commit/{new.oid}"})  # fmt: skip


def _entries(files: dict[str, bytes]) -> dict[str, dict]:
    """Tree entries (files and the folders they imply) of one commit, by path, as the tree API gives them."""
    entries: dict[str, dict] = {}
    for path, data in files.items():
        entries[path] = {"type": "file", "oid": blob_id(data), "size": len(data), "path": path}
        parts = path.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            entries.setdefault(folder, {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(),
                                        "size": 0, "path": folder})  # fmt: skip
    return entries


_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"  # "owner/name", or a legacy single-segment id like "gpt2"
_API = rf"/api/(?P<kind>models|datasets)/{_REPO}"
# (methods, path pattern on the raw, still-quoted path, handler); segments are unquoted after matching, so
# a revision like refs%2Fconvert%2Fparquet stays one segment.
ROUTES = [
    (("GET", "HEAD"), re.compile(rf"(?:/(?P<kind>datasets))?/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
     _Handler.resolve),
    (("GET",), re.compile(r"/api/agent-harnesses"), _Handler.agent_harnesses),
    (("HEAD", "GET"), re.compile(r"/api/telemetry/.+"), _Handler.telemetry),
    (("POST",), re.compile(r"/api/validate-yaml"), _Handler.validate_yaml),
    (("POST",), re.compile(r"/api/repos/create"), _Handler.create_repo),
    (("GET",), re.compile(rf"{_API}(?:/revision/(?P<rev>[^/]+))?"), _Handler.repo_info),
    (("GET",), re.compile(rf"{_API}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?"), _Handler.tree),
    (("POST",), re.compile(rf"{_API}/branch/(?P<branch>[^/]+)"), _Handler.create_branch),
    (("POST",), re.compile(rf"{_API}/preupload/(?P<rev>[^/]+)"), _Handler.preupload),
    (("POST",), re.compile(rf"{_API}/commit/(?P<rev>[^/]+)"), _Handler.commit),
]  # fmt: skip
