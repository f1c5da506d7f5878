"""The shared RPM/TPM limiter against a real redis-server: admission, waits and accuracy."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from app.errors import ModelUnavailable
from app.ratelimit import RateLimitTimeout, RedisRateLimiter
from app.stack import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def other_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A second client with its own connection pool, as another worker would have."""
    conn = redis.asyncio.from_url(redis_url)
    yield conn
    await conn.aclose()


def unique_key() -> str:
    return f"test:ratelimit:{uuid.uuid4().hex}"


async def test_unlimited_admits_at_once_and_is_disabled(redis_client: redis.asyncio.Redis) -> None:
    limiter = RedisRateLimiter(redis=redis_client, key=unique_key(), requests_per_minute=0)
    assert not limiter.enabled
    for _ in range(50):
        assert await limiter.try_acquire(tokens=10_000) == 0.0
    assert await limiter.acquire(tokens=10_000) < 0.05


async def test_rpm_with_burst_one_spaces_requests_evenly(redis_client: redis.asyncio.Redis) -> None:
    key = unique_key()
    limiter = RedisRateLimiter(redis=redis_client, key=key, requests_per_minute=600)
    assert limiter.enabled
    assert await limiter.try_acquire() == 0.0
    wait = await limiter.try_acquire()
    assert 0.05 < wait <= 0.1
    # A refused request reserves nothing: asking again says the same, less elapsed time.
    again = await limiter.try_acquire()
    assert 0.05 < again <= wait
    # The TAT key expires with the TAT, so an idle limiter leaves nothing behind.
    ttl_ms = await redis_client.pttl(f"{key}:rpm")
    assert 0 < ttl_ms <= 120
    assert not await redis_client.exists(f"{key}:tpm")


async def test_burst_admits_that_many_at_once(redis_client: redis.asyncio.Redis) -> None:
    limiter = RedisRateLimiter(
        redis=redis_client, key=unique_key(), requests_per_minute=600, burst=3
    )
    waits = [await limiter.try_acquire() for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.05 < waits[3] <= 0.1


async def test_tpm_refuses_a_request_over_the_remaining_tokens(
    redis_client: redis.asyncio.Redis,
) -> None:
    # No RPM limit: the token window is burst (1) seconds, i.e. 1000 tokens at 60k TPM,
    # plus a slack of 5 % of a second.
    limiter = RedisRateLimiter(
        redis=redis_client, key=unique_key(), requests_per_minute=0, tokens_per_minute=60_000
    )
    assert await limiter.try_acquire(tokens=800) == 0.0
    wait = await limiter.try_acquire(tokens=500)
    # 800 + 500 tokens at 1000 tokens/s: 1.3 s, 0.25 s beyond window and slack.
    assert 0.2 < wait <= 0.25
    assert await limiter.try_acquire(tokens=150) == 0.0
    # The 150 tokens were charged: the 500 now waits 0.4 s, not 0.25.
    assert 0.35 < await limiter.try_acquire(tokens=500) <= 0.4
    waited = await limiter.acquire(tokens=500)
    assert 0.35 < waited < 0.6


async def test_the_wait_is_that_of_the_stricter_limit(redis_client: redis.asyncio.Redis) -> None:
    # 600 RPM: one request per 0.1 s. 30k TPM is 500 tokens/s: 50 tokens in that 0.1 s.
    limiter = RedisRateLimiter(
        redis=redis_client, key=unique_key(), requests_per_minute=600, tokens_per_minute=30_000
    )
    assert await limiter.try_acquire(tokens=10) == 0.0
    # The tokens (0.02 s) are within the window: the request interval decides.
    assert 0.05 < await limiter.try_acquire(tokens=10) <= 0.1
    await asyncio.sleep(0.1)
    assert await limiter.try_acquire(tokens=100) == 0.0
    # 100 + 20 tokens take 0.24 s, 0.135 s beyond the window and its slack (0.005 s):
    # longer than the 0.1 s request interval.
    assert 0.12 < await limiter.try_acquire(tokens=20) <= 0.135


async def test_a_refused_request_charges_neither_limit(redis_client: redis.asyncio.Redis) -> None:
    key = unique_key()
    limiter = RedisRateLimiter(
        redis=redis_client, key=key, requests_per_minute=600, tokens_per_minute=60_000
    )
    assert await limiter.try_acquire(tokens=10) == 0.0
    before = await redis_client.mget(f"{key}:rpm", f"{key}:tpm")
    assert None not in before
    # The request interval refuses it; the tokens alone would have passed.
    assert await limiter.try_acquire(tokens=10) > 0.0
    assert await redis_client.mget(f"{key}:rpm", f"{key}:tpm") == before


async def test_an_oversized_request_is_admitted_and_pays_its_tokens_back(
    redis_client: redis.asyncio.Redis,
) -> None:
    # 6000 RPM: a 0.01 s window, which holds 10 tokens at 60k TPM (1000 tokens/s).
    limiter = RedisRateLimiter(
        redis=redis_client, key=unique_key(), requests_per_minute=6000, tokens_per_minute=60_000
    )
    assert await limiter.try_acquire(tokens=30) == 0.0
    # Charged in full: 0.03 s of tokens, of which the window and its slack absorb 0.0105 s.
    wait = await limiter.try_acquire(tokens=1)
    assert 0.015 < wait <= 0.0205
    # Not a deadlock: another oversized request goes once the tokens are paid back.
    waited = await limiter.acquire(tokens=30, deadline=time.monotonic() + 1.0)
    assert 0.015 < waited < 0.2


async def test_acquire_past_the_deadline_raises_at_once(redis_client: redis.asyncio.Redis) -> None:
    limiter = RedisRateLimiter(redis=redis_client, key=unique_key(), requests_per_minute=60)
    assert await limiter.acquire() < 0.05
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout) as caught:
        await limiter.acquire(deadline=started + 0.5)
    assert time.monotonic() - started < 0.2
    assert isinstance(caught.value, ModelUnavailable)
    assert caught.value.error_type == "rate_limited"
    assert caught.value.retry_after is not None and 0.9 < caught.value.retry_after <= 1.0


