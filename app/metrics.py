"""Prometheus metrics of a worker process, served on ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from app.status import ConsumerLagCollector

EVENTS = Counter(
    "flowdesk_events_total", "Events handled, by stage and result.", ["stage", "result"]
)
IN_FLIGHT = Gauge("flowdesk_inflight_requests", "Queries inside the inference window.")
WINDOW_CAPACITY = Gauge("flowdesk_inflight_capacity", "Size of the inference window.")
MODEL_IN_FLIGHT = Gauge(
    "flowdesk_model_requests_in_flight",
    "Model requests sent and not yet answered (at most FLOWDESK_LLM_CAPACITY).",
)
MODEL_LATENCY = Histogram(
    "flowdesk_model_latency_seconds",
    "Latency of model requests that answered.",
    ["endpoint", "model"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30),
)
MODEL_CALLS = Counter(
    "flowdesk_model_calls_total", "Model requests, by endpoint and result.", ["endpoint", "result"]
)
RETRIES = Counter("flowdesk_model_retries_total", "Model request retries.", ["endpoint"])
BREAKER_STATE = Gauge(
    "flowdesk_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open.", ["endpoint"]
)
MODEL_WEIGHT = Gauge(
    "flowdesk_model_weight", "Traffic weight of each model variant (0: drained).", ["endpoint"]
)
CACHE = Counter("flowdesk_cache_total", "Result cache lookups, by result.", ["result"])
DUPLICATE_CALLS = Counter(
    "flowdesk_duplicate_llm_calls_total",
    "Model calls made for a query that had already been sent to a model (replays).",
)
RATE_LIMIT_WAIT = Counter(
    "flowdesk_ratelimit_wait_seconds_total", "Time spent waiting for the shared rate limit."
)
REDIS_ERRORS = Counter(
    "flowdesk_redis_errors_total", "Redis operations that failed (the pipeline went on).", ["op"]
)
DEAD_LETTERS = Counter(
    "flowdesk_dlq_total", "Messages dead-lettered, by error type.", ["error_type"]
)
SKIPPED_OFFSETS = Counter(
    "flowdesk_skipped_offsets_total",
    "Offsets the consumer skipped in a rebalance and read again, by topic.",
    ["topic"],
)
ESCALATIONS = Counter("flowdesk_escalations_total", "Escalations, by reason.", ["reason"])
DUPLICATE_OUTCOMES = Counter(
    "flowdesk_duplicate_outcomes_total",
    "Outcomes of queries already routed (replays), not written again.",
)
DUPLICATE_DEAD_LETTERS = Counter(
    "flowdesk_duplicate_dead_letters_total",
    "Dead letters of source offsets already dead-lettered (replays), not written again.",
)
DRIFT_SCORE = Gauge(
    "flowdesk_drift_score",
    "Drift of the last closed window against the baseline (largest feature PSI).",
    ["variant"],
)
DRIFT_FEATURE_SCORE = Gauge(
    "flowdesk_drift_feature_score",
    "Drift of one feature in the last closed window (PSI beyond chance).",
    ["variant", "feature"],
)
DRIFT_ALERTS = Counter(
    "flowdesk_drift_alerts_total", "Windows published to support.monitoring.", ["variant"]
)
#: Consumer lag per partition; ``app.views`` gives it the worker's consumer.
CONSUMER_LAG = ConsumerLagCollector()
REGISTRY.register(CONSUMER_LAG)
