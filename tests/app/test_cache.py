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

from app.cache import ResultCache

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


async def test_get_put_round_trip(redis_client: redis.asyncio.Redis, prefix: str) -> None:
    cache = ResultCache(redis=redis_client, prefix=prefix)
    key = ResultCache.key_for(model=MODEL, messages=MESSAGES, params=PARAMS)
    assert await cache.get(key) is None
    content = '{"intent": "return", "reply": "Sure — here is your label ✓"}'
    await cache.put(key, content)
    assert await cache.get(key) == content
    # Another instance (another worker) reads the same entry.
    assert await ResultCache(redis=redis_client, prefix=prefix).get(key) == content
    assert 86_000 < await redis_client.ttl(f"{prefix}result:{key}") <= 86_400


async def test_entries_expire_after_the_ttl(redis_client: redis.asyncio.Redis, prefix: str) -> None:
    cache = ResultCache(redis=redis_client, ttl_seconds=1, prefix=prefix)
    await cache.put("k", "answer")
    assert await cache.mark_called("q-1")
    assert await cache.get("k") == "answer"
    await asyncio.sleep(1.5)
    assert await cache.get("k") is None
    # The call record expires too: a much later replay counts as a first call.
    assert await cache.mark_called("q-1")


async def test_ttl_zero_disables_the_cache(redis_client: redis.asyncio.Redis, prefix: str) -> None:
    cache = ResultCache(redis=redis_client, ttl_seconds=0, prefix=prefix)
    assert not cache.enabled
    await cache.put("k", "answer")
    assert await cache.get("k") is None
    assert await cache.mark_called("q-1")
    assert await cache.mark_called("q-1")
    assert await redis_client.keys(f"{prefix}*") == []


async def test_mark_called_is_true_once_per_query_id(
    redis_client: redis.asyncio.Redis, prefix: str
) -> None:
    cache = ResultCache(redis=redis_client, prefix=prefix)
    assert await cache.mark_called("q-1") is True
    assert await cache.mark_called("q-1") is False
    assert await cache.mark_called("q-2") is True
    # Another worker replaying q-1 sees the call made here.
    assert await ResultCache(redis=redis_client, prefix=prefix).mark_called("q-1") is False


async def test_concurrent_marks_let_exactly_one_through(
    redis_client: redis.asyncio.Redis, prefix: str
) -> None:
    cache = ResultCache(redis=redis_client, prefix=prefix)
    firsts = await asyncio.gather(*(cache.mark_called("q-race") for _ in range(20)))
    assert firsts.count(True) == 1


@pytest.mark.parametrize("ttl", [-1, 1.5, True])
async def test_bad_ttl_is_refused(redis_client: redis.asyncio.Redis, ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        ResultCache(redis=redis_client, ttl_seconds=ttl)  # type: ignore[arg-type]


async def test_empty_ids_are_refused(redis_client: redis.asyncio.Redis, prefix: str) -> None:
    cache = ResultCache(redis=redis_client, prefix=prefix)
    with pytest.raises(ValueError, match="query_id"):
        await cache.mark_called("")
    with pytest.raises(ValueError, match="key"):
        await cache.get("")
