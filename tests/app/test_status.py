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


def test_the_series_counts_routes_and_latency_per_aligned_bucket() -> None:
    clock = Clock()  # 1000.0: a bucket boundary for 5 s buckets
    recent = RecentOutcomes(horizon=300, clock=clock)
    recent.add("response", latency_ms=10.0)
    recent.add("response", latency_ms=30.0)
    recent.add("escalation")
    clock.now = 1007.0
    recent.add("dead_letter")
    recent.add("response", latency_ms=200.0)
    clock.now = 1012.5
    series = recent.series(bucket=5.0, window=20.0)
    assert series["bucket_seconds"] == 5.0
    empty = {"routes": {}, "latency_ms": {"p50": None, "p99": None}}
    assert series["buckets"] == [
        {"start": -17.5, "seconds": 5.0, **empty},
        {
            "start": -12.5,
            "seconds": 5.0,
            "routes": {"response": 2, "escalation": 1},
            "latency_ms": {"p50": 10.0, "p99": 30.0},
        },
        {
            "start": -7.5,
            "seconds": 5.0,
            "routes": {"dead_letter": 1, "response": 1},
            "latency_ms": {"p50": 200.0, "p99": 200.0},
        },
        {"start": -2.5, "seconds": 2.5, **empty},
    ], "four buckets, the last one half full"


def test_the_series_keeps_its_buckets_as_time_passes_and_stops_at_the_horizon() -> None:
    clock = Clock()
    recent = RecentOutcomes(horizon=60, clock=clock)
    recent.add("response", latency_ms=5.0)
    clock.now += 1.0
    before = recent.series(bucket=10.0, window=60.0)["buckets"]
    clock.now += 3.0  # same bucket: it keeps its counts, only its age moves
    after = recent.series(bucket=10.0, window=60.0)["buckets"]
    assert len(before) == len(after) == 6
    assert before[-1]["routes"] == after[-1]["routes"] == {"response": 1}
    assert (before[-1]["seconds"], after[-1]["seconds"]) == (1.0, 4.0)
    wide = recent.series(bucket=10.0, window=600.0)["buckets"]
    assert len(wide) == 6, "no further back than the horizon"
    clock.now += 60
    assert all(not b["routes"] for b in recent.series(bucket=10.0, window=60.0)["buckets"])
    with pytest.raises(ValueError):
        recent.series(bucket=0)
    with pytest.raises(ValueError):
        recent.series(bucket=10.0, window=5.0)
