"""The resilient model call for one query: cache, rate limit, breaker, fallback, retries.

``Inferencer.answer(query)`` always returns an ``Outcome``: a response, or an
escalation with ``model_unavailable`` (every endpoint failed within the
deadline) or ``invalid_model_output`` (the answer failed validation twice). It
never raises for a model problem, so no query is lost to one.

Redis (the result cache, the shared rate limit, duplicate-call tracking) helps
but is not required: when Redis fails, the call goes ahead without it and the
failure is counted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from app.answers import ModelAnswer, parse_answer
from app.catalog import Endpoint, ModelCatalog, Source
from app.enrich import Context
from app.errors import DeadlinePassed, InvalidModelOutput, ModelError, ModelUnavailable
from app.guard import check_answer
from app.llm import Completion, LLMClient
from app.metrics import (
    BREAKER_STATE,
    CACHE,
    DUPLICATE_CALLS,
    MODEL_CALLS,
    MODEL_LATENCY,
    RATE_LIMIT_WAIT,
    REDIS_ERRORS,
    RETRIES,
)
from app.pipeline import escalate, response_outcome
from app.prompts import build_messages, response_format
from app.records import Outcome, Query
from app.resilience import (
    BREAKER_STATE_VALUE,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    RetryPolicy,
)
from app.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How many times the model is asked for a valid answer (SPEC: escalate after two).
ASKS = 2


def _breaker_changed(name: str, state: BreakerState) -> None:
    BREAKER_STATE.labels(endpoint=name).set(BREAKER_STATE_VALUE[state])
    logger.warning("circuit breaker of %s is now %s", name, state)


def breaker_factory(settings: Settings) -> Callable[[str], CircuitBreaker]:
    """New circuit breakers configured from ``settings``, reported as metrics."""

    def breaker(name: str) -> CircuitBreaker:
        BREAKER_STATE.labels(endpoint=name).set(0)
        return CircuitBreaker(
            name=name,
            consecutive_failures=settings.breaker_consecutive_failures,
            failure_rate=settings.breaker_failure_rate,
            cooldown=settings.breaker_cooldown,
            on_change=_breaker_changed,
        )

    return breaker


def endpoints_from(settings: Settings) -> tuple[Endpoint, ...]:
    """The settings' endpoints: the primary, and the fallback if one is configured."""
    breaker = breaker_factory(settings)
    key = settings.llm_api_key.get_secret_value()
    primary = Endpoint(
        name="primary",
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        version=settings.llm_model_version,
        api_key=key,
        breaker=breaker("primary"),
    )
    if not (settings.llm_fallback_base_url or settings.llm_fallback_model):
        return (primary,)
    fallback = Endpoint(
        name="fallback",
        base_url=settings.llm_fallback_base_url or settings.llm_base_url,
        model=settings.llm_fallback_model or settings.llm_model,
        version=settings.llm_fallback_model_version,
        api_key=key,
        breaker=breaker("fallback"),
        fallback=True,
    )
    return primary, fallback


def catalog_from(settings: Settings, *, source: Source | None = None) -> ModelCatalog:
    """The worker's catalog: the models table (``source``), else the settings' endpoints."""
    return ModelCatalog(
        defaults=endpoints_from(settings),
        breaker=breaker_factory(settings),
        source=source,
        api_key=settings.llm_api_key.get_secret_value(),
    )


def _named(endpoint: Endpoint) -> dict[str, str]:
    """The model and version an escalation names: the variant the query was given."""
    return {"model": endpoint.label or endpoint.model, "model_version": endpoint.version}


def validate_answer(content: str, *, allowed_link_domains: frozenset[str]) -> ModelAnswer:
    """The model's reply parsed against the schema, then checked as untrusted input."""
    return check_answer(parse_answer(content), allowed_link_domains=allowed_link_domains)


