"""Voice calls: segments in any order become one utterance, exactly once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import DecodeError, ValidationError
from app.voice import (
    ExpiryResult,
    SegmentResult,
    StoredSegment,
    VoiceCall,
    VoiceSegment,
    add_segment,
    expire,
    parse_voice_segment,
)

TOPIC = "support.voice.inbound"
TIMEOUT = 30_000
MAX_CHARS = 200


def payload(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "call_id": "call-1",
        "customer_id": "C1",
        "seq": 0,
        "transcript": "hello",
        "final": False,
        "at": "2026-11-25T10:00:00+01:00",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def encoded(**fields: Any) -> bytes:
    return json.dumps(payload(**fields)).encode()


def segment(seq: int, transcript: str, *, final: bool = False, **fields: Any) -> VoiceSegment:
    return VoiceSegment(**payload(seq=seq, transcript=transcript, final=final, **fields))


def deliver(
    call: VoiceCall | None,
    seg: VoiceSegment,
    *,
    now_ms: int = 1_000,
    offset: int | None = None,
    max_chars: int = MAX_CHARS,
) -> SegmentResult:
    """``seg`` added to ``call`` as if read from the inbound topic at ``offset``."""
    return add_segment(
        call,
        seg,
        raw=seg.model_dump_json(),
        source=(TOPIC, 0, seg.seq if offset is None else offset),
        now_ms=now_ms,
        max_chars=max_chars,
    )


def deliver_all(
    segments: list[VoiceSegment], *, now_ms: int = 1_000
) -> tuple[VoiceCall, list[SegmentResult]]:
    call: VoiceCall | None = None
    results = []
    for i, seg in enumerate(segments):
        result = deliver(call, seg, now_ms=now_ms + i)
        call = result.call
        results.append(result)
    assert call is not None
    return call, results


def test_segments_in_order_make_one_utterance_on_the_final() -> None:
    call, results = deliver_all(
        [segment(0, "hi so"), segment(1, " my parcel "), segment(2, "is late", final=True)]
    )
    assert [r.note for r in results] == ["stored", "stored", "completed"]
    assert [r.utterance is not None for r in results] == [False, False, True]
    utterance = results[-1].utterance
    assert utterance is not None
    assert utterance.text == "hi so my parcel is late"
    assert utterance.call_id == "call-1"
    assert utterance.customer_id == "C1"
    assert utterance.first_at == "2026-11-25T10:00:00+01:00"
    assert utterance.arrived_ms == 1_000
    assert utterance.segments == 3
    assert utterance.gaps == ()
    assert not utterance.too_long
    assert call.state == "answered"
    assert call.ended_ms == 1_002


def test_a_single_final_segment_completes_at_once() -> None:
    result = deliver(None, segment(0, "where is my order", final=True))
    assert result.note == "completed"
    assert result.utterance is not None
    assert result.utterance.text == "where is my order"


def test_out_of_order_segments_are_stored_and_joined_in_seq_order() -> None:
    _, results = deliver_all(
        [segment(2, "c", final=True), segment(0, "a"), segment(3, "x"), segment(1, "b")]
    )
    assert [r.note for r in results] == ["stored", "stored", "conflict", "completed"]
    assert results[-1].utterance is not None
    assert results[-1].utterance.text == "a b c"


def test_a_call_whose_final_arrives_first_completes_on_the_last_missing_segment() -> None:
    _, results = deliver_all([segment(1, "world", final=True), segment(0, "hello")])
    assert [r.note for r in results] == ["stored", "completed"]
    assert results[1].utterance is not None
    assert results[1].utterance.text == "hello world"
    assert results[1].utterance.arrived_ms == 1_000, "arrival of the first segment, not seq 0"


def test_empty_transcripts_leave_no_double_spaces() -> None:
    _, results = deliver_all([segment(0, "a"), segment(1, "  "), segment(2, "b", final=True)])
    assert results[-1].utterance is not None
    assert results[-1].utterance.text == "a b"


def test_a_duplicate_is_ignored_and_the_call_is_not_changed() -> None:
    first = deliver(None, segment(0, "hello"))
    again = deliver(first.call, segment(0, "hello"), now_ms=5_000, offset=9)
    assert again.note == "duplicate"
    assert again.utterance is None
    assert again.call == first.call
    assert again.call.last_at_ms == 1_000
    assert again.call.sources == {0: (TOPIC, 0, 0)}, "the first copy's source is kept"


def test_a_conflicting_duplicate_keeps_the_first_transcript() -> None:
    first = deliver(None, segment(0, "hello"))
    other = deliver(first.call, segment(0, "goodbye"))
    assert other.note == "conflict"
    assert "differs" in other.reason
    assert other.call.segments == {0: "hello"}
    done = deliver(other.call, segment(1, "there", final=True))
    assert done.utterance is not None
    assert done.utterance.text == "hello there"


def test_a_copy_that_disagrees_on_final_is_a_conflict() -> None:
    first = deliver(None, segment(0, "hello"))
    other = deliver(first.call, segment(0, "hello", final=True))
    assert other.note == "conflict"
    assert other.call.final_seq is None


def test_a_second_final_is_a_conflict_and_the_first_final_is_kept() -> None:
    call, results = deliver_all(
        [segment(0, "a"), segment(2, "c", final=True), segment(3, "d", final=True)]
    )
    assert results[-1].note == "conflict"
    assert call.final_seq == 2
    assert 3 not in call.segments


def test_a_segment_after_the_final_seq_is_a_conflict() -> None:
    call, results = deliver_all([segment(1, "b", final=True), segment(2, "c")])
    assert results[-1].note == "conflict"
    assert "after the final" in results[-1].reason
    assert call.segments == {1: "b"}


def test_a_final_below_a_stored_seq_is_a_conflict() -> None:
    call, results = deliver_all([segment(0, "a"), segment(3, "d"), segment(2, "c", final=True)])
    assert results[-1].note == "conflict"
    assert call.final_seq is None


def test_late_segments_after_completion_are_ignored() -> None:
    done = deliver(None, segment(0, "hello", final=True))
    for late in (segment(0, "hello", final=True), segment(1, "more"), segment(0, "other")):
        result = deliver(done.call, late, now_ms=2_000)
        assert result.note == "late"
        assert result.utterance is None
        assert result.call == done.call


def test_a_segment_for_another_customer_is_a_conflict() -> None:
    first = deliver(None, segment(0, "hello"))
    other = deliver(first.call, segment(1, "there", final=True, customer_id="C2"))
    assert other.note == "conflict"
    assert "C2" in other.reason
    assert other.call == first.call


def test_a_segment_of_another_call_is_a_programming_error() -> None:
    first = deliver(None, segment(0, "hello"))
    with pytest.raises(ValueError, match="call-2"):
        deliver(first.call, segment(1, "x", call_id="call-2"))


def test_the_call_given_is_never_changed() -> None:
    first = deliver(None, segment(0, "a"))
    snapshot = VoiceCall.from_dict(first.call.to_dict())
    second = deliver(first.call, segment(1, "b", final=True), now_ms=3_000)
    assert first.call == snapshot
    assert second.call is not first.call
    assert second.call.segments == {0: "a", 1: "b"}
    assert second.call.last_at_ms == 3_000


def test_a_too_long_utterance_completes_the_call_flagged() -> None:
    first = deliver(None, segment(0, "x" * 6), max_chars=12)
    fits = deliver(first.call, segment(1, "y" * 5, final=True), max_chars=12)
    assert fits.utterance is not None
    assert not fits.utterance.too_long, "exactly max_chars fits"
    over = deliver(first.call, segment(1, "y" * 6, final=True), max_chars=12)
    assert over.note == "completed"
    assert over.call.state == "answered"
    assert over.utterance is not None
    assert over.utterance.text == "xxxxxx yyyyyy"
    assert over.utterance.too_long


def test_an_open_call_is_not_due_before_the_timeout() -> None:
    call = deliver(None, segment(0, "hello"), now_ms=1_000).call
    assert expire(call, now_ms=1_000 + TIMEOUT - 1, timeout_ms=TIMEOUT, max_chars=MAX_CHARS) is None


def test_a_call_without_a_final_is_abandoned_with_its_segments_to_dead_letter() -> None:
    call, _ = deliver_all([segment(2, "c"), segment(0, "a")], now_ms=1_000)
    result = expire(call, now_ms=1_001 + TIMEOUT, timeout_ms=TIMEOUT, max_chars=MAX_CHARS)
    assert isinstance(result, ExpiryResult)
    assert result.action == "abandoned"
    assert not result.delete
    assert result.utterance is None
    assert result.call.state == "abandoned"
    assert result.call.ended_ms == 1_001 + TIMEOUT
    assert result.dead_letters == (
        StoredSegment(seq=0, raw=call.raw[0], source=(TOPIC, 0, 0)),
        StoredSegment(seq=2, raw=call.raw[2], source=(TOPIC, 0, 2)),
    )
    assert json.loads(result.dead_letters[0].raw)["transcript"] == "a"
    assert call.state == "open", "the call given is not changed"


def test_a_call_with_a_final_and_a_gap_is_answered_at_expiry() -> None:
    call, _ = deliver_all(
        [segment(1, "b", at="2026-11-25T10:00:01Z"), segment(3, "d", final=True), segment(4, "e")],
        now_ms=1_000,
    )
    assert call.gaps() == (0, 2)
    result = expire(call, now_ms=1_001 + TIMEOUT, timeout_ms=TIMEOUT, max_chars=MAX_CHARS)
    assert result is not None
    assert result.action == "answered"
    assert result.dead_letters == ()
    assert result.call.state == "answered"
    utterance = result.utterance
    assert utterance is not None
    assert utterance.text == "b d"
    assert utterance.gaps == (0, 2)
    assert utterance.segments == 2
    assert utterance.first_at == "2026-11-25T10:00:01Z", (
        "seq 0 is missing: the lowest stored seq's at"
    )
    assert not utterance.too_long
    short = expire(call, now_ms=1_001 + TIMEOUT, timeout_ms=TIMEOUT, max_chars=2)
    assert short is not None and short.utterance is not None and short.utterance.too_long


def test_an_ended_call_is_deleted_after_a_further_timeout() -> None:
    call, _ = deliver_all([segment(0, "a")], now_ms=1_000)
    abandoned = expire(call, now_ms=50_000, timeout_ms=TIMEOUT, max_chars=MAX_CHARS)
    assert abandoned is not None
    ended = abandoned.call
    late = deliver(ended, segment(1, "b", final=True), now_ms=60_000)
    assert late.note == "late", "late segments are still recognised during the grace period"
    assert expire(ended, now_ms=50_000 + TIMEOUT - 1, timeout_ms=TIMEOUT, max_chars=1) is None
    gone = expire(ended, now_ms=50_000 + TIMEOUT, timeout_ms=TIMEOUT, max_chars=1)
    assert gone is not None
    assert gone.delete
    assert gone.action == "delete"
    assert gone.call == ended
    assert gone.utterance is None and gone.dead_letters == ()


def test_an_answered_call_is_deleted_a_timeout_after_it_completed() -> None:
    done = deliver(None, segment(0, "a", final=True), now_ms=1_000).call
    assert expire(done, now_ms=1_000 + TIMEOUT - 1, timeout_ms=TIMEOUT, max_chars=1) is None
    gone = expire(done, now_ms=1_000 + TIMEOUT, timeout_ms=TIMEOUT, max_chars=1)
    assert gone is not None and gone.delete


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_arguments_are_checked(bad: Any) -> None:
    call = deliver(None, segment(0, "a")).call
    with pytest.raises(ValueError, match="timeout_ms"):
        expire(call, now_ms=0, timeout_ms=bad, max_chars=1)
    with pytest.raises(ValueError, match="max_chars"):
        expire(call, now_ms=0, timeout_ms=1, max_chars=bad)
    with pytest.raises(ValueError, match="max_chars"):
        deliver(None, segment(0, "a"), max_chars=bad)


def test_to_dict_round_trips_through_json() -> None:
    open_call, _ = deliver_all([segment(3, "d", final=True), segment(0, "a")])
    answered, _ = deliver_all([segment(0, "x", final=True)])
    expired = expire(open_call, now_ms=10**9, timeout_ms=TIMEOUT, max_chars=MAX_CHARS)
    assert expired is not None
    for call in (open_call, answered, expired.call):
        stored = json.loads(json.dumps(call.to_dict()))
        assert VoiceCall.from_dict(stored) == call
        assert VoiceCall.from_dict(stored).to_dict() == call.to_dict()
    assert VoiceCall.from_dict(open_call.to_dict()).sources[3] == (TOPIC, 0, 3)


def test_from_dict_refuses_an_unknown_state() -> None:
    data = deliver(None, segment(0, "a")).call.to_dict()
    with pytest.raises(ValueError, match="unknown call state"):
        VoiceCall.from_dict({**data, "state": "ringing"})


def test_a_voice_payload_is_parsed() -> None:
    seg = parse_voice_segment(encoded(seq=3, transcript="hi", final=True, extra="ignored"))
    assert seg == VoiceSegment(
        call_id="call-1",
        customer_id="C1",
        seq=3,
        transcript="hi",
        final=True,
        at="2026-11-25T10:00:00+01:00",
    )


@pytest.mark.parametrize(
    ("raw", "error", "says"),
    [
        (None, DecodeError, "empty"),
        (b"", DecodeError, "empty"),
        (b"\xff\xfe", DecodeError, "UTF-8"),
        (b"{nope", DecodeError, "not JSON"),
        (b'"text"', DecodeError, "expected an object"),
        (encoded(call_id=...), ValidationError, "call_id"),
        (encoded(call_id=""), ValidationError, "call_id"),
        (encoded(customer_id=...), ValidationError, "customer_id"),
        (encoded(customer_id=7), ValidationError, "customer_id"),
        (encoded(seq=...), ValidationError, "seq"),
        (encoded(seq="1"), ValidationError, "seq"),
        (encoded(seq=1.5), ValidationError, "seq"),
        (encoded(seq=True), ValidationError, "seq"),
        (encoded(seq=-1), ValidationError, "seq"),
        (encoded(seq=10_001), ValidationError, "10000"),
        (encoded(transcript=None), ValidationError, "transcript"),
        (encoded(final="yes"), ValidationError, "final"),
        (encoded(final=1), ValidationError, "final"),
        (encoded(at=...), ValidationError, "at"),
    ],
)
def test_bad_voice_payloads_raise_a_clear_input_error(
    raw: bytes | None, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        parse_voice_segment(raw)


def test_the_highest_seq_is_accepted() -> None:
    assert parse_voice_segment(encoded(seq=10_000)).seq == 10_000


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[str], list[int]]:
    """A call's transcripts, and the seqs in the order they are delivered."""
    transcripts = draw(st.lists(st.text(alphabet="ab \t", max_size=6), min_size=1, max_size=8))
    order = list(draw(st.permutations(range(len(transcripts)))))
    copies = draw(st.lists(st.integers(0, len(transcripts) - 1), max_size=10))
    for seq in copies:
        order.insert(draw(st.integers(0, len(order))), seq)
    return transcripts, order


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_any_delivery_order_makes_exactly_one_utterance(
    delivery: tuple[list[str], list[int]],
) -> None:
    transcripts, order = delivery
    last = len(transcripts) - 1
    segments = [segment(seq, transcripts[seq], final=seq == last) for seq in order]
    _, results = deliver_all(segments)

    # The call is complete at the first delivery by which every seq has arrived.
    completes_at = max(order.index(seq) for seq in range(len(transcripts)))
    produced = [i for i, result in enumerate(results) if result.utterance is not None]
    assert produced == [completes_at]
    utterance = results[completes_at].utterance
    assert utterance is not None
    assert utterance.text == " ".join(t.strip() for t in transcripts if t.strip())
    assert utterance.segments == len(transcripts)
    assert results[completes_at].note == "completed"
    assert all(r.note in ("stored", "duplicate") for r in results[:completes_at])
    assert all(r.note == "late" for r in results[completes_at + 1 :])
