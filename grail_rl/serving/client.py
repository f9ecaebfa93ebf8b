"""The one OpenAI-compatible client grail-rl uses: ``generate``, the ``llm_judge`` reward and served-model evaluation.

Built on the ``openai`` package's async client (the ``serve`` extra), which retries refused connections,
timeouts, 408/409/429 and 5xx answers with exponential backoff and honours ``Retry-After``; an answer that is
not JSON (a proxy's error page) is retried here the same number of times. Concurrency is bounded by a
semaphore. Every failed attempt, retried or not, is counted (:class:`ServingStats`), so progress bars and
reward logs can show a server that struggles before it fails. The API key comes only from the environment
(``GRAIL_RL_API_KEY``, else ``OPENAI_API_KEY``; a local server needs none) and is never written anywhere.
Failures become one :class:`ServingError` line naming the URL and the model, with a ``kind`` that says whether
the request itself was refused (no retry helps) or the server failed.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from grail_rl.errors import GrailError

KEY_ENVS = ("GRAIL_RL_API_KEY", "OPENAI_API_KEY")
RETRYABLE_STATUS = (408, 409, 429)  # and every 5xx, as the openai client retries them
MAX_HONOURED_WAIT = 120.0  # the longest Retry-After the openai client waits for; a longer one is not retried
# The failed attempts of the request being made in this task (the transport counts them; the message says them).
_ATTEMPTS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("grail_rl_serving_attempts", default=None)
# The whole-call deadline of that request, pushed back by the waits a server asks for (Retry-After).
_DEADLINE: contextvars.ContextVar[Any] = contextvars.ContextVar("grail_rl_serving_deadline", default=None)


class ServingError(GrailError):
    """The server could not be used. ``kind``: ``refused`` (the server said no to this request: a wrong model
    name, a bad key, a prompt it will not take; retrying does not help), ``unreachable``, ``timeout``,
    ``connection`` (cut mid-answer), ``status`` (429/5xx after the retries) or ``protocol`` (not an OpenAI
    chat completion)."""

    def __init__(self, message: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status

    @property
    def stops_everything(self) -> bool:
        """True when every later request would fail the same way (no such model, no access)."""
        return self.kind == "refused" and self.status in (401, 403, 404)


@dataclass(frozen=True)
class Endpoint:
    """Where a model is served and how patiently to talk to it."""

    base_url: str
    model: str
    timeout: float = 120.0
    max_retries: int = 5
    concurrency: int = 8

    def describe(self) -> str:
        return f"model '{self.model}' at {self.base_url}"


@dataclass
class ServingStats:
    """What one :class:`ServedModel` has seen: finished calls, calls that failed after their retries, failed
    attempts (each refused connection, timeout, cut answer, 429/5xx or non-JSON answer, retried or not), and
    the summed seconds of the calls that succeeded."""

    calls: int = 0
    failures: int = 0
    failed_attempts: int = 0
    seconds: float = 0.0


def check_url(url: str, what: str) -> str:
    """``url`` without a trailing slash when it is an http(s) URL with a host (and a valid port) and no
    credentials in it; else a one-line :class:`GrailError` naming ``what`` (the option or recipe field)."""
    example = "e.g. http://127.0.0.1:8000/v1"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as exc:
        raise GrailError(f"{what} {url!r} is not a valid URL ({exc}); {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GrailError(f"{what} {url!r}: give an http:// or https:// URL with a host, {example}")
    secret = [k for k, _ in parse_qsl(parts.query) if any(w in k.lower() for w in ("key", "token", "secret", "auth"))]
    if parts.username or parts.password or secret:
        raise GrailError(f"{what}: the URL holds a credential ({'user info' if parts.username else secret[0]}); it "
                         "would be printed and recorded: put the key in $GRAIL_RL_API_KEY instead")  # fmt: skip
    del port
    return url.rstrip("/")


def api_key() -> str:
    """The key from the environment; a placeholder for local servers, which ignore it."""
    return next((os.environ[name] for name in KEY_ENVS if os.environ.get(name)), "unused")


def _require_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise ServingError("talking to a served model needs the openai package: pip install 'grail-rl[serve]'",
                           kind="refused") from None  # fmt: skip
    return openai


class ServedModel:
    """Chat completions from one endpoint, at most ``endpoint.concurrency`` at a time. Usable from several event
    loops one after another (each ``asyncio.run``): the client and the semaphore are made per loop."""

    def __init__(self, endpoint: Endpoint, *, max_retries: int | None = None, timeout: float | None = None) -> None:
        _require_openai()
        self.endpoint = endpoint
        self.max_retries = endpoint.max_retries if max_retries is None else max_retries
        self.timeout = endpoint.timeout if timeout is None else timeout
        self.stats = ServingStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None

    def _bind(self) -> tuple[Any, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._client is None or self._semaphore is None:
            openai = _require_openai()
            # The HTTP library this openai release is built on (httpx, or httpx2 in the 3.x releases).
            http = importlib.import_module(openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0])
            # Our own transport under the openai client's retries, to count every failed attempt.
            transport = _CountingTransport(http.AsyncHTTPTransport(
                limits=http.Limits(max_connections=self.endpoint.concurrency + 4,
                                   max_keepalive_connections=self.endpoint.concurrency)), self.stats)  # fmt: skip
            self._client = openai.AsyncOpenAI(
                base_url=self.endpoint.base_url, api_key=api_key(), timeout=self.timeout, max_retries=self.max_retries,
                http_client=openai.DefaultAsyncHttpxClient(transport=transport),
            )  # fmt: skip
            self._semaphore = asyncio.Semaphore(self.endpoint.concurrency)
            self._loop = loop
        return self._client, self._semaphore

    async def chat(self, messages: Sequence[dict[str, Any]], *, max_tokens: int, temperature: float = 0.0,
                   no_text_ok: bool = False, extra_body: dict[str, Any] | None = None) -> str:  # fmt: skip
        """The assistant's reply to ``messages`` (one completion); a :class:`ServingError` after the retries.
        An answer without text (a content filter's, a tool call) is an error unless ``no_text_ok`` (then "")."""
        return (await self.chat_full(messages, max_tokens=max_tokens, temperature=temperature, no_text_ok=no_text_ok,
                                     extra_body=extra_body))[0]  # fmt: skip

    async def chat_full(self, messages: Sequence[dict[str, Any]], *, max_tokens: int, temperature: float = 0.0,
                        no_text_ok: bool = False, extra_body: dict[str, Any] | None = None) -> tuple[str, str | None]:  # fmt: skip
        """(the reply, its finish reason: ``stop``, ``length`` when ``max_tokens`` cut it, ...). ``extra_body``:
        fields the server takes beyond OpenAI's (vLLM's ``chat_template_kwargs``)."""
        client, semaphore = self._bind()
        messages = [_sendable(m) for m in messages]
        async with semaphore:
            started = time.perf_counter()
            _ATTEMPTS.set([0])
            # The HTTP timeout bounds each wait for a byte; this bounds the whole call, retries and backoff
            # included, so a server that drips an answer byte by byte cannot hold a row forever.
            deadline = self.timeout * (self.max_retries + 1) + 8.0 * self.max_retries
            try:
                async with asyncio.timeout(deadline) as whole_call:
                    _DEADLINE.set(whole_call)
                    reply = await self._create(client, messages, max_tokens=max_tokens, temperature=temperature,
                                               no_text_ok=no_text_ok, extra_body=extra_body)  # fmt: skip
            except TimeoutError:
                self.stats.calls += 1
                self.stats.failures += 1
                made = (_ATTEMPTS.get() or [0])[0]
                raise ServingError(f"{self.endpoint.describe()}: no complete answer within {deadline:g} s and "
                                   f"{made} attempt{'s' if made != 1 else ''} (each waits up to {self.timeout:g} s "
                                   "for the server); the server is too slow, or drips its answer: raise the timeout, "
                                   "or check the server", kind="timeout") from None  # fmt: skip
            except ServingError:
                self.stats.calls += 1
                self.stats.failures += 1
                raise
            self.stats.calls += 1
            self.stats.seconds += time.perf_counter() - started
            return reply

    async def _create(self, client: Any, messages: Sequence[dict[str, Any]], *, max_tokens: int, temperature: float,
                      no_text_ok: bool, extra_body: dict[str, Any] | None) -> tuple[str, str | None]:  # fmt: skip
        import openai

        where = self.endpoint.describe()
        tries = self.max_retries

        def attempts() -> str:
            made = (_ATTEMPTS.get() or [0])[0]
            return f"after {made} attempt{'s' if made != 1 else ''}"

        for attempt in range(tries + 1):
            try:
                response = await client.chat.completions.create(
                    model=self.endpoint.model, messages=list(messages), max_tokens=max_tokens, temperature=temperature,
                    **({"extra_body": extra_body} if extra_body else {}),
                )
            except UnicodeError as exc:
                raise ServingError(f"{where}: the request cannot be encoded ({_short(exc)})", kind="refused") from None
            except ValueError as exc:  # a 200 whose body is not JSON: retried like a 5xx
                self.stats.failed_attempts += 1
                if attempt < tries:
                    await asyncio.sleep(min(0.5 * 2**attempt, 8.0))
                    continue
                raise ServingError(f"{where}: the answer is not JSON ({_short(exc)}) after {attempt + 1} attempts; "
                                   "is the URL an OpenAI-compatible server (…/v1)?", kind="protocol") from None  # fmt: skip
            except openai.APITimeoutError:
                raise ServingError(f"{where}: no answer within {self.timeout:g} s, {attempts()}; raise the "
                                   "timeout, or check the server", kind="timeout") from None  # fmt: skip
            except openai.APIConnectionError as exc:
                cause = exc.__cause__
                if type(cause).__name__ == "ConnectError":
                    raise ServingError(
                        f"cannot reach {self.endpoint.base_url} (connection refused or no such host, {attempts()}); "
                        "is the server running, and is the URL right (e.g. http://127.0.0.1:8000/v1)?",
                        kind="unreachable",
                    ) from None
                raise ServingError(f"{where}: the connection broke mid-answer ({type(cause or exc).__name__}), "
                                   f"{attempts()}", kind="connection") from None  # fmt: skip
            except openai.APIStatusError as exc:
                code = exc.status_code
                if code in RETRYABLE_STATUS or code >= 500:
                    wait = _retry_after(getattr(exc.response, "headers", None))
                    later = (f"; it asks to wait {wait:g} s, longer than grail-rl waits: try later"
                             if wait and wait > MAX_HONOURED_WAIT else "")  # fmt: skip
                    raise ServingError(f"{where}: the server answered {code} ({_message(exc)}), {attempts()}{later}",
                                       kind="status", status=code) from None  # fmt: skip
                hint = {400: "check the model name and the request settings", 401: "check $GRAIL_RL_API_KEY",
                        403: "check $GRAIL_RL_API_KEY", 404: "check the model name"}
                raise ServingError(f"{where}: the server refused it ({code}: {_message(exc)}); "
                                   f"{hint.get(code, 'check the request settings')}", kind="refused",
                                   status=code) from None  # fmt: skip
            except openai.APIResponseValidationError as exc:
                raise ServingError(f"{where}: the answer is not an OpenAI chat completion ({_short(exc)})",
                                   kind="protocol") from None  # fmt: skip
            choices = getattr(response, "choices", None)
            if not isinstance(choices, list) or not choices or getattr(choices[0], "message", None) is None:
                raise ServingError(f"{where}: the answer holds no completion", kind="protocol")
            content, finish = choices[0].message.content, getattr(choices[0], "finish_reason", None)
            if content is None and finish != "length" and not no_text_ok:  # a content filter, a tool call: no answer
                raise ServingError(f"{where}: the answer has no text (finish reason: {finish})", kind="protocol")
            if content is not None and not isinstance(content, str):
                raise ServingError(f"{where}: the completion's content is not text", kind="protocol")
            return content or "", finish if isinstance(finish, str) else None
        raise AssertionError("unreachable")  # the loop returns or raises

    async def chat_all(self, conversations: Sequence[Any], *, max_tokens: int, temperature: float = 0.0,
                       no_text_ok: bool = False) -> list[str]:  # fmt: skip
        """Replies to every conversation (a message list, or a plain string as one user message), in order."""
        return list(await asyncio.gather(*(self.chat(as_messages(c), max_tokens=max_tokens, temperature=temperature,
                                                     no_text_ok=no_text_ok) for c in conversations)))  # fmt: skip

    def check(self) -> None:
        """One short request with the endpoint's retries (a server still starting is waited for): an unreachable
        URL or an unknown model stops here, before any row."""
        probe = ServedModel(self.endpoint, timeout=min(self.timeout, 30.0))
        run_blocking(probe.chat([{"role": "user", "content": "ping"}], max_tokens=1))


def run_blocking(coroutine: Any) -> Any:
    """``asyncio.run(coroutine)``, also from code already inside a running event loop (a notebook, TRL's reward
    loop): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=run, name="grail-rl-serving")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _sendable(message: Any) -> Any:
    """The message with text that UTF-8 can carry: a lone surrogate (a model can write one) becomes U+FFFD
    instead of failing the request's encoding."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        try:
            content.encode("utf-8")
        except UnicodeEncodeError:
            return {**message, "content": content.encode("utf-8", "surrogatepass").decode("utf-8", "replace")}
    return message


def as_messages(prompt: Any) -> list[dict[str, Any]]:
    """Chat messages for a prompt: a message list as it is, a plain string as one user message."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


class _CountingTransport:
    """An httpx transport that counts failed attempts (exceptions and retryable statuses) and passes all on."""

    def __init__(self, inner: Any, stats: ServingStats) -> None:
        self.inner, self.stats = inner, stats

    async def handle_async_request(self, request: Any) -> Any:
        made = _ATTEMPTS.get()
        if made is not None:
            made[0] += 1
        try:
            response = await self.inner.handle_async_request(request)
        except Exception:
            self.stats.failed_attempts += 1
            raise
        if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
            self.stats.failed_attempts += 1
            whole_call = _DEADLINE.get()
            wait = _retry_after(response.headers)
            if whole_call is not None and wait is not None and 0 < wait <= MAX_HONOURED_WAIT and whole_call.when() is not None:
                whole_call.reschedule(whole_call.when() + wait)  # the client waits as asked: the deadline too
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> _CountingTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _retry_after(headers: Any) -> float | None:
    """The seconds a Retry-After header asks for (seconds form only), if any."""
    try:
        return float(headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        detail = body.get("detail") or body.get("message") or (error.get("message") if isinstance(error, dict) else error)
        if detail:
            return str(detail)[:200]
    return str(getattr(exc, "message", exc))[:200]
