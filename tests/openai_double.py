"""A small OpenAI-compatible server of our own, for fault tests and benchmarks of grail-rl's serving client.

Run it as a process (``python -m tests.openai_double --port P ...``, or :class:`DoubleServer` from a test) so
a test can really kill it (``kill -9``) and start it again on the same port. It answers ``POST /v1/chat/completions`` itself, with the tail of the
last user message as the reply ("echo"), or relays the request to a real server (``--upstream URL``, e.g.
``transformers serve``). A fault schedule makes ``--fault-count`` completion requests misbehave, after the first ``--fault-after``:

- ``status``: answer ``--status`` (500) with an error body, and ``Retry-After`` when ``--retry-after`` is given;
- ``slow``: wait ``--slow-delay`` seconds before answering (longer than the client's timeout);
- ``garbage``: a 200 whose body is not JSON;
- ``truncate``: a 200 that promises more bytes than it sends, then closes the connection;
- ``hang-up``: close the connection without answering;
- ``drip``: a well-formed answer sent one byte every ``--slow-delay`` seconds (each wait shorter than a timeout);
- ``null``: a completion whose content is null (a content filter's answer).

``--refuse-containing TEXT`` answers 400 (a prompt too long) to any request whose messages hold TEXT, every
time. Every completion request is logged as one JSON line to ``--log`` (its number, the fault it met, hashes
of the messages and of the Authorization header, how many requests were in flight), so tests count what reached the server. ``--latency`` delays every answer (a hosted model's
round trip, for the concurrency benchmark). Only ``--model`` is served; another name gets the 404 a real
server gives.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FAULTS = ("none", "status", "slow", "garbage", "truncate", "hang-up", "drip", "null")


class Double(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], options: argparse.Namespace) -> None:
        super().__init__(address, Handler)
        self.options = options
        self.count = 0
        self.inflight = 0  # completion requests being answered right now
        self.lock = threading.Lock()

    def next_request(self) -> tuple[int, str, int]:
        with self.lock:
            self.count += 1
            self.inflight += 1
            n, inflight = self.count, self.inflight
        first = self.options.fault_after
        fault = self.options.fault if first < n <= first + self.options.fault_count else "none"
        return n, fault, inflight

    def done(self) -> None:
        with self.lock:
            self.inflight -= 1

    def log(self, record: dict) -> None:
        if self.options.log:
            with self.lock, open(self.options.log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")


class Handler(BaseHTTPRequestHandler):
    server: Double
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet: tests read --log instead
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/health", ""):
            self._json(200, {"status": "ok"})
        elif self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": self.server.options.model, "object": "model"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            request = json.loads(body)
        except ValueError:
            self._json(400, {"error": {"message": "the body is not JSON"}})
            return
        options = self.server.options
        if request.get("model") != options.model:
            self._json(404, {"error": {"message": f"The model `{request.get('model')}` does not exist."}})
            return
        if options.refuse_containing and options.refuse_containing in json.dumps(request.get("messages")):
            self._json(400, {"error": {"message": "This model's maximum context length is 8 tokens."}})
            return
        n, fault, inflight = self.server.next_request()
        try:
            self._complete(request, body, n, fault, inflight)
        finally:
            self.server.done()

    def _complete(self, request: dict, body: bytes, n: int, fault: str, inflight: int) -> None:
        options = self.server.options
        digest = hashlib.sha256(json.dumps(request.get("messages"), sort_keys=True).encode()).hexdigest()[:16]
        auth = hashlib.sha256((self.headers.get("Authorization") or "").encode()).hexdigest()[:16]
        self.server.log({"n": n, "fault": fault, "messages": digest, "auth": auth, "inflight": inflight,
                         "chat_template_kwargs": request.get("chat_template_kwargs"), "time": time.time()})  # fmt: skip
        if fault == "status":
            headers = {"Retry-After": str(options.retry_after)} if options.retry_after is not None else {}
            self._json(options.status, {"error": {"message": f"injected failure {n}"}}, headers)
            return
        if fault == "slow":
            time.sleep(options.slow_delay)
        if fault == "hang-up":
            self.close_connection = True
            self.connection.close()
            return
        if fault == "drip":
            payload = json.dumps(completion(request, options.model)).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                for byte in payload:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(options.slow_delay)
            except OSError:
                self.close_connection = True
            return
        if fault == "null":
            answer = completion(request, options.model)
            answer["choices"][0]["message"]["content"] = None
            answer["choices"][0]["finish_reason"] = "content_filter"
            self._json(200, answer)
            return
        if fault == "garbage":
            self._raw(200, b"<html>502 Bad Gateway</html> this is not JSON", "application/json")
            return
        if options.latency:
            time.sleep(options.latency)
        if options.upstream:
            status, payload = relay(options.upstream, body)
            if fault == "truncate":
                self._truncated(payload)
            else:
                self._raw(status, payload, "application/json")
            return
        payload = json.dumps(completion(request, options.model, options.reply_size)).encode()
        if fault == "truncate":
            self._truncated(payload)
        else:
            self._raw(200, payload, "application/json")

    def _json(self, status: int, data: dict, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(data).encode(), "application/json", headers)

    def _raw(self, status: int, payload: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timed out) first
            self.close_connection = True

    def _truncated(self, payload: bytes) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True
        self.connection.close()


def completion(request: dict, model: str, size: int = 200) -> dict:
    """A chat completion whose reply is the tail of the last user message (so tests know what to expect), as
    many choices as the request's ``n``; ``size`` characters long (the tail, or the message padded)."""
    messages = request.get("messages") or []
    last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "") or ""
    if isinstance(last, list):  # content parts
        last = " ".join(part.get("text", "") for part in last if isinstance(part, dict))
    reply = last[-size:] if len(last) >= size else (last + " " + "x" * size)[:size]
    return {
        "id": "chatcmpl-double", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                    for i in range(max(1, int(request.get("n") or 1)))],
        "usage": {"prompt_tokens": len(last.split()), "completion_tokens": len(reply.split()),
                  "total_tokens": len(last.split()) + len(reply.split())},
    }  # fmt: skip


def relay(upstream: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{upstream.rstrip('/')}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=600) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return 502, json.dumps({"error": {"message": f"upstream unreachable: {exc}"}}).encode()


REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DoubleServer:
    """tests/openai_double.py as a process on one port, started (again) and killed at will."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.args = list(args)
        self.log = tmp_path / f"double-{self.port}.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, *extra: str, wait: bool = True) -> DoubleServer:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.openai_double", "--port", str(self.port),
                                      "--log", str(self.log), *self.args, *extra], cwd=REPO_ROOT)  # fmt: skip
        if wait:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1):
                        return self
                except OSError:
                    time.sleep(0.05)
            raise AssertionError("the double did not start")
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="double")
    parser.add_argument("--upstream", default=None, help="relay completions to this base URL (…/v1)")
    parser.add_argument("--fault", choices=FAULTS, default="none")
    parser.add_argument("--fault-count", type=int, default=0, help="how many first completion requests meet the fault")
    parser.add_argument("--fault-after", type=int, default=0, help="requests answered well before the faults begin")
    parser.add_argument("--status", type=int, default=500)
    parser.add_argument("--retry-after", type=float, default=None)
    parser.add_argument("--slow-delay", type=float, default=5.0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--log", default=None)
    parser.add_argument("--reply-size", type=int, default=200, help="characters per reply (the tail of the prompt, padded)")
    parser.add_argument("--refuse-containing", default=None, help="answer 400 to messages holding this text")
    options = parser.parse_args(argv)
    server = Double(("127.0.0.1", options.port), options)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
