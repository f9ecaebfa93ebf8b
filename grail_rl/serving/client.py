"""The one OpenAI-compatible client grail-rl uses (served-model evaluation now; generation and judges next).

Built on the ``openai`` package's async client (the ``serve`` extra), which retries refused connections,
timeouts, 408/409/429 and 5xx answers with exponential backoff and honours ``Retry-After``. Concurrency is
bounded by a semaphore. The API key comes only from the environment (``GRAIL_RL_API_KEY``, else
``OPENAI_API_KEY``; a local server needs none) and is never written anywhere. Failures a user must act on (an
unreachable URL after the retries, a model the server does not have, an answer that is not the protocol's)
become one :class:`ServingError` line naming the URL and the model.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grail_rl.errors import GrailError

KEY_ENVS = ("GRAIL_RL_API_KEY", "OPENAI_API_KEY")


class ServingError(GrailError):
    """The server could not be used: unreachable, no such model, or an answer that is not the protocol's."""


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


def api_key() -> str:
    """The key from the environment; a placeholder for local servers, which ignore it."""
    return next((os.environ[name] for name in KEY_ENVS if os.environ.get(name)), "unused")


class ServedModel:
    """Chat completions from one endpoint, at most ``endpoint.concurrency`` at a time."""

    def __init__(self, endpoint: Endpoint, *, max_retries: int | None = None, timeout: float | None = None) -> None:
        try:
            from openai import AsyncOpenAI
        except ImportError:
            raise ServingError("talking to a served model needs the openai package: pip install 'grail-rl[serve]'") from None
        self.endpoint = endpoint
        self.client = AsyncOpenAI(
            base_url=endpoint.base_url, api_key=api_key(),
            timeout=endpoint.timeout if timeout is None else timeout,
            max_retries=endpoint.max_retries if max_retries is None else max_retries,
        )  # fmt: skip
        self._semaphore: asyncio.Semaphore | None = None

    async def chat(self, messages: Sequence[dict[str, Any]], *, max_tokens: int, temperature: float = 0.0) -> str:
        """The assistant's reply to ``messages`` (one completion)."""
        import openai

        if self._semaphore is None:  # bound to the running loop on first use
            self._semaphore = asyncio.Semaphore(self.endpoint.concurrency)
        async with self._semaphore:
            try:
                response = await self.client.chat.completions.create(
                    model=self.endpoint.model, messages=list(messages), max_tokens=max_tokens, temperature=temperature
                )
            except openai.APIConnectionError as exc:  # refused, unreachable or timed out, after the retries
                raise ServingError(
                    f"cannot reach {self.endpoint.base_url} ({type(exc).__name__} after {self.client.max_retries} "
                    "retries); is the server running, and is the URL right (e.g. http://127.0.0.1:8000/v1)?"
                ) from None
            except (openai.NotFoundError, openai.BadRequestError) as exc:
                raise ServingError(f"{self.endpoint.describe()}: the server refused it ({exc.status_code}: "
                                   f"{_message(exc)}); check the model name") from None  # fmt: skip
            except openai.APIStatusError as exc:
                raise ServingError(f"{self.endpoint.describe()}: the server answered {exc.status_code} "
                                   f"({_message(exc)}) after {self.client.max_retries} retries") from None  # fmt: skip
            except openai.APIResponseValidationError as exc:
                raise ServingError(f"{self.endpoint.describe()}: the answer is not an OpenAI chat completion ({exc})") from None
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise ServingError(f"{self.endpoint.describe()}: the answer holds no completion")
        return choices[0].message.content or ""

    async def chat_all(self, conversations: Sequence[Any], *, max_tokens: int, temperature: float = 0.0) -> list[str]:
        """Replies to every conversation (a message list, or a plain string as one user message), in order."""
        def messages(item: Any) -> list[dict[str, Any]]:
            return [{"role": "user", "content": item}] if isinstance(item, str) else list(item)

        return list(await asyncio.gather(*(self.chat(messages(c), max_tokens=max_tokens, temperature=temperature)
                                           for c in conversations)))  # fmt: skip

    def check(self) -> None:
        """One short request with few retries: an unreachable URL or an unknown model stops here, at once."""
        probe = ServedModel(self.endpoint, max_retries=1, timeout=min(self.endpoint.timeout, 30.0))
        asyncio.run(probe.chat([{"role": "user", "content": "ping"}], max_tokens=1))


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        detail = body.get("detail") or (error.get("message") if isinstance(error, dict) else error)
        if detail:
            return str(detail)[:200]
    return str(getattr(exc, "message", exc))[:200]