class Inferencer:
    """Answers queries through the model endpoints, as resiliently as configured."""

    def __init__(
        self,
        *,
        client: LLMClient,
        catalog: ModelCatalog,
        retry: RetryPolicy,
        deadline: float,
        limiter: Any = None,
        cache: Any = None,
        rng: random.Random | None = None,
        budget_tokens: int = 3000,
        validate: Callable[[str], ModelAnswer] = parse_answer,
    ) -> None:
        if deadline <= 0:
            raise ValueError(f"deadline must be above 0, got {deadline}")
        self.client = client
        self.catalog = catalog
        self.retry = retry
        self.deadline = deadline
        self.limiter = limiter
        self.cache = cache
        self._rng = rng or random.Random()
        self.budget_tokens = budget_tokens
        #: Model content to a checked answer; raises ``InvalidModelOutput`` (re-asked).
        self.validate = validate

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        client: LLMClient,
        limiter: Any = None,
        cache: Any = None,
        models: Source | None = None,
    ) -> Inferencer:
        return cls(
            client=client,
            catalog=catalog_from(settings, source=models),
            retry=RetryPolicy(
                max_attempts=settings.llm_max_attempts,
                base_delay=settings.llm_backoff_base,
                max_delay=max(settings.llm_backoff_max, settings.llm_backoff_base),
            ),
            deadline=settings.llm_deadline,
            limiter=limiter,
            cache=cache,
            budget_tokens=settings.prompt_budget_tokens,
            validate=partial(validate_answer, allowed_link_domains=settings.link_domains),
        )

    async def answer(self, query: Query, context: Context | None = None) -> Outcome:
        """The outcome for ``query``; model failures become escalations."""
        # Chosen once: a query keeps its endpoints through every retry, even when an
        # operator drains or removes its variant meanwhile.
        route = self.catalog.route(query.customer_id)
        if not route:
            logger.error("query %s: no model variant takes traffic", query.query_id)
            return escalate(query, "model_unavailable")
        messages = build_messages(query, context, budget_tokens=self.budget_tokens)
        deadline_at = time.monotonic() + self.deadline
        first_call = [True]
        for ask in range(1, ASKS + 1):
            try:
                answer, completion, endpoint = await self._ask(
                    query, route, messages, deadline_at, use_cache=ask == 1, first_call=first_call
                )
            except InvalidModelOutput as exc:
                logger.info("query %s: invalid model output (ask %d): %s", query.query_id, ask, exc)
                continue
            except ModelError as exc:
                logger.warning("query %s: model unavailable: %s", query.query_id, exc)
                return escalate(query, "model_unavailable", **_named(route[0]))
            return response_outcome(
                query,
                answer,
                model=endpoint.label or completion.model,
                model_version=endpoint.version,
                model_latency_ms=completion.latency_ms,
            )
        return escalate(query, "invalid_model_output", **_named(route[0]))

    async def _ask(
        self,
        query: Query,
        route: tuple[Endpoint, ...],
        messages: list[dict[str, str]],
        deadline_at: float,
        *,
        use_cache: bool,
        first_call: list[bool],
    ) -> tuple[ModelAnswer, Completion, Endpoint]:
        """One valid answer: the chosen endpoint with retries, then each fallback with retries.

        An endpoint whose breaker is open is skipped. When every endpoint that has
        attempts left is behind an open breaker, the call waits for the first one to
        half-open, if the deadline allows: a short outage delays queries (and the
        full window stops the stream reading) instead of escalating all of them.
        """
        fmt = response_format()
        error: ModelUnavailable = CircuitOpen("every model endpoint's circuit breaker is open")
        attempts = dict.fromkeys((e.name for e in route), 0)
        while True:
            endpoint = next(
                (
                    e
                    for e in route
                    if attempts[e.name] < self.retry.max_attempts and e.breaker.allow()
                ),
                None,
            )
            if endpoint is None:
                waiting = [
                    e.breaker.retry_in()
                    for e in route
                    if attempts[e.name] < self.retry.max_attempts
                ]
                if not waiting:
                    raise error  # every endpoint used up its attempts
                wait = max(min(waiting), 0.001)
                if time.monotonic() + wait >= deadline_at:
                    raise error
                await asyncio.sleep(wait)
                continue
            attempts[endpoint.name] += 1
            try:
                key = self._cache_key(endpoint, messages, fmt)
                cached = await self._cached(key, query, first_call) if use_cache else None
                if cached is not None:
                    hit = Completion(content=cached, model=endpoint.model, latency_ms=0.0)
                    return self.validate(cached), hit, endpoint
                completion = await self._call(endpoint, messages, fmt, deadline_at)
                answer = self.validate(completion.content)  # invalid: the caller re-asks
                if key is not None:
                    await self._redis("cache_put", self.cache.put(key, completion.content))
                return answer, completion, endpoint
            except ModelUnavailable as exc:
                error = exc
                remaining = deadline_at - time.monotonic()
                if remaining <= 0:
                    raise
                if attempts[endpoint.name] >= self.retry.max_attempts:
                    continue  # on to the fallback, if there is one with attempts left
                wait = self.retry.delay(
                    attempts[endpoint.name], retry_after=exc.retry_after, rng=self._rng
                )
                if wait >= remaining:
                    raise
                RETRIES.labels(endpoint=endpoint.name).inc()
                await asyncio.sleep(wait)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self.catalog.endpoints

    def _cache_key(
        self, endpoint: Endpoint, messages: list[dict[str, str]], fmt: dict[str, Any]
    ) -> str | None:
        if self.cache is None:
            return None
        body = self.client.request_body(
            messages, model=endpoint.model, response_format=fmt, params=endpoint.params
        )
        # Two versions may serve the same model name with different answers.
        model = f"{endpoint.model}@{endpoint.version}"
        params = {name: value for name, value in body.items() if name != "messages"}
        key: str = self.cache.key_for(model=model, messages=messages, params=params)
        return key

    async def _cached(self, key: str | None, query: Query, first_call: list[bool]) -> str | None:
        """The cached answer for ``key``; on a miss before the query's first call, that
        call is recorded in the same round trip, and counted if it repeats an earlier one."""
        if key is None:
            return None
        query_id = query.query_id if first_call[0] else None
        found = await self._redis("cache_get", self.cache.lookup(key, query_id=query_id))
        cached = None if found is None else found.content
        CACHE.labels(result="miss" if cached is None else "hit").inc()
        if query_id is not None and cached is None:
            first_call[0] = False
            if found is not None and found.first_call is False:
                DUPLICATE_CALLS.inc()
        return cached

    async def _call(
        self,
        endpoint: Endpoint,
        messages: list[dict[str, str]],
        fmt: dict[str, Any],
        deadline_at: float,
    ) -> Completion:
        if self.limiter is not None and self.limiter.enabled:
            tokens = sum(len(m["content"]) for m in messages) // 4 + endpoint.params.get(
                "max_tokens", self.client.settings.llm_max_tokens
            )
            waited = await self._redis(
                "ratelimit", self.limiter.acquire(tokens=tokens, deadline=deadline_at)
            )
            RATE_LIMIT_WAIT.inc(waited or 0.0)
        try:
            completion = await self.client.complete(
                messages,
                model=endpoint.model,
                response_format=fmt,
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                params=endpoint.params,
                deadline=deadline_at,
            )
        except DeadlinePassed:
            raise  # nothing was sent: the endpoint's breaker learns nothing
        except ModelUnavailable as exc:
            if exc.status == 429:
                endpoint.breaker.record_ignored()  # up, but over its limit: Retry-After
            else:
                endpoint.breaker.record_failure()
            MODEL_CALLS.labels(endpoint=endpoint.name, result="unavailable").inc()
            raise
        except ModelError:
            # The server answered (4xx, or a body that is not JSON): it is up.
            endpoint.breaker.record_success()
            MODEL_CALLS.labels(endpoint=endpoint.name, result="error").inc()
            raise
        endpoint.breaker.record_success()
        MODEL_CALLS.labels(endpoint=endpoint.name, result="ok").inc()
        MODEL_LATENCY.labels(endpoint=endpoint.name, model=endpoint.model).observe(
            completion.latency_ms / 1000
        )
        return completion

    async def _redis(self, op: str, call: Awaitable[T]) -> T | None:
        """Run a Redis operation; on a Redis failure go on without it."""
        try:
            return await call
        except ModelUnavailable:
            raise  # the rate limiter's deadline: a real answer for the caller
        except Exception as exc:  # redis errors of any kind: fail open, counted
            REDIS_ERRORS.labels(op=op).inc()
            logger.warning("redis %s failed, going on without it: %s", op, exc)
            return None