async def test_acquire_waits_when_the_deadline_allows(redis_client: redis.asyncio.Redis) -> None:
    limiter = RedisRateLimiter(redis=redis_client, key=unique_key(), requests_per_minute=600)
    await limiter.acquire()
    waited = await limiter.acquire(deadline=time.monotonic() + 1.0)
    assert 0.05 < waited < 0.3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"requests_per_minute": -1},
        {"requests_per_minute": 10, "tokens_per_minute": -5},
        {"requests_per_minute": 10, "burst": 0},
        {"requests_per_minute": 1.5},
        {"requests_per_minute": 10, "key": ""},
    ],
)
async def test_bad_arguments_are_refused(
    redis_client: redis.asyncio.Redis, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        RedisRateLimiter(redis=redis_client, **kwargs)  # type: ignore[arg-type]


async def test_negative_tokens_are_refused(redis_client: redis.asyncio.Redis) -> None:
    limiter = RedisRateLimiter(redis=redis_client, key=unique_key(), requests_per_minute=10)
    with pytest.raises(ValueError, match="tokens"):
        await limiter.try_acquire(tokens=-1)


async def test_redis_errors_propagate() -> None:
    dead = redis.asyncio.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        limiter = RedisRateLimiter(redis=dead, key=unique_key(), requests_per_minute=10)
        with pytest.raises(redis.exceptions.ConnectionError):
            await limiter.try_acquire()
    finally:
        await dead.aclose()


RPM = 1200  # 20 admissions per second
RUN_SECONDS = 3.0


async def admit_until(limiter: RedisRateLimiter, start_at: float, end_at: float) -> list[float]:
    """Acquire as fast as the limit lets from start_at to end_at; the wall-clock admissions."""
    await asyncio.sleep(max(0.0, start_at - time.time()))
    admitted: list[float] = []
    while time.time() < end_at:
        await limiter.acquire()
        admitted.append(time.time())
    return admitted


def assert_rate(admitted: list[float], start_at: float) -> float:
    # The first second lets the start-up burst pass; two seconds of steady state follow.
    window = [t for t in admitted if start_at + 1.0 <= t < start_at + 3.0]
    rate = len(window) / 2.0
    expected = RPM / 60
    assert abs(rate - expected) <= 0.05 * expected, f"{rate:.2f}/s, expected {expected}/s"
    return rate


async def test_two_clients_together_keep_the_rate(
    redis_client: redis.asyncio.Redis, other_client: redis.asyncio.Redis
) -> None:
    key = unique_key()
    limiters = [
        RedisRateLimiter(redis=conn, key=key, requests_per_minute=RPM)
        for conn in (redis_client, other_client)
    ]
    start_at = time.time() + 0.1
    results = await asyncio.gather(
        *(admit_until(limiter, start_at, start_at + RUN_SECONDS) for limiter in limiters)
    )
    # Both took part; otherwise this would only test one client against itself.
    assert all(len(times) >= 5 for times in results), [len(times) for times in results]
    assert_rate(sorted(t for times in results for t in times), start_at)


# The same loop as admit_until, in a fresh interpreter that imports only what it needs.
CHILD = """
import asyncio, json, sys
import redis.asyncio
import time
from app.ratelimit import RedisRateLimiter

async def main(url, key, rpm, start_at, end_at):
    conn = redis.asyncio.from_url(url)
    try:
        limiter = RedisRateLimiter(redis=conn, key=key, requests_per_minute=rpm)
        await conn.ping()  # connect before the start, as a running worker would be
        await asyncio.sleep(max(0.0, start_at - time.time()))
        admitted = []
        while time.time() < end_at:
            await limiter.acquire()
            admitted.append(time.time())
        print(json.dumps(admitted))
    finally:
        await conn.aclose()

url, key, rpm, start_at, end_at = sys.argv[1:]
asyncio.run(main(url, key, int(rpm), float(start_at), float(end_at)))
"""


async def test_two_processes_together_keep_the_rate(redis_url: str) -> None:
    key = unique_key()
    # Time for the interpreters to start and import redis before the common start.
    start_at = time.time() + 1.5
    end_at = start_at + RUN_SECONDS
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            redis_url,
            key,
            str(RPM),
            repr(start_at),
            repr(end_at),
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results: list[list[float]] = []
    for child in children:
        out, err = await asyncio.wait_for(child.communicate(), timeout=30)
        assert child.returncode == 0, err.decode(errors="replace")
        results.append(json.loads(out))
    assert all(len(times) >= 5 for times in results), [len(times) for times in results]
    assert_rate(sorted(t for times in results for t in times), start_at)
