"""The worker's own summary: recent outcomes, and the consumer-lag metric."""

from __future__ import annotations

import pytest
from factories import Clock
from prometheus_client import CollectorRegistry, generate_latest

from app.status import ConsumerLagCollector, RecentOutcomes, percentile


def test_the_summary_covers_the_window_and_forgets_past_the_horizon() -> None:
    clock = Clock()
    recent = RecentOutcomes(horizon=120, clock=clock)
    for n in range(100):
        recent.add("response", latency_ms=float(n + 1))
    recent.add("escalation")
    clock.now += 30
    recent.add("response", latency_ms=500.0)
    summary = recent.summary(60.0)
    assert summary["outcomes"] == 102
    assert summary["routes"] == {"response": 101, "escalation": 1}
    assert summary["per_second"] == round(102 / 60, 3)
    assert summary["latency_ms"] == {"p50": 51.0, "p95": 96.0, "p99": 100.0}
    clock.now += 45  # the first hundred are now outside the last minute
    assert recent.summary(60.0)["outcomes"] == 1
    clock.now += 200
    assert recent.summary(60.0) == {
        "window_seconds": 60.0,
        "outcomes": 0,
        "per_second": 0.0,
        "routes": {},
        "latency_ms": {"p50": None, "p95": None, "p99": None},
    }
    with pytest.raises(ValueError):
        RecentOutcomes(horizon=0)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([4.0, 3.0, 2.0, 1.0], 99) == 4.0, "any order"
    assert percentile([], 50) is None
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0


def test_consumer_lag_is_reported_per_partition() -> None:
    registry = CollectorRegistry()
    collector = ConsumerLagCollector()
    registry.register(collector)
    assert b"flowdesk_consumer_lag{" not in generate_latest(registry)
    collector.source = lambda: [("flowdesk.queries", 3, 42)]
    text = generate_latest(registry).decode()
    assert 'flowdesk_consumer_lag{partition="3",topic="flowdesk.queries"} 42.0' in text
