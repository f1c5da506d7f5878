"""Retry strategy and circuit breaker for calls to model servers.

Plain objects with an injectable clock, so their behaviour is tested without a
server. The inference stage combines them (see ``app.inference``).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from app.errors import ModelUnavailable

BreakerState = Literal["closed", "open", "half_open"]

#: Numeric breaker states for metrics (0 closed, 1 half-open, 2 open).
BREAKER_STATE_VALUE: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter; only ``ModelUnavailable`` is retryable.

    A ``Retry-After`` from the server is honoured: the wait is at least that long.
    """

    max_attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")

    @staticmethod
    def retryable(error: BaseException) -> bool:
        """Timeouts, connection errors, 5xx and 429 are worth another try."""
        return isinstance(error, ModelUnavailable)

    def delay(
        self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * self.multiplier ** (attempt - 1))
        # Full jitter spreads the retries of many workers that failed together.
        wait = (rng or random).uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


class CircuitOpen(ModelUnavailable):
    """The endpoint's breaker is open: the call was not made."""

    error_type = "circuit_open"


class CircuitBreaker:
    """Opens after ``consecutive_failures`` in a row, or when the failure rate over the
    last ``window`` calls reaches ``failure_rate`` (once ``min_calls`` were seen).
    After ``cooldown`` seconds it lets one trial call through (half-open): success
    closes it, failure opens it again.
    """

    def __init__(
        self,
        *,
        name: str,
        consecutive_failures: int = 5,
        failure_rate: float = 0.5,
        window: int = 20,
        min_calls: int = 10,
        cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        if consecutive_failures < 1:
            raise ValueError("consecutive_failures must be at least 1")
        if not 0 < failure_rate <= 1:
            raise ValueError("failure_rate must be in (0, 1]")
        if window < 1 or not 1 <= min_calls <= window:
            raise ValueError("need window >= 1 and 1 <= min_calls <= window")
        if cooldown <= 0:
            raise ValueError("cooldown must be above 0")
        self.name = name
        self.consecutive_failures = consecutive_failures
        self.failure_rate = failure_rate
        self.min_calls = min_calls
        self.cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._results: deque[bool] = deque(maxlen=window)
        self._streak = 0
        self._state: BreakerState = "closed"
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown:
            self._set("half_open")
        return self._state

    def allow(self) -> bool:
        """Whether a call may go now; in half-open state only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def retry_in(self) -> float:
        """Seconds until ``allow`` may say yes: 0 when closed, the rest of the cool-down
        when open, and a short poll while another caller's half-open trial is out."""
        state = self.state
        if state == "closed" or (state == "half_open" and not self._trial_in_flight):
            return 0.0
        if state == "open":
            return max(0.0, self._opened_at + self.cooldown - self._clock())
        return min(0.25, self.cooldown / 4)

    def record_ignored(self) -> None:
        """The call says nothing about the endpoint's health (HTTP 429: it is up, but
        over a limit); only a half-open trial is released for the next caller."""
        self._trial_in_flight = False

    def record_success(self) -> None:
        self._trial_in_flight = False
        self._streak = 0
        self._results.append(True)
        if self._state != "closed":
            self._results.clear()
            self._set("closed")

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._streak += 1
        self._results.append(False)
        if self._state == "half_open" or self._should_open():
            self._opened_at = self._clock()
            self._set("open")

    def _should_open(self) -> bool:
        if self._state != "closed":
            return False
        if self._streak >= self.consecutive_failures:
            return True
        calls = len(self._results)
        failures = calls - sum(self._results)
        return calls >= self.min_calls and failures / calls >= self.failure_rate

    def _set(self, state: BreakerState) -> None:
        if state != self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(self.name, state)
