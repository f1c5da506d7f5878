"""Voice calls: segments in any order become one utterance, exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import DecodeError, ValidationError
from app.voice import (
    MAX_SEQ,
    MAX_SPAN,
    ExpiryResult,
    SegmentResult,
    StoredSegment,
    Utterance,
    VoiceCall,
    VoiceSegment,
    add_segment,
    due_ms,
    expire,
    grace_note,
    parse_voice_segment,
)

TOPIC = "support.voice.inbound"
TIMEOUT = 30_000
GRACE = 3_000
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


def due(call: VoiceCall, *, now_ms: int, max_chars: int = MAX_CHARS) -> ExpiryResult | None:
    return expire(call, now_ms=now_ms, timeout_ms=TIMEOUT, grace_ms=GRACE, max_chars=max_chars)


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
        [segment(0, "a"), segment(2, "c", final=True), segment(3, "x"), segment(1, "b")]
    )
    assert [r.note for r in results] == ["stored", "stored", "conflict", "completed"]
    assert results[-1].utterance is not None
    assert results[-1].utterance.text == "a b c"
    assert results[-1].utterance.arrived_ms == 1_000, "arrival of the first segment"


@pytest.mark.parametrize("start", [0, 1, 7, 48_213_345, MAX_SEQ - 2])
def test_a_call_is_answered_on_its_final_whatever_its_first_seq(start: int) -> None:
    _, results = deliver_all(
        [
            segment(start, "my parcel"),
            segment(start + 1, "is"),
            segment(start + 2, "late", final=True),
        ]
    )
    assert [r.note for r in results] == ["stored", "stored", "completed"]
    assert results[-1].utterance is not None
    assert results[-1].utterance.text == "my parcel is late"
    assert results[-1].utterance.gaps == ()


@pytest.mark.parametrize("start", [0, 1, 7])
def test_out_of_order_and_duplicated_segments_complete_on_the_one_that_closes_the_gap(
    start: int,
) -> None:
    a, b, c, d = (start + i for i in range(4))
    order = [a, c, a, d, c, b, d, b]
    words = {a: "where", b: "is", c: "my", d: "order"}
    call, results = deliver_all([segment(s, words[s], final=s == d) for s in order])
    notes = ["stored", "stored", "duplicate", "stored", "duplicate", "completed", "late", "late"]
    assert [r.note for r in results] == notes
    assert results[5].utterance is not None
    assert results[5].utterance.text == "where is my order"
    assert call.state == "answered"


def test_a_call_whose_final_arrives_first_completes_on_seq_0() -> None:
    _, results = deliver_all([segment(1, "world", final=True), segment(0, "hello")])
    assert [r.note for r in results] == ["stored", "completed"]
    assert results[1].utterance is not None
    assert results[1].utterance.text == "hello world"
    assert results[1].utterance.arrived_ms == 1_000, "arrival of the first segment, not seq 0"


@pytest.mark.parametrize(
    "order",
    [
        [3, 1, 2],  # the final first: the call's head was overtaken
        [2, 1, 3],  # the lowest seq after another one: the head was reordered
        [3, 2, 1],
    ],
)
def test_a_call_whose_start_is_in_doubt_is_answered_after_the_grace(order: list[int]) -> None:
    words = {1: "a", 2: "b", 3: "c"}
    call, results = deliver_all([segment(s, words[s], final=s == 3) for s in order])
    assert [r.note for r in results] == ["stored"] * 3
    assert call.gaps() == () and call.start_in_doubt()
    assert due(call, now_ms=call.last_at_ms + GRACE - 1) is None
    result = due(call, now_ms=call.last_at_ms + GRACE)
    assert result is not None and result.utterance is not None
    assert result.utterance.text == "a b c"
    assert result.utterance.gaps == () and result.utterance.start_in_doubt
    assert grace_note(result.utterance) == (
        "call call-1 answered after its gap grace with 3 segment(s); "
        "missing: perhaps seqs below the lowest one received"
    )


@pytest.mark.parametrize("seq", [1, 7])
def test_a_lone_final_numbered_above_0_waits_for_the_grace(seq: int) -> None:
    alone = deliver(None, segment(seq, "where is my order", final=True))
    assert alone.note == "stored"
    result = due(alone.call, now_ms=1_000 + GRACE)
    assert result is not None and result.utterance is not None
    assert result.utterance.text == "where is my order"
    assert deliver(None, segment(0, "hi", final=True)).note == "completed", "seq 0 is the start"


def test_a_lower_seq_after_the_answer_is_late_and_not_in_it() -> None:
    call, results = deliver_all([segment(1, "hello"), segment(2, "world", final=True)])
    assert [r.note for r in results] == ["stored", "completed"]
    late = deliver(call, segment(0, "oh"), now_ms=5_000)
    assert late.note == "late" and late.utterance is None and late.call == call
    assert late.reason == (
        "segment 0 arrived after call call-1 was answered from segments 1-2 (2 of them); "
        "its words are not in the answer"
    )


def test_a_lower_seq_during_the_grace_is_kept_and_restarts_the_grace() -> None:
    first, results = deliver_all([segment(3, "c"), segment(5, "e", final=True)], now_ms=1_000)
    assert [r.note for r in results] == ["stored", "stored"]
    lower = deliver(first, segment(1, "a"), now_ms=2_500)
    assert lower.note == "stored"
    assert lower.call.gaps() == (2, 4)
    assert due(lower.call, now_ms=1_001 + GRACE) is None, "the grace counts from the last segment"
    filled = deliver(lower.call, segment(4, "d"), now_ms=3_000)
    assert filled.note == "stored" and filled.call.gaps() == (2,)
    answered = due(filled.call, now_ms=3_000 + GRACE)
    assert answered is not None and answered.utterance is not None
    assert answered.utterance.text == "a c d e"
    assert answered.utterance.gaps == (2,)


def test_a_lower_seq_during_the_grace_then_the_missing_one_complete_the_call() -> None:
    call, _ = deliver_all([segment(1, "b"), segment(3, "d", final=True), segment(0, "a")])
    assert call.gaps() == (2,)
    done = deliver(call, segment(2, "c"), now_ms=2_000)
    assert done.note == "completed"
    assert done.utterance is not None and done.utterance.text == "a b c d"


def test_copies_of_the_final_segment() -> None:
    call, results = deliver_all(
        [segment(1, "a"), segment(3, "c", final=True), segment(3, "c", final=True)]
    )
    assert [r.note for r in results] == ["stored", "stored", "duplicate"]
    not_final = deliver(call, segment(3, "c"))
    assert not_final.note == "conflict", "a copy of the final must say it is final"
    done = deliver(call, segment(2, "b"))
    assert done.note == "completed"
    again = deliver(done.call, segment(3, "c", final=True), now_ms=9_000)
    assert again.note == "late" and again.utterance is None and again.call == done.call


def test_a_call_spans_at_most_max_span_seqs() -> None:
    start = 1_000_000
    call = deliver(None, segment(start, "a")).call
    widest = deliver(call, segment(start + MAX_SPAN, "z", final=True))
    assert widest.note == "stored"
    assert len(widest.call.gaps()) == MAX_SPAN - 1
    above = deliver(call, segment(start + MAX_SPAN + 1, "z", final=True))
    assert above.note == "conflict"
    assert f"at most {MAX_SPAN} seqs" in above.reason
    top = deliver(None, segment(start, "z")).call
    below = deliver(top, segment(start - MAX_SPAN - 1, "a"))
    assert below.note == "conflict"
    assert deliver(top, segment(start - MAX_SPAN, "a")).note == "stored"


def test_the_gap_grace_applies_only_to_calls_with_their_final() -> None:
    call, _ = deliver_all([segment(1, "a"), segment(3, "c")], now_ms=1_000)
    assert due(call, now_ms=1_001 + GRACE) is None
    assert due(call, now_ms=1_001 + TIMEOUT - 1) is None
    result = due(call, now_ms=1_001 + TIMEOUT)
    assert result is not None and result.action == "abandoned"


def test_due_ms_reads_the_stored_call_and_says_when_expire_acts() -> None:
    without_final, _ = deliver_all([segment(4, "a"), segment(5, "b")], now_ms=1_000)
    with_gap, _ = deliver_all([segment(4, "a"), segment(6, "c", final=True)], now_ms=1_000)
    answered = deliver(None, segment(0, "a", final=True), now_ms=1_000).call
    expected = [(without_final, 1_001 + TIMEOUT), (with_gap, 1_001 + GRACE)]
    for call, when in [*expected, (answered, 1_000 + TIMEOUT)]:
        stored = json.loads(json.dumps(call.to_dict()))
        assert due_ms(stored, timeout_ms=TIMEOUT, grace_ms=GRACE) == when
        assert due_ms(call.to_times(), timeout_ms=TIMEOUT, grace_ms=GRACE) == when
        assert due(call, now_ms=when - 1) is None
        assert due(call, now_ms=when) is not None


def test_the_grace_note_names_at_most_ten_missing_seqs() -> None:
    note = grace_note(
        Utterance(
            call_id="c9",
            customer_id="C",
            text="x",
            first_at="t",
            arrived_ms=0,
            segments=2,
            gaps=tuple(range(2, 14)),
        )
    )
    assert note == (
        "call c9 answered after its gap grace with 2 segment(s); "
        "missing: seq 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 2 more"
    )


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
    call, results = deliver_all([segment(0, "a"), segment(2, "c", final=True), segment(3, "d")])
    assert results[-1].note == "conflict"
    assert "after the final" in results[-1].reason
    assert call.segments == {0: "a", 2: "c"}


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
    assert "a copy of it had arrived in time" in deliver(done.call, segment(0, "x")).reason
    assert "not in the answer" in deliver(done.call, segment(1, "x")).reason


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
    assert (
        expire(
            call,
            now_ms=1_000 + TIMEOUT - 1,
            timeout_ms=TIMEOUT,
            grace_ms=GRACE,
            max_chars=MAX_CHARS,
        )
        is None
    )


def test_a_call_without_a_final_is_abandoned_with_its_segments_to_dead_letter() -> None:
    call, _ = deliver_all([segment(2, "c"), segment(0, "a")], now_ms=1_000)
    result = expire(
        call, now_ms=1_001 + TIMEOUT, timeout_ms=TIMEOUT, grace_ms=GRACE, max_chars=MAX_CHARS
    )
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


def test_a_call_with_a_final_and_a_gap_is_answered_after_the_grace() -> None:
    call, results = deliver_all(
        [segment(1, "b", at="2026-11-25T10:00:01Z"), segment(3, "d", final=True), segment(4, "e")],
        now_ms=1_000,
    )
    assert [r.note for r in results] == ["stored", "stored", "conflict"]
    assert call.gaps() == (2,), "seq 0 is not missed: the lowest seq received is the start"
    assert call.last_at_ms == 1_001
    assert due(call, now_ms=1_001 + GRACE - 1) is None
    result = due(call, now_ms=1_001 + GRACE)
    assert result is not None
    assert result.action == "answered"
    assert result.dead_letters == ()
    assert result.call.state == "answered"
    assert result.call.ended_ms == 1_001 + GRACE
    utterance = result.utterance
    assert utterance is not None
    assert utterance.text == "b d"
    assert utterance.gaps == (2,)
    assert utterance.segments == 2
    assert utterance.first_at == "2026-11-25T10:00:01Z", "the lowest stored seq's at"
    assert not utterance.too_long
    assert grace_note(utterance) == (
        "call call-1 answered after its gap grace with 2 segment(s); missing: seq 2"
    )
    short = due(call, now_ms=1_001 + GRACE, max_chars=2)
    assert short is not None and short.utterance is not None and short.utterance.too_long


def test_an_ended_call_is_deleted_after_a_further_timeout() -> None:
    call, _ = deliver_all([segment(0, "a")], now_ms=1_000)
    abandoned = expire(call, now_ms=50_000, timeout_ms=TIMEOUT, grace_ms=GRACE, max_chars=MAX_CHARS)
    assert abandoned is not None
    ended = abandoned.call
    late = deliver(ended, segment(1, "b", final=True), now_ms=60_000)
    assert late.note == "late", "late segments are still recognised during the grace period"
    assert (
        expire(ended, now_ms=50_000 + TIMEOUT - 1, timeout_ms=TIMEOUT, grace_ms=GRACE, max_chars=1)
        is None
    )
    gone = expire(ended, now_ms=50_000 + TIMEOUT, timeout_ms=TIMEOUT, grace_ms=GRACE, max_chars=1)
    assert gone is not None
    assert gone.delete
    assert gone.action == "delete"
    assert gone.call == ended
    assert gone.utterance is None and gone.dead_letters == ()


def test_an_answered_call_is_deleted_a_timeout_after_it_completed() -> None:
    done = deliver(None, segment(0, "a", final=True), now_ms=1_000).call
    assert (
        expire(done, now_ms=1_000 + TIMEOUT - 1, timeout_ms=TIMEOUT, grace_ms=GRACE, max_chars=1)
        is None
    )
    gone = expire(done, now_ms=1_000 + TIMEOUT, timeout_ms=TIMEOUT, grace_ms=GRACE, max_chars=1)
    assert gone is not None and gone.delete


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_arguments_are_checked(bad: Any) -> None:
    call = deliver(None, segment(0, "a")).call
    with pytest.raises(ValueError, match="grace_ms"):
        expire(call, now_ms=0, timeout_ms=1, grace_ms=bad, max_chars=1)
    with pytest.raises(ValueError, match="timeout_ms"):
        expire(call, now_ms=0, timeout_ms=bad, grace_ms=1, max_chars=1)
    with pytest.raises(ValueError, match="max_chars"):
        expire(call, now_ms=0, timeout_ms=1, grace_ms=1, max_chars=bad)
    with pytest.raises(ValueError, match="max_chars"):
        deliver(None, segment(0, "a"), max_chars=bad)


def test_to_dict_round_trips_through_json() -> None:
    open_call, _ = deliver_all([segment(1, "b"), segment(3, "d", final=True)])
    assert open_call.state == "open"
    answered, _ = deliver_all([segment(0, "x", final=True)])
    expired = expire(
        open_call, now_ms=10**9, timeout_ms=TIMEOUT, grace_ms=GRACE, max_chars=MAX_CHARS
    )
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
        (encoded(seq="7"), ValidationError, "seq"),
        (encoded(seq="x"), ValidationError, "seq"),
        (encoded(seq=None), ValidationError, "seq"),
        (encoded(seq=[1]), ValidationError, "seq"),
        (encoded(seq=-1), ValidationError, "seq"),
        (encoded(seq=-(2**70)), ValidationError, "seq"),
        (encoded(seq=2**63), ValidationError, "9223372036854775807"),
        (encoded(seq=10**400), ValidationError, "seq"),
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


@pytest.mark.parametrize("seq", [0, 1, 7, 10_001, 1_733_650_000_123, 2**63 - 1])
def test_any_non_negative_64_bit_seq_is_accepted(seq: int) -> None:
    assert parse_voice_segment(encoded(seq=seq)).seq == seq


@dataclass(frozen=True)
class Delivery:
    """A call numbered from ``start``, and the seqs in the order they are delivered."""

    start: int
    transcripts: list[str]
    order: list[int]  # seqs, with duplicates, in delivery order

    @property
    def final(self) -> int:
        return self.start + len(self.transcripts) - 1

    def text(self, seqs: Iterable[int]) -> str:
        parts = (self.transcripts[seq - self.start].strip() for seq in sorted(seqs))
        return " ".join(part for part in parts if part)


@st.composite
def deliveries(draw: st.DrawFn, *, drop: bool = False) -> Delivery:
    start = draw(st.sampled_from([0, 1, 7]) | st.integers(0, MAX_SEQ - 20))
    transcripts = draw(st.lists(st.text(alphabet="ab \t", max_size=6), min_size=1, max_size=8))
    seqs = list(range(start, start + len(transcripts)))
    if drop:  # lose some segments on the way, never the final one
        seqs = [seq for seq in seqs[:-1] if draw(st.booleans())] + seqs[-1:]
    order = list(draw(st.permutations(seqs)))
    for seq in draw(st.lists(st.sampled_from(seqs), max_size=10)):
        order.insert(draw(st.integers(0, len(order))), seq)
    return Delivery(start=start, transcripts=transcripts, order=order)


def completion(delivery: Delivery) -> int | None:
    """The first delivery by which the final and every seq from the lowest one are in,
    the first segment delivered being the lowest one and not the final, or seq 0 in."""
    arrived: set[int] = set()
    first = delivery.order[0]
    for i, seq in enumerate(delivery.order):
        arrived.add(seq)
        lowest = min(arrived)
        start_known = lowest == 0 or (first == lowest and first != delivery.final)
        whole = arrived >= set(range(lowest, delivery.final + 1))
        if delivery.final in arrived and whole and start_known:
            return i
    return None


@settings(max_examples=500, deadline=None)
@given(deliveries(drop=True))
def test_any_delivery_makes_exactly_one_utterance_as_soon_as_it_can(delivery: Delivery) -> None:
    segments = [
        segment(seq, delivery.transcripts[seq - delivery.start], final=seq == delivery.final)
        for seq in delivery.order
    ]
    call, results = deliver_all(segments, now_ms=1_000)
    completes_at = completion(delivery)
    produced = [i for i, result in enumerate(results) if result.utterance is not None]
    if completes_at is None:
        # A gap never filled, or the start in doubt: answered once the grace is over.
        assert produced == []
        assert all(r.note in ("stored", "duplicate") for r in results)
        last = 1_000 + max(delivery.order.index(seq) for seq in set(delivery.order))
        assert call.last_at_ms == last
        assert due(call, now_ms=last + GRACE - 1) is None
        result = due(call, now_ms=last + GRACE)
        assert result is not None and result.action == "answered"
        utterance = result.utterance
        assert utterance is not None
        assert utterance.text == delivery.text(set(delivery.order))
        lowest = min(delivery.order)
        missing = set(range(lowest, delivery.final + 1)) - set(delivery.order)
        assert utterance.gaps == tuple(sorted(missing))
        assert utterance.start_in_doubt == (lowest != 0 and delivery.order[0] != lowest) or (
            lowest != 0 and delivery.order[0] == delivery.final
        )
        assert utterance.gaps or utterance.start_in_doubt
        return
    assert produced == [completes_at]
    result = results[completes_at]
    assert result.note == "completed"
    assert result.utterance is not None
    used = set(delivery.order[: completes_at + 1])
    assert result.utterance.text == delivery.text(used)
    assert result.utterance.segments == len(used)
    assert result.utterance.gaps == ()
    assert all(r.note in ("stored", "duplicate") for r in results[:completes_at])
    assert all(r.note == "late" for r in results[completes_at + 1 :])


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_a_call_whose_first_segment_comes_first_is_whole_when_it_completes(
    delivery: Delivery,
) -> None:
    """When the lowest seq comes first, the call completes exactly when the last one arrives.

    Unless it is the only one: a lone final above 0 may have overtaken earlier segments.
    """
    order = [seq for seq in delivery.order if seq != delivery.start]
    order.insert(0, delivery.start)
    segments = [
        segment(seq, delivery.transcripts[seq - delivery.start], final=seq == delivery.final)
        for seq in order
    ]
    _, results = deliver_all(segments)
    everything_at = max(order.index(seq) for seq in range(delivery.start, delivery.final + 1))
    produced = [i for i, result in enumerate(results) if result.utterance is not None]
    if delivery.start != 0 and len(delivery.transcripts) == 1:
        assert produced == []
        return
    assert produced == [everything_at]
    utterance = results[everything_at].utterance
    assert utterance is not None
    assert utterance.text == delivery.text(range(delivery.start, delivery.final + 1))
    assert utterance.segments == len(delivery.transcripts)
