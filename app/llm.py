"""The model-server client: OpenAI Chat Completions over one aiohttp session.

One ``LLMClient`` per worker process, started and stopped with the app. It makes
exactly one HTTP request per call and turns every failure into a ``ModelError``
subclass, so the stage above it can decide what to retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from mode import Service

from app.errors import DeadlinePassed, InvalidModelOutput, ModelError, ModelUnavailable
from app.metrics import MODEL_IN_FLIGHT
from app.settings import Settings


@dataclass(frozen=True, kw_only=True)
class Completion:
    """One successful chat completion."""

    content: str
    model: str
    latency_ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the caller's own backoff applies


class LLMClient(Service):
    """Chat completions against ``FLOWDESK_LLM_BASE_URL``.

    At most ``settings.llm_capacity`` requests are open at once, whatever server each
    goes to; a call beyond that waits for one to finish before it sends.
    """

    def __init__(self, *, settings: Settings, connection_limit: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if connection_limit < 1:
            raise ValueError(f"connection_limit must be at least 1, got {connection_limit}")
        self.settings = settings
        self.connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None
        self._requests = asyncio.Semaphore(settings.llm_capacity)
        self._open = 0

    @property
    def open_requests(self) -> int:
        """Requests sent and not yet answered (or failed)."""
        return self._open

    async def on_start(self) -> None:
        headers = {"Content-Type": "application/json"}
        key = self.settings.llm_api_key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.settings.llm_timeout),
            connector=aiohttp.TCPConnector(limit=self.connection_limit),
        )

    async def on_stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("LLMClient is not started")
        return self._session

    def request_body(
        self,
        messages: list[dict[str, str]],
        *,
        model: str | None = None,
        response_format: dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The chat-completions request body (also what the result cache keys on).

        ``params`` (a model variant's temperature, max_tokens...) override the settings.
        """
        body: dict[str, Any] = {
            "model": model or self.settings.llm_model,
            "messages": messages,
            "max_tokens": self.settings.llm_max_tokens,
            "temperature": self.settings.llm_temperature,
        }
        if params:
            body.update(params)
        if response_format is not None:
            body["response_format"] = response_format
        return body

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        model: str | None = None,
        response_format: dict[str, Any] | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        params: Mapping[str, Any] | None = None,
        deadline: float | None = None,
    ) -> Completion:
        """One chat completion; raises ``ModelUnavailable`` or ``InvalidModelOutput``.

        ``base_url`` and ``api_key`` default to the primary endpoint's settings; a fallback
        endpoint passes its own. The timeout is ``FLOWDESK_LLM_TIMEOUT``, or what is left of
        ``deadline`` (``time.monotonic()``) once a request place is free; with nothing
        left, ``DeadlinePassed`` is raised without sending.
        """
        body = self.request_body(
            messages, model=model, response_format=response_format, params=params
        )
        url = f"{base_url or self.settings.llm_base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        timeout = self.settings.llm_timeout
        async with self._requests:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeadlinePassed(
                        "the query's deadline passed while it waited for a free model "
                        "request (FLOWDESK_LLM_CAPACITY)"
                    )
                timeout = min(timeout, left)
            limit = aiohttp.ClientTimeout(total=timeout)
            self._open += 1
            MODEL_IN_FLIGHT.set(self._open)
            started = time.perf_counter()
            try:
                payload = await self._post(url, body, headers, limit)
            finally:
                latency_ms = (time.perf_counter() - started) * 1000
                self._open -= 1
                MODEL_IN_FLIGHT.set(self._open)
        try:
            content = payload["choices"][0]["message"]["content"]
            usage = payload.get("usage") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise InvalidModelOutput("model server reply has no choices[0].message") from exc
        if not isinstance(content, str):
            raise InvalidModelOutput("model reply content is not a string")
        return Completion(
            content=content,
            model=str(payload.get("model") or body["model"]),
            latency_ms=latency_ms,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    async def _post(
        self,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str] | None,
        limit: aiohttp.ClientTimeout,
    ) -> Any:
        """The decoded JSON reply to one request; failures as ``ModelError`` subclasses."""
        try:
            async with self.session.post(url, json=body, headers=headers, timeout=limit) as resp:
                if resp.status == 429 or resp.status >= 500:
                    raise ModelUnavailable(
                        f"model server answered HTTP {resp.status}",
                        status=resp.status,
                        retry_after=_retry_after(resp.headers),
                    )
                if resp.status != 200:
                    detail = (await resp.text())[:200]
                    raise ModelError(f"model server answered HTTP {resp.status}: {detail}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ModelUnavailable(f"model request failed: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # body is not JSON
            raise InvalidModelOutput(f"model server sent a body that is not JSON: {exc}") from exc
