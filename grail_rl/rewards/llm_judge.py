"""The ``llm_judge`` reward: a model behind an OpenAI-compatible server rates each completion against a rubric.

The rubric is a ``{{ field }}`` template (:mod:`grail_rl.serving.templates`): ``{{ prompt }}`` is the viewer's
prompt (its user message), ``{{ completion }}`` the completion's text, and any other placeholder a column of the
row (``gold_title``, ``slate_titles``, ... or an optional row field such as ``current_video_title``, which the
data pipeline then carries). The judge's reply is searched with ``score_pattern`` (the last match counts) and
the score mapped from ``[score_min, score_max]`` onto ``[0, 1]``; a reply without a score, or with one outside
the range or not finite, abstains (None).

Requests go through grail-rl's one serving client (:mod:`grail_rl.serving.client`): async, at most
``concurrency`` at a time, retried with backoff. A completion the server fails on after its retries abstains,
so an outage mid-run costs signal, not the run (a warning names it); the server is checked once when training
sets the reward up, so a wrong URL or model name stops the run before the first step. Scores are cached by a
hash of the rendered rubric, which holds the prompt, the completion and the rubric (GRPO's groups often repeat
a completion; evaluation rescoring repeats them all), up to ``cache_size`` entries, least recently used first
out. Server failures are never cached, nor (with a temperature above 0) replies without a score.

Logged each batch beside every reward's abstain rate and latency (``rewards/llm_judge/seconds``):
``cache_hit_rate``, ``requests``, ``request_seconds`` (mean latency of this batch's requests),
``failed_requests``, ``unscored_rate`` (replies without a usable score) and ``failed_attempts`` (retried
attempts). The API key comes from ``$GRAIL_RL_API_KEY`` (or ``$OPENAI_API_KEY``) only: a recipe cannot hold one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator, model_validator

from grail_rl.plugins.base import PluginConfig, RewardFunction
from grail_rl.rewards.columns import completion_texts

logger = logging.getLogger(__name__)

DEFAULT_RUBRIC = """\
You are checking a simulation of a YouTube viewer. Below is what the simulator knew about the viewer and the \
videos offered next, then the simulator's answer: its reasoning and the option it predicts the viewer clicked.

{{ prompt }}

The simulator's answer:
{{ completion }}

