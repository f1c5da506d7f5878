"""The drift monitor's plain steps: signals, windows and judging a closed window."""

from __future__ import annotations

import json

import pytest
from factories import make_outcome

from app.drift import add_all, empty_window
from app.errors import DecodeError
from app.monitor import (
    NO_MODEL,
    SIGNALS_PER_RECORD,
    SignalBatches,
    decode_signals,
    encode_signals,
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
    batch = [{"intent": "return", "route": "response"}, {"intent": "refund"}]
    assert decode_signals(encode_signals(batch)) == batch
    # One outcome's object, as a single signal: read as a batch of one.
    assert decode_signals(b'{"intent":"return"}') == [{"intent": "return"}]
    for bad in (b"", b"[]", b"[1]", b'{"intent": 3}', b'[{"intent": "x"}, 2]', b"\xff"):
        with pytest.raises(DecodeError):
            decode_signals(bad)


def test_signal_batches_go_out_per_variant_and_window_with_their_latest_time() -> None:
    batches = SignalBatches(window=60)
    batches.add("a@1", {"intent": "return"}, at=61.0)
    batches.add("b@1", {"intent": "refund"}, at=59.0)
    batches.add("a@1", {"intent": "refund"}, at=62.5)
    batches.add("a@1", {"intent": "other"}, at=50.0)  # late: its own window's record
    assert len(batches) == 4
    records = [(variant, json.loads(value), at) for variant, value, at in batches.take()]
    assert records == [
        ("b@1", [{"intent": "refund"}], 59.0),
        ("a@1", [{"intent": "other"}], 50.0),
        ("a@1", [{"intent": "return"}, {"intent": "refund"}], 62.5),
    ], "oldest window first, each record stamped inside its window"
    assert batches.take() == [] and len(batches) == 0


def test_a_large_batch_is_split_into_records() -> None:
    batches = SignalBatches(window=60)
    for i in range(SIGNALS_PER_RECORD + 3):
        batches.add("a@1", {"n": str(i)}, at=1.0)
    records = batches.take()
    assert [len(json.loads(value)) for _, value, _ in records] == [SIGNALS_PER_RECORD, 3]
    assert [json.loads(value)[-1]["n"] for _, value, _ in records][-1] == str(
        SIGNALS_PER_RECORD + 2
    )


def test_add_all_counts_each_labels_once() -> None:
    batch = [{"intent": "return"}, {"intent": "return", "route": "response"}]
    window = add_all(empty_window(), batch)
    assert window == add_all(add_all(empty_window(), [batch[0]]), [batch[1]])
    assert window["n"] == 2 and window["counts"]["intent"] == {"return": 2}


@pytest.mark.parametrize(
    ("at", "size", "start"), [(0.0, 60, 0.0), (59.999, 60, 0.0), (60.0, 60, 60.0), (7.5, 3, 6.0)]
)
def test_window_start(at: float, size: float, start: float) -> None:
    assert window_start(at, size) == start


def window_of(n: int, intent: str = "return") -> dict:
    window = empty_window()
    for _ in range(n):
        window = add_all(window, [{"intent": intent, "route": "response"}])
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
