"""The drift monitor's plain steps: signals, windows and judging a closed window."""

from __future__ import annotations

import pytest
from factories import make_outcome

from app.drift import add, empty_window
from app.errors import DecodeError
from app.monitor import (
    NO_MODEL,
    decode_signal,
    encode_signal,
    judge,
    signal_of,
    window_start,
)


def test_a_response_signals_its_variant_and_every_feature() -> None:
    outcome = make_outcome(
        model="support",
        model_version="2",
        model_latency_ms=180.0,
        question="Where is my order ORD-123456? It is late.",
        query_intent="order_status",
        sentiment="negative",
    )
    variant, labels = signal_of(outcome)
    assert variant == "support@2"
    assert labels["intent"] == "order_status" and labels["sentiment"] == "negative"
    assert labels["language"] == "en" and labels["route"] == "response"
    assert labels["latency"] == "[100,250)"


def test_no_model_call_counts_no_latency() -> None:
    cached = make_outcome(model="support", model_version="2", model_latency_ms=0.0)
    assert "latency" not in signal_of(cached)[1]
    escalated = make_outcome(route="escalation", reason="human_requested", text="A person!")
    variant, labels = signal_of(escalated)
    assert variant == NO_MODEL and "latency" not in labels
    assert labels["route"] == "escalation"


def test_signals_round_trip_and_bad_ones_are_refused() -> None:
    labels = {"intent": "return", "route": "response"}
    assert decode_signal(encode_signal(labels)) == labels
    for bad in (b"", b"[1]", b'{"intent": 3}', b"\xff"):
        with pytest.raises(DecodeError):
            decode_signal(bad)


@pytest.mark.parametrize(
    ("at", "size", "start"), [(0.0, 60, 0.0), (59.999, 60, 0.0), (60.0, 60, 60.0), (7.5, 3, 6.0)]
)
def test_window_start(at: float, size: float, start: float) -> None:
    assert window_start(at, size) == start


def window_of(n: int, intent: str = "return") -> dict:
    window = empty_window()
    for _ in range(n):
        window = add(window, {"intent": intent, "route": "response"})
    return window


def judged(state: dict | None, window: dict, *, min_samples: int = 10):
    return judge(
        state,
        window,
        variant="m@1",
        start=60.0,
        size=60.0,
        threshold=0.2,
        min_samples=min_samples,
    )


def test_a_small_window_is_not_judged_and_the_first_big_one_is_the_baseline() -> None:
    small = judged(None, window_of(5))
    assert small.report is None and "baseline" not in small.state
    first = judged(small.state, window_of(50))
    assert first.report is None and not first.alert
    assert first.state["baseline"]["n"] == 50 and first.state["baseline_start"] == 60.0


def test_a_later_window_is_compared_with_the_baseline() -> None:
    state = judged(None, window_of(50)).state
    same = judged(state, window_of(50))
    assert same.report is not None and same.report["score"] == 0 and not same.alert
    shifted = judged(state, window_of(50, intent="order_status"))
    assert shifted.alert and shifted.report is not None
    assert shifted.report["drifting"] == ["intent"]
    assert shifted.state["baseline"] == state["baseline"], "the baseline stays"