Rate how plausible this answer is for this particular viewer: does the reasoning use what is known about \
them, and would a person like them choose that option? 0 means implausible or no clear choice, 10 means \
exactly what this viewer would do. Answer with one short sentence, then a last line "Score: N" with N from 0 to 10.
"""
FROM_BATCH = ("prompt", "completion")  # placeholders filled from TRL's prompts and completions, not a column


class LlmJudgeConfig(PluginConfig):
    endpoint: str = Field(description="The judge's OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    model: str = Field(min_length=1, description="The model name the server knows.")
    rubric: str = Field(DEFAULT_RUBRIC, min_length=1, max_length=100_000,
                        description="The judge's prompt, a template: {{ prompt }}, {{ completion }} and row columns "
                        "(e.g. {{ gold_title }}, {{ current_video_title }}) are filled in.")  # fmt: skip
    score_pattern: str = Field(r"(?i)score\s*[:=]\s*(-?\d+(?:\.\d+)?)",
                               description="A regular expression with one group capturing the number; the last "
                               "match in the reply counts.")  # fmt: skip
    score_min: float = Field(0.0, description="The rubric's lowest score (maps to reward 0).")
    score_max: float = Field(10.0, description="The rubric's highest score (maps to reward 1).")
    max_tokens: int = Field(256, ge=1, le=32_768, description="The judge's reply limit, in tokens.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="The judge's sampling temperature.")
    concurrency: int = Field(8, ge=1, le=256, description="Requests in flight at once.")
    timeout: float = Field(60.0, gt=0.0, le=3600.0, description="Seconds per request before it is retried.")
    max_retries: int = Field(3, ge=0, le=20, description="Retries per request (refused connections, timeouts, 429, 5xx).")
    outage_pause: float = Field(60.0, ge=0.0, le=86_400.0,
                                description="Seconds the judge stops asking (its rows abstain at once) after "
                                "`concurrency` requests in a row failed; then it tries again.")  # fmt: skip
    cache_size: int = Field(100_000, ge=0, le=10_000_000, description="Scores kept, by hash of the rendered rubric; 0 turns the cache off.")

    @model_validator(mode="before")
    @classmethod
    def _no_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in ("api_key", "key", "token")):
            raise ValueError("a recipe never holds an API key (the recipe is copied into the run folder): set "
                             "$GRAIL_RL_API_KEY (or $OPENAI_API_KEY) in the environment instead")  # fmt: skip
        return data

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        from grail_rl.errors import GrailError
        from grail_rl.serving.client import check_url

        try:
            return check_url(value, "endpoint")
        except GrailError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("score_pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if compiled.groups != 1:
            raise ValueError(f"needs exactly one group capturing the score, has {compiled.groups}")
        if compiled.search("") is not None:
            raise ValueError("matches an empty reply: it would read a score where there is none")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give the model name the server knows")
        return value

    @field_validator("rubric")
    @classmethod
    def _rubric(cls, value: str) -> str:
        import difflib

        from grail_rl.data.dataset import OUTPUT_COLUMNS
        from grail_rl.data.row_fields import ROW_FIELDS
        from grail_rl.serving.templates import malformed_placeholders, template_fields

        bad = malformed_placeholders(value)
        if bad:
            raise ValueError(f"{bad[0]} is not a placeholder (one word: {{{{ completion }}}}, {{{{ gold_title }}}}); it "
                             "would be sent as it is")  # fmt: skip
        fields = template_fields(value)
        known = [*FROM_BATCH, *OUTPUT_COLUMNS, *ROW_FIELDS]
        for name in fields:
            if name not in known:
                near = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {{{{ {near[0]} }}}}? " if near else ""
                raise ValueError(f"names {{{{ {name} }}}}, which no row has; {hint}fields: {', '.join(known)}")
        if "completion" not in fields:
            raise ValueError("has no {{ completion }}: every completion of a prompt would get the same score")
        return value

    @model_validator(mode="after")
    def _range(self) -> LlmJudgeConfig:
        if not self.score_max > self.score_min:
            raise ValueError(f"score_max ({self.score_max}) must be above score_min ({self.score_min})")
        if not math.isfinite(self.score_max - self.score_min):
            raise ValueError("score_max - score_min is too large to compute with; use the rubric's own scale")
        return self


class LlmJudgeReward(RewardFunction):
    """A served model rates each completion against a rubric (0..1); abstains when the server fails."""

    name = "llm_judge"
    Config = LlmJudgeConfig

    def __init__(self, config: LlmJudgeConfig | None = None) -> None:
        super().__init__(config)
        self.config: LlmJudgeConfig
        self._pattern = re.compile(self.config.score_pattern)
        self._cache: OrderedDict[str, float | None] = OrderedDict()
        self._served: Any = None
        self._failed_in_a_row = 0
        self._paused_until = 0.0  # time.monotonic() before which the judge is not asked (an outage)
        self.totals = {"completions": 0, "cache_hits": 0, "requests": 0, "failed_requests": 0, "unscored": 0}

    @classmethod
    def fields_read(cls, config: Any = None) -> tuple[str, ...]:
        """The rubric's placeholders that are optional row fields (or unknown: the recipe check names them)."""
        from grail_rl.data.dataset import OUTPUT_COLUMNS
        from grail_rl.serving.templates import template_fields

        rubric = getattr(config, "rubric", None) or DEFAULT_RUBRIC
        return tuple(f for f in template_fields(rubric) if f not in FROM_BATCH and f not in OUTPUT_COLUMNS)

    def served(self) -> Any:
        if self._served is None:
            from grail_rl.serving.client import Endpoint, ServedModel

            c = self.config
            self._served = ServedModel(Endpoint(c.endpoint, c.model, timeout=c.timeout, max_retries=c.max_retries,
                                                concurrency=c.concurrency))  # fmt: skip
        return self._served

    def setup(self, context: Any) -> None:
        """A training run checks the server once, before the first step: a wrong URL or model stops it there."""
        self.check_server()

    def check_server(self) -> None:
        """One short request (``grail-rl check-rewards`` makes it too)."""
        self.served().check()

    def score(self, reply: str) -> float | None:
        """The reply's score mapped onto [0, 1]; None when it has none, or one outside the rubric's range."""
        matches = [m for m in self._pattern.findall(reply) if m.strip()]
        if not matches:
            return None
        try:
            value = float(matches[-1])
        except ValueError:
            return None
        low, high = self.config.score_min, self.config.score_max
        if not math.isfinite(value) or not low <= value <= high:
            return None
        return (value - low) / (high - low)

    def rubric_for(self, prompt: Any, completion: str, row: dict[str, Any]) -> str:
        from grail_rl.grail.texts import prompt_context
        from grail_rl.serving.templates import render_template

        return render_template(self.config.rubric, {**row, "prompt": prompt_context(prompt), "completion": completion})

    async def __call__(self, completions: Sequence[Any], prompts: Sequence[Any] | None = None, **columns: Any) -> list[float | None]:
        from grail_rl.serving.client import ServingError
        from grail_rl.serving.templates import template_fields

        log_metric = columns.get("log_metric")
        n = len(completions)
        texts = completion_texts(completions)
        fields = [f for f in template_fields(self.config.rubric) if f not in FROM_BATCH]
        missing = [f for f in fields if not isinstance(columns.get(f), Sequence) or len(columns[f]) != n]
        if missing:
            raise ValueError(f"reward 'llm_judge': the rubric names '{missing[0]}', which the batch does not have "
                             f"one value per completion for")  # fmt: skip
        if "prompt" in template_fields(self.config.rubric) and (prompts is None or len(prompts) != n):
            raise ValueError("reward 'llm_judge': the rubric names {{ prompt }} but no prompts came with the batch")
        rubrics = [self.rubric_for(prompts[i] if prompts is not None else "", texts[i],
                                   {f: columns[f][i] for f in fields}) for i in range(n)]  # fmt: skip
        keys = [hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest() for text in rubrics]

        scores: dict[str, float | None] = {}
        asked: dict[str, str] = {}
        repeats: list[str] = []
        hits = 0
        for key, text in zip(keys, rubrics, strict=True):
            if key in self._cache:
                self._cache.move_to_end(key)
                scores[key] = self._cache[key]
                hits += 1
            elif key in asked:
                repeats.append(key)  # the same rubric twice in one batch: asked once
            else:
                asked[key] = text

        served = self.served()
        attempts_before, seconds_before, ok_before = served.stats.failed_attempts, served.stats.seconds, \
            served.stats.calls - served.stats.failures  # fmt: skip
        failures: list[str] = []
        skipped = 0

        gate = asyncio.Semaphore(self.config.concurrency)

        async def ask(key: str, text: str) -> None:
            async with gate:  # the pause is checked when a request's turn comes, not when it was queued
                await ask_now(key, text)

        async def ask_now(key: str, text: str) -> None:
            nonlocal skipped
            if time.monotonic() < self._paused_until:  # the server is down: abstain at once, do not wait on it
                skipped += 1
                return
            try:
                reply = await served.chat([{"role": "user", "content": text}], max_tokens=self.config.max_tokens,
                                          temperature=self.config.temperature)  # fmt: skip
            except ServingError as exc:
                failures.append(str(exc))
                if exc.kind != "refused":
                    self._failed_in_a_row += 1
                    if self._failed_in_a_row >= self.config.concurrency and self.config.outage_pause:
                        self._paused_until = time.monotonic() + self.config.outage_pause
                return
            self._failed_in_a_row = 0
            scores[key] = self.score(reply)
            # A reply without a score is kept only when asking again would give the same reply (temperature 0).
            if self.config.cache_size and (scores[key] is not None or self.config.temperature == 0):
                self._cache[key] = scores[key]
                if len(self._cache) > self.config.cache_size:
                    self._cache.popitem(last=False)

        paused = time.monotonic() < self._paused_until
        await asyncio.gather(*(ask(key, text) for key, text in asked.items()))
        values = [scores.get(key) for key in keys]
        hits += sum(1 for key in repeats if key in scores)  # a repeat is a hit only where the first asking got an answer
        unscored = sum(1 for key in keys if key in scores and scores[key] is None)
        failed_rows = sum(1 for key in keys if key not in scores)
        if failures or skipped:
            why = f"the judge failed {len(failures)} requests after their retries (first: {failures[0]})" if failures \
                else "the judge is paused after an outage"  # fmt: skip
            if skipped:
                why += f"; {skipped} not asked: paused for {self.config.outage_pause:g} s after {self.config.concurrency} " \
                       "failures in a row"  # fmt: skip
            if failures or not paused:  # once per outage, not once per batch while it lasts
                logger.warning("reward 'llm_judge': %d of %d completions abstain: %s", failed_rows, n, why)
        ok_calls = served.stats.calls - served.stats.failures - ok_before
        self.totals["completions"] += n
        self.totals["cache_hits"] += hits
        self.totals["requests"] += len(asked) - skipped
        self.totals["failed_requests"] += len(failures)
        self.totals["unscored"] += unscored
        if callable(log_metric) and n:
            prefix = f"rewards/{self.name}"
            log_metric(f"{prefix}/cache_hit_rate", hits / n)
            log_metric(f"{prefix}/requests", float(len(asked) - skipped))  # sent to the server
            log_metric(f"{prefix}/failed_requests", float(len(failures)))
            log_metric(f"{prefix}/failed_attempts", float(served.stats.failed_attempts - attempts_before))
            log_metric(f"{prefix}/unscored_rate", unscored / n)
            log_metric(f"{prefix}/skipped", float(skipped))
            if ok_calls:  # the time the server took, queueing behind the concurrency limit left out
                log_metric(f"{prefix}/request_seconds", (served.stats.seconds - seconds_before) / ok_calls)
        return values
