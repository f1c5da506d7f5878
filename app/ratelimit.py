"""A requests-per-minute and tokens-per-minute limit shared by every worker, kept in Redis.

LLM providers meter both RPM and TPM per API key, and every worker of the deployment
spends the same key. :class:`RedisRateLimiter` applies GCRA (generic cell rate
algorithm) to both limits in one Lua script, so the check and the update are atomic
across workers, and it reads the clock with ``TIME`` on the Redis server, so workers
whose clocks disagree still share one clock.

GCRA keeps one number per limit, the TAT (theoretical arrival time): the moment the
limit would be idle again if nothing else arrived. A request costing ``c`` units of a
limit of ``L`` per minute moves the TAT ``c * 60 / L`` seconds further; it is admitted
when, after that move, the TAT is at most one *window* ahead of now.

Burst: the window is ``burst`` request intervals (``burst * 60 / RPM`` seconds) for both
limits, so up to ``burst`` requests, and the tokens the TPM limit grants over the same
time, may go at once; with the default ``burst=1`` requests are spaced evenly at
``60 / RPM`` seconds. Without an RPM limit the window is ``burst`` seconds.

Slack: a waiter wakes a little after its slot (timer granularity, the round trip to
Redis), and plain GCRA at ``burst=1`` would lose that time from every slot, about 2 %
of the rate at 20 requests/s. Admission therefore tolerates a TAT up to 5 % of an
interval beyond the window: the long-run rate stays exact, and two requests are never
less than 0.95 interval apart at ``burst=1``.

Oversized requests: a request whose tokens alone exceed the TPM window could never be
admitted, so its cost is capped at the window for the admission check (it goes once the
token limit is fully idle). It is still charged its full token count, which pushes the
TAT into the future: later requests wait until the tokens are paid back, and the
average stays within the TPM the provider enforces.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from app.errors import ModelUnavailable

if TYPE_CHECKING:
    import redis.asyncio

# Waiters for the same slot are woken in the order they asked, so in one process the
# same coroutine would win every slot and starve the others. A jitter of a small
# fraction of the wait shuffles them; each waking that late costs that much of the
# slot at burst 1, hence small.
_JITTER = 0.02

# KEYS: rpm key, tpm key. ARGV: rpm, tpm, burst, tokens. Times in microseconds.
# Returns 0 when admitted (both limits charged) or, when refused (nothing charged),
# the milliseconds to wait as a string with microsecond digits: a Lua number would be
# truncated to whole milliseconds, and that rounding would cost throughput at burst 1.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])

local span
if rpm > 0 then
  span = 60000000 / rpm
else
  span = 1000000
end
local window = burst * span
local slack = 0.05 * span

-- Returns the microseconds to wait (<= 0: admitted) and the TAT after admission.
local function gcra(key, limit, cost)
  local interval = 60000000 / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then
    tat = now
  end
  local wait = tat + math.min(cost * interval, window) - window - slack - now
  return wait, tat + cost * interval
end

local wait = 0
local rpm_tat, tpm_tat
if rpm > 0 then
  local w
  w, rpm_tat = gcra(KEYS[1], rpm, 1)
  wait = math.max(wait, w)
end
if tpm > 0 then
  local w
  w, tpm_tat = gcra(KEYS[2], tpm, tokens)
  wait = math.max(wait, w)
end
if wait > 0 then
  -- Whole microseconds, at least one: a refusal must never read as 0.
  return string.format('%.3f', math.max(1, math.ceil(wait)) / 1000)
end

-- A key expires when its TAT passes: an absent key and a past TAT mean the same.
local function store(key, tat)
  local ttl_ms = math.max(1, math.ceil((tat - now) / 1000) + 1)
  redis.call('SET', key, string.format('%.0f', tat), 'PX', string.format('%d', ttl_ms))
end
if rpm_tat then
  store(KEYS[1], rpm_tat)
end
if tpm_tat then
  store(KEYS[2], tpm_tat)
end
return 0
"""


class RateLimitTimeout(ModelUnavailable):
    """The rate limit would admit the request only after the caller's deadline."""

    error_type = "rate_limited"


def _check_count(name: str, value: int, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


class RedisRateLimiter:
    """RPM and TPM limits for one API key, shared through Redis by every worker.

    A limit of 0 is unlimited. Redis errors propagate: whether to call the model
    anyway when Redis is down is the caller's decision.
    """

    def __init__(
        self,
        *,
        redis: redis.asyncio.Redis,
        key: str = "flowdesk:ratelimit:llm",
        requests_per_minute: int,
        tokens_per_minute: int = 0,
        burst: int = 1,
    ) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        _check_count("requests_per_minute", requests_per_minute, minimum=0)
        _check_count("tokens_per_minute", tokens_per_minute, minimum=0)
        _check_count("burst", burst, minimum=1)
        self.key = key
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.burst = burst
        self._keys = [f"{key}:rpm", f"{key}:tpm"]
        self._script = redis.register_script(_GCRA_LUA)

    @property
    def enabled(self) -> bool:
        """False when both limits are 0: every request is admitted without asking Redis."""
        return self.requests_per_minute > 0 or self.tokens_per_minute > 0

    async def try_acquire(self, *, tokens: int = 0) -> float:
        """Admit one request of ``tokens`` tokens now (0.0), or say how many seconds to wait.

        When the answer is not 0.0 nothing has been reserved: call again after waiting.
        """
        _check_count("tokens", tokens, minimum=0)
        if not self.enabled:
            return 0.0
        result = await self._script(
            keys=self._keys,
            args=[self.requests_per_minute, self.tokens_per_minute, self.burst, tokens],
        )
        wait_ms = float(result.decode() if isinstance(result, bytes) else result)
        return max(0.0, wait_ms / 1000.0)

    async def acquire(self, *, tokens: int = 0, deadline: float | None = None) -> float:
        """Wait until the request is admitted; return the seconds spent waiting.

        ``deadline`` is a :func:`time.monotonic` value. When the next admission would
        come after it, :class:`RateLimitTimeout` is raised at once rather than after a
        wait that cannot succeed; its ``retry_after`` is the wait Redis asked for.
        """
        started = time.monotonic()
        while True:
            wait = await self.try_acquire(tokens=tokens)
            if wait <= 0.0:
                return time.monotonic() - started
            now = time.monotonic()
            if deadline is not None and now + wait > deadline:
                raise RateLimitTimeout(
                    f"rate limit {self.key!r} admits the request in {wait:.3f} s, "
                    f"after the deadline ({max(0.0, deadline - now):.3f} s away)",
                    retry_after=wait,
                )
            delay = wait * (1.0 + random.uniform(0.0, _JITTER))
            if deadline is not None:
                delay = min(delay, deadline - now)
            # Another waiter may take the slot first; then the loop asks again.
            await asyncio.sleep(delay)
