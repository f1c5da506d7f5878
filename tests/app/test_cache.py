"""The result cache and the duplicate-call record against a real redis-server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis.asyncio
from hypothesis import given
from hypothesis import strategies as st

from app.cache import Lookup, ResultCache

REPO_ROOT = Path(__file__).resolve().parents[2]

MODEL = "flowdesk-sim"
MESSAGES = [
    {"role": "system", "content": "You route customer messages."},
    {"role": "user", "content": "I want to return order ORD-123456"},
]
PARAMS: dict[str, object] = {
    "temperature": 0.0,
    "max_tokens": 256,
    "response_format": {"type": "json_object"},
}


@pytest.fixture
def prefix() -> str:
    """A namespace of its own for each test."""
    return f"test:cache:{uuid.uuid4().hex}:"


def test_key_for_is_a_stable_sha256() -> None:
    key = ResultCache.key_for(model=MODEL, messages=MESSAGES, params=PARAMS)
    assert len(key) == 64 and int(key, 16) >= 0
    copies = ResultCache.key_for(
        model=MODEL,
        messages=[dict(message) for message in MESSAGES],
        params=dict(reversed(list(PARAMS.items()))),
    )
    assert copies == key


def test_key_for_is_the_same_in_another_process() -> None:
    code = (
        "import sys, json\n"
        "from app.cache import ResultCache\n"
        "args = json.loads(sys.argv[1])\n"
        "print(ResultCache.key_for(**args))\n"
    )
    args = json.dumps({"model": MODEL, "messages": MESSAGES, "params": PARAMS})
    # A fresh interpreter has another hash seed: the key must not depend on it.
    out = subprocess.run(
        [sys.executable, "-c", code, args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert out.stdout.strip() == ResultCache.key_for(model=MODEL, messages=MESSAGES, params=PARAMS)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "another-model"},
        {"messages": [MESSAGES[0], {"role": "user", "content": "Where is ORD-123456?"}]},
        {"messages": [{"role": "assistant", "content": MESSAGES[0]["content"]}, MESSAGES[1]]},
        {"messages": MESSAGES[:1]},
        {"params": {**PARAMS, "temperature": 0.7}},
        {"params": {**PARAMS, "max_tokens": 512}},
        {"params": {**PARAMS, "response_format": {"type": "text"}}},
        {"params": {k: v for k, v in PARAMS.items() if k != "max_tokens"}},
    ],
)
def test_key_for_changes_with_each_input(change: dict[str, object]) -> None:
    base: dict[str, object] = {"model": MODEL, "messages": MESSAGES, "params": PARAMS}
    assert ResultCache.key_for(**{**base, **change}) != ResultCache.key_for(**base)  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(params=st.dictionaries(st.text(), json_values, max_size=5))
def test_key_for_ignores_the_order_of_params(params: dict[str, object]) -> None:
    shuffled = dict(reversed(list(params.items())))
    assert ResultCache.key_for(model=MODEL, messages=MESSAGES, params=shuffled) == (
        ResultCache.key_for(model=MODEL, messages=MESSAGES, params=params)
    )


def test_key_for_refuses_what_json_cannot_say() -> None:
    with pytest.raises(ValueError, match="JSON"):
        ResultCache.key_for(model=MODEL, messages=MESSAGES, params={"temperature": float("nan")})
    with pytest.raises(ValueError, match="JSON"):
        ResultCache.key_for(model=MODEL, messages=MESSAGES, params={"stop": {"a", "b"}})
    with pytest.raises(ValueError, match="model"):
        ResultCache.key_for(model="", messages=MESSAGES, params=PARAMS)


async def test_put_then_lookup_round_trip(redis_client: redis.asyncio.Redis, prefix: str) -> None:
    cache = ResultCache(redis=redis_client, prefix=prefix)
    key = ResultCache.key_for(model=MODEL, messages=MESSAGES, params=PARAMS)
    assert await cache.lookup(key) == Lookup(None, None)
    content = '{"intent": "return", "reply": "Sure — here is your label ✓"}'
    await cache.put(key, content)
    assert await cache.lookup(key) == Lookup(content, None)
    # Another instance (another worker) reads the same entry.
    assert (await ResultCache(redis=redis_client, prefix=prefix).lookup(key)).content == content
    assert 86_000 < await redis_client.ttl(f"{prefix}result:{key}") <= 86_400


async def test_entries_expire_after_the_ttl(redis_client: redis.asyncio.Redis, prefix: str) -> None:
    cache = ResultCache(redis=redis_client, ttl_seconds=1, prefix=prefix)
    assert await cache.lookup("k", query_id="q-1") == Lookup(None, True)
    await cache.put("k", "answer")
    assert await cache.lookup("k") == Lookup("answer", None)
    await asyncio.sleep(1.5)
    assert await cache.lookup("k") == Lookup(None, None)
    # The call record expires too: a much later replay counts as a first call.
    assert await cache.lookup("k", query_id="q-1") == Lookup(None, True)


async def test_ttl_zero_disables_the_cache(redis_client: redis.asyncio.Redis, prefix: str) -> None:
    cache = ResultCache(redis=redis_client, ttl_seconds=0, prefix=prefix)
    assert not cache.enabled
    await cache.put("k", "answer")
    assert await cache.lookup("k") == Lookup(None, None)
    assert await cache.lookup("k", query_id="q-1") == Lookup(None, True)
    assert await cache.lookup("k", query_id="q-1") == Lookup(None, True)
    assert await redis_client.keys(f"{prefix}*") == []


async def test_a_miss_records_the_call_once_per_query_id(
    redis_client: redis.asyncio.Redis, prefix: str
) -> None:
    cache = ResultCache(redis=redis_client, prefix=prefix)
    assert await cache.lookup("k", query_id="q-1") == Lookup(None, True)
    assert await cache.lookup("k", query_id="q-1") == Lookup(None, False)
    assert await cache.lookup("k", query_id="q-2") == Lookup(None, True)
    # Another worker replaying q-1 sees the call made here.
    other = ResultCache(redis=redis_client, prefix=prefix)
    assert await other.lookup("k", query_id="q-1") == Lookup(None, False)
    assert 86_000 < await redis_client.ttl(f"{prefix}called:q-1") <= 86_400


async def test_a_hit_records_no_call(redis_client: redis.asyncio.Redis, prefix: str) -> None:
    cache = ResultCache(redis=redis_client, prefix=prefix)
    await cache.put("k", "answer")
    assert await cache.lookup("k", query_id="q-1") == Lookup("answer", None)
    assert await redis_client.exists(f"{prefix}called:q-1") == 0
    # So the query's first real call, on a later miss, still counts as its first.
    assert await cache.lookup("other", query_id="q-1") == Lookup(None, True)


async def test_concurrent_misses_let_exactly_one_call_through(
    redis_client: redis.asyncio.Redis, prefix: str
) -> None:
    cache = ResultCache(redis=redis_client, prefix=prefix)
    found = await asyncio.gather(*(cache.lookup("k", query_id="q-race") for _ in range(20)))
    assert [f.first_call for f in found].count(True) == 1


async def test_lookup_survives_a_flushed_script_cache(
    redis_client: redis.asyncio.Redis, prefix: str
) -> None:
    """A restarted Redis has forgotten the script; the lookup loads it again."""
    cache = ResultCache(redis=redis_client, prefix=prefix)
    await cache.put("k", "answer")
    await redis_client.script_flush()
    assert await cache.lookup("k") == Lookup("answer", None)


@pytest.mark.parametrize("ttl", [-1, 1.5, True])
async def test_bad_ttl_is_refused(redis_client: redis.asyncio.Redis, ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        ResultCache(redis=redis_client, ttl_seconds=ttl)  # type: ignore[arg-type]


async def test_empty_ids_are_refused(redis_client: redis.asyncio.Redis, prefix: str) -> None:
    cache = ResultCache(redis=redis_client, prefix=prefix)
    with pytest.raises(ValueError, match="query_id"):
        await cache.lookup("k", query_id="")
    with pytest.raises(ValueError, match="key"):
        await cache.lookup("")
