"""Retry policy and circuit breaker, on a fake clock."""

from __future__ import annotations

import random

import pytest
from factories import Clock

from app.errors import InvalidModelOutput, ModelError, ModelUnavailable
from app.resilience import CircuitBreaker, CircuitOpen, RetryPolicy


def test_only_unavailability_is_retryable() -> None:
    assert RetryPolicy.retryable(ModelUnavailable("503", status=503))
    assert RetryPolicy.retryable(CircuitOpen("open"))
    assert not RetryPolicy.retryable(ModelError("400"))
    assert not RetryPolicy.retryable(InvalidModelOutput("bad json"))


def test_backoff_grows_exponentially_with_jitter_under_a_cap() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, multiplier=2)
    rng = random.Random(4)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [policy.delay(attempt, rng=rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8, "jitter spans the range"
        assert min(delays) < ceiling * 0.2


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=5.0)
    assert policy.delay(1, retry_after=2.0) >= 2.0
    assert policy.delay(1, retry_after=60.0) == 5.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay": -1},
        {"base_delay": 2, "max_delay": 1},
        {"multiplier": 0.5},
    ],
)
def test_policy_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_cooldown() -> None:
    clock = Clock()
    changes: list[str] = []
    breaker = CircuitBreaker(
        name="p",
        consecutive_failures=3,
        cooldown=5,
        clock=clock,
        on_change=lambda name, state: changes.append(state),
    )
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.state == "half_open"
    assert breaker.allow(), "one trial call"
    assert not breaker.allow(), "only one at a time"
    breaker.record_success()
    assert breaker.state == "closed"
    assert changes == ["open", "half_open", "closed"]


def test_a_failed_trial_opens_the_breaker_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(name="p", consecutive_failures=1, cooldown=5, clock=clock)
    breaker.record_failure()
    clock.now += 6
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 4
    assert not breaker.allow(), "the cool-down starts again"


def test_breaker_opens_on_failure_rate_without_a_streak() -> None:
    breaker = CircuitBreaker(
        name="p", consecutive_failures=100, failure_rate=0.5, window=10, min_calls=10
    )
    for i in range(9):
        breaker.record_success() if i % 2 else breaker.record_failure()
    assert breaker.state == "closed", "not enough calls yet"
    breaker.record_failure()  # 6 failures of 10
    assert breaker.state == "open"


def test_a_failure_rate_under_the_threshold_keeps_the_breaker_closed() -> None:
    fresh = CircuitBreaker(
        name="q", consecutive_failures=3, failure_rate=0.7, window=10, min_calls=10
    )
    for _ in range(30):
        fresh.record_failure()
        fresh.record_success()
    assert fresh.state == "closed", "50% failures stay under a 70% threshold"


def test_retry_in_says_when_a_call_may_go_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(name="p", consecutive_failures=1, cooldown=5, clock=clock)
    assert breaker.retry_in() == 0.0
    breaker.record_failure()
    clock.now += 2
    assert breaker.retry_in() == pytest.approx(3.0)
    clock.now += 3
    assert breaker.retry_in() == 0.0, "half-open, and no trial out yet"
    assert breaker.allow()
    assert 0 < breaker.retry_in() <= 0.25, "another caller's trial is out: poll shortly"


def test_an_ignored_result_releases_the_trial_without_closing() -> None:
    clock = Clock()
    breaker = CircuitBreaker(name="p", consecutive_failures=1, cooldown=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    assert not breaker.allow()
    breaker.record_ignored()
    assert breaker.state == "half_open"
    assert breaker.allow(), "the next caller gets the trial"
