"""What a worker tells people about itself: recent throughput, latency, lag.

``RecentOutcomes`` keeps the last minutes of routed outcomes in memory (per worker)
for ``GET /status``; Prometheus (``/metrics``) is the long-term record.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


@dataclass(frozen=True, slots=True)
class _Seen:
    at: float
    route: str
    latency_ms: float | None


class RecentOutcomes:
    """Outcomes of the last ``horizon`` seconds: throughput, routes, latency percentiles."""

    def __init__(self, *, horizon: float = 300.0, clock: Callable[[], float] = time.monotonic):
        if horizon <= 0:
            raise ValueError(f"horizon must be above 0, got {horizon}")
        self.horizon = horizon
        self._clock = clock
        self._seen: deque[_Seen] = deque()

    def add(self, route: str, latency_ms: float | None = None) -> None:
        self._seen.append(_Seen(self._clock(), route, latency_ms))
        self._trim()

    def _trim(self) -> None:
        horizon = self._clock() - self.horizon
        while self._seen and self._seen[0].at < horizon:
            self._seen.popleft()

    def summary(self, window: float = 60.0) -> dict[str, object]:
        """Per-second throughput and latency percentiles over the last ``window`` s."""
        self._trim()
        since = self._clock() - min(window, self.horizon)
        recent = [s for s in self._seen if s.at >= since]
        latencies = [s.latency_ms for s in recent if s.latency_ms is not None]
        return {
            "window_seconds": window,
            "outcomes": len(recent),
            "per_second": round(len(recent) / window, 3),
            "routes": dict(Counter(s.route for s in recent)),
            "latency_ms": {f"p{p}": percentile(latencies, p) for p in (50, 95, 99)},
        }

    def series(self, bucket: float = 5.0, window: float = 300.0) -> dict[str, object]:
        """Outcomes by route and response latency p50/p99, per ``bucket`` s, oldest first.

        Buckets are aligned to multiples of ``bucket`` on the clock, so a bucket keeps
        its outcomes from one call to the next and a chart does not jitter. They cover
        the last ``window`` s (at most the horizon); the last one is still filling, and
        its ``seconds`` says how much of it has passed. ``start`` is relative to now.
        """
        if bucket <= 0:
            raise ValueError(f"bucket must be above 0, got {bucket}")
        if window < bucket:
            raise ValueError(f"window must be at least one bucket ({bucket}), got {window}")
        self._trim()
        now = self._clock()
        last = math.floor(now / bucket)
        first = last - max(1, int(min(window, self.horizon) // bucket)) + 1
        routes: dict[int, Counter[str]] = {}
        latencies: dict[int, list[float]] = {}
        for seen in self._seen:
            index = math.floor(seen.at / bucket)
            if index < first:
                continue
            routes.setdefault(index, Counter())[seen.route] += 1
            if seen.latency_ms is not None:
                latencies.setdefault(index, []).append(seen.latency_ms)
        buckets = []
        for index in range(first, last + 1):
            start = index * bucket
            measured = latencies.get(index, [])
            buckets.append(
                {
                    "start": round(start - now, 3),
                    "seconds": round(min(bucket, now - start), 3),
                    "routes": dict(routes.get(index, {})),
                    "latency_ms": {f"p{p}": percentile(measured, p) for p in (50, 99)},
                }
            )
        return {"bucket_seconds": bucket, "buckets": buckets}


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank ``p``th percentile of ``values``, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


LagSource = Callable[[], Iterable[tuple[str, int, int]]]


class ConsumerLagCollector(Collector):
    """``flowdesk_consumer_lag{topic,partition}``, computed when scraped.

    The lag is the high-water mark from the latest fetch response minus the
    committed offset: the messages a restart would have to read again or for the
    first time. Fetch responses are used, not ListOffsets, which some Kafka-compatible
    brokers answer wrongly.
    """

    def __init__(self, source: LagSource | None = None) -> None:
        #: Set by the worker once its consumer exists; nothing is reported before.
        self.source: LagSource = source or (lambda: ())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "flowdesk_consumer_lag",
            "Messages behind the high-water mark, per assigned partition.",
            labels=["topic", "partition"],
        )
        for topic, partition, lag in self.source():
            family.add_metric([topic, str(partition)], lag)
        yield family


#: This worker's recent outcomes, fed by the router and by every dead letter.
RECENT = RecentOutcomes()
