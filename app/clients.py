"""The long-lived clients of a worker process, started and stopped with the app.

One HTTP session to the model servers and one Redis pool per process; the rate
limiter, the result cache and the inferencer are built on them.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from mode import Service

from app.cache import ResultCache
from app.inference import Inferencer
from app.llm import LLMClient
from app.main import app
from app.ratelimit import RedisRateLimiter
from app.settings import get_settings
from tables.models import models


class RedisPool(Service):
    """The process's Redis connection pool (connections are made on first use)."""

    def __init__(self, *, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Short timeouts: Redis is an optimisation here, and a dead Redis must not
        # hold up a query for long before the pipeline goes on without it.
        self.client = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    async def on_stop(self) -> None:
        await self.client.aclose()


settings = get_settings()
# A connection slot for every request the window may have in flight, and a few more
# for retries whose previous connection is still closing.
llm_client = LLMClient(settings=settings, connection_limit=settings.llm_capacity + 8)
redis_pool = RedisPool(url=settings.redis_url)
app.add_dependency(llm_client)
app.add_dependency(redis_pool)

rate_limiter = RedisRateLimiter(
    redis=redis_pool.client,
    requests_per_minute=settings.llm_rpm,
    tokens_per_minute=settings.llm_tpm,
)
result_cache = ResultCache(redis=redis_pool.client, ttl_seconds=settings.cache_ttl)
inferencer = Inferencer.from_settings(
    settings, client=llm_client, limiter=rate_limiter, cache=result_cache, models=models.items
)
