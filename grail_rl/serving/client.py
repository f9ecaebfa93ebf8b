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
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grail_rl.errors import GrailError

KEY_ENVS = ("GRAIL_RL_API_KEY", "OPENAI_API_KEY")
RETRYABLE_STATUS = (408, 409, 429)  # and every 5xx, as the openai client retries them


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

    @property
    def mean_latency(self) -> float | None:
        ok = self.calls - self.failures
        return self.seconds / ok if ok else None


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
            import httpx2

            # Our own transport under the openai client's retries, to count every failed attempt.
            transport = _CountingTransport(httpx2.AsyncHTTPTransport(
                limits=httpx2.Limits(max_connections=self.endpoint.concurrency + 4,
                                     max_keepalive_connections=self.endpoint.concurrency)), self.stats)  # fmt: skip
            self._client = openai.AsyncOpenAI(
                base_url=self.endpoint.base_url, api_key=api_key(), timeout=self.timeout, max_retries=self.max_retries,
                http_client=openai.DefaultAsyncHttpxClient(transport=transport),
            )  # fmt: skip
            self._semaphore = asyncio.Semaphore(self.endpoint.concurrency)
            self._loop = loop
        return self._client, self._semaphore

    async def chat(self, messages: Sequence[dict[str, Any]], *, max_tokens: int, temperature: float = 0.0) -> str:
        """The assistant's reply to ``messages`` (one completion); a :class:`ServingError` after the retries."""
        client, semaphore = self._bind()
        messages = [_sendable(m) for m in messages]
        async with semaphore:
            started = time.perf_counter()
            try:
                reply = await self._create(client, messages, max_tokens=max_tokens, temperature=temperature)
            except ServingError:
                self.stats.calls += 1
                self.stats.failures += 1
                raise
            self.stats.calls += 1
            self.stats.seconds += time.perf_counter() - started
            return reply

    async def _create(self, client: Any, messages: Sequence[dict[str, Any]], *, max_tokens: int, temperature: float) -> str:
        import openai

        where, tries = self.endpoint.describe(), self.max_retries
        for attempt in range(tries + 1):
            try:
                response = await client.chat.completions.create(
                    model=self.endpoint.model, messages=list(messages), max_tokens=max_tokens, temperature=temperature
                )
            except UnicodeError as exc:
                raise ServingError(f"{where}: the request cannot be encoded ({_short(exc)})", kind="refused") from None
            except ValueError as exc:  # a 200 whose body is not JSON: retried like a 5xx
                self.stats.failed_attempts += 1
                if attempt < tries:
                    await asyncio.sleep(min(0.5 * 2**attempt, 8.0))
                    continue
                raise ServingError(f"{where}: the answer is not JSON ({_short(exc)}) after {tries} retries; is "
                                   "the URL an OpenAI-compatible server (…/v1)?", kind="protocol") from None  # fmt: skip
            except openai.APITimeoutError:
                raise ServingError(f"{where}: no answer within {self.timeout:g} s after {tries} retries; raise "
                                   "--timeout, or check the server", kind="timeout") from None  # fmt: skip
            except openai.APIConnectionError as exc:
                cause = exc.__cause__
                if type(cause).__name__ == "ConnectError":
                    raise ServingError(
                        f"cannot reach {self.endpoint.base_url} (connection refused or no such host, after {tries} "
                        "retries); is the server running, and is the URL right (e.g. http://127.0.0.1:8000/v1)?",
                        kind="unreachable",
                    ) from None
                raise ServingError(f"{where}: the connection broke mid-answer ({type(cause or exc).__name__}) after "
                                   f"{tries} retries", kind="connection") from None  # fmt: skip
            except openai.APIStatusError as exc:
                code = exc.status_code
                if code in RETRYABLE_STATUS or code >= 500:
                    raise ServingError(f"{where}: the server answered {code} ({_message(exc)}) after {tries} "
                                       "retries", kind="status", status=code) from None  # fmt: skip
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
            content = choices[0].message.content
            if content is not None and not isinstance(content, str):
                raise ServingError(f"{where}: the completion's content is not text", kind="protocol")
            return content or ""
        raise AssertionError("unreachable")  # the loop returns or raises

    async def chat_all(self, conversations: Sequence[Any], *, max_tokens: int, temperature: float = 0.0) -> list[str]:
        """Replies to every conversation (a message list, or a plain string as one user message), in order."""
        return list(await asyncio.gather(*(self.chat(as_messages(c), max_tokens=max_tokens, temperature=temperature)
                                           for c in conversations)))  # fmt: skip

    def check(self) -> None:
        """One short request with the endpoint's retries (a server still starting is waited for): an unreachable
        URL or an unknown model stops here, before any row."""
        probe = ServedModel(self.endpoint, timeout=min(self.timeout, 30.0))
        asyncio.run(probe.chat([{"role": "user", "content": "ping"}], max_tokens=1))


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
        try:
            response = await self.inner.handle_async_request(request)
        except Exception:
            self.stats.failed_attempts += 1
            raise
        if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
            self.stats.failed_attempts += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> _CountingTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


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
