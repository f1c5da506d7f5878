"""Model answers cached in Redis, and a record of which queries already cost an LLM call.

A query is processed again after a worker crash or a rebalance (Kafka delivers it at
least once). :class:`ResultCache` keeps the model's answer under a hash of everything
that determines it, so the replay reads the answer instead of paying for the same
call twice, and records which query ids already cost a call, which is how duplicate
calls are counted. :meth:`ResultCache.lookup` does both in one round trip (a Lua
script): the answer if there is one, else the call is recorded.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import redis.asyncio


# KEYS: the result key, then the call-record key when a call is to be recorded. ARGV: the
# ttl, s. Returns {1, answer} on a hit (nothing recorded), {0} on a miss without a call
# record, {0, 1} on a miss whose call is the query's first, {0, 0} when one was made before.
_LOOKUP_LUA = """
local cached = redis.call('GET', KEYS[1])
if cached then return {1, cached} end
if #KEYS < 2 then return {0} end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return {0, 1} end
return {0, 0}
"""


class Lookup(NamedTuple):
    """What :meth:`ResultCache.lookup` found."""

    #: The cached answer, or None.
    content: str | None
    #: On a miss with a query id: whether this is the query's first call (False: a call
    #: for it was made before, by this or another worker). None otherwise.
    first_call: bool | None


class ResultCache:
    """Answers by request hash, and LLM calls by query id, both expiring after ``ttl_seconds``.

    ``ttl_seconds=0`` disables both: :meth:`lookup` finds nothing and reports every call
    as the first, and :meth:`put` stores nothing.
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
        self._lookup = redis.register_script(_LOOKUP_LUA)
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

    async def lookup(self, key: str, *, query_id: str | None = None) -> Lookup:
        """The cached answer for ``key`` (from :meth:`key_for`); on a miss, when a
        ``query_id`` is given, the call about to be made for it is recorded, atomically
        and in the same round trip."""
        redis_key = self._result_key(key)
        if query_id is not None and (not isinstance(query_id, str) or not query_id):
            raise ValueError(f"query_id must be a non-empty string, got {query_id!r}")
        if not self.enabled:
            return Lookup(None, None if query_id is None else True)
        keys = [redis_key] if query_id is None else [redis_key, f"{self.prefix}called:{query_id}"]
        found = await self._lookup(keys=keys, args=[self.ttl_seconds])
        if found[0] == 1:
            value = found[1]
            return Lookup(value.decode("utf-8") if isinstance(value, bytes) else str(value), None)
        return Lookup(None, bool(found[1]) if len(found) > 1 else None)

    async def put(self, key: str, content: str) -> None:
        """Store ``content`` under ``key`` for ``ttl_seconds``."""
        redis_key = self._result_key(key)
        if not isinstance(content, str):
            raise ValueError(f"content must be a string, got {type(content).__name__}")
        if not self.enabled:
            return
        await self._redis.set(redis_key, content.encode("utf-8"), ex=self.ttl_seconds)
