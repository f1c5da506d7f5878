"""Model answers cached in Redis, and a record of which queries already cost an LLM call.

A query is processed again after a worker crash or a rebalance (Kafka delivers it at
least once). :class:`ResultCache` keeps the model's answer under a hash of everything
that determines it, so the replay reads the answer instead of paying for the same
call twice, and :meth:`ResultCache.mark_called` tells whether a call for a query id
had already been made, which is how duplicate calls are counted.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio


class ResultCache:
    """Answers by request hash, and LLM calls by query id, both expiring after ``ttl_seconds``.

    ``ttl_seconds=0`` disables both: :meth:`get` finds nothing, :meth:`put` stores
    nothing and :meth:`mark_called` reports every call as the first.
    """

    def __init__(
        self,
        *,
        redis: redis.asyncio.Redis,
        ttl_seconds: int = 86_400,
        prefix: str = "flowdesk:",
    ) -> None:
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
            raise ValueError(f"ttl_seconds must be an integer, got {ttl_seconds!r}")
        if ttl_seconds < 0:
            raise ValueError(f"ttl_seconds must be >= 0 (0 disables the cache), got {ttl_seconds}")
        if not isinstance(prefix, str):
            raise ValueError(f"prefix must be a string, got {prefix!r}")
        self._redis = redis
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    @staticmethod
    def key_for(*, model: str, messages: list[dict[str, str]], params: dict[str, object]) -> str:
        """The SHA-256 hex digest of the request: same inputs, same key, in any process.

        ``params`` holds every setting that changes the answer (temperature,
        max_tokens, response_format...); key order does not matter.
        """
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        try:
            canonical = json.dumps(
                {"model": model, "messages": messages, "params": params},
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                # NaN has no JSON form that every process would agree on.
                allow_nan=False,
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"messages and params must be plain JSON values: {exc}") from exc
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def _result_key(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        return f"{self.prefix}result:{key}"

    async def get(self, key: str) -> str | None:
        """The cached content for ``key`` (from :meth:`key_for`), or None."""
        redis_key = self._result_key(key)
        if not self.enabled:
            return None
        value = await self._redis.get(redis_key)
        if value is None:
            return None
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    async def put(self, key: str, content: str) -> None:
        """Store ``content`` under ``key`` for ``ttl_seconds``."""
        redis_key = self._result_key(key)
        if not isinstance(content, str):
            raise ValueError(f"content must be a string, got {type(content).__name__}")
        if not self.enabled:
            return
        await self._redis.set(redis_key, content.encode("utf-8"), ex=self.ttl_seconds)

    async def mark_called(self, query_id: str) -> bool:
        """Record an LLM call for ``query_id``; False when one was already recorded.

        A False answer means this call duplicates one made before (by this or another
        worker) within ``ttl_seconds``.
        """
        if not isinstance(query_id, str) or not query_id:
            raise ValueError(f"query_id must be a non-empty string, got {query_id!r}")
        if not self.enabled:
            return True
        created = await self._redis.set(
            f"{self.prefix}called:{query_id}", b"1", nx=True, ex=self.ttl_seconds
        )
        return bool(created)
