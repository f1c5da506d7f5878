"""Voice calls: segments of one ``call_id`` assembled into one utterance (SPEC section 3).

A call arrives as segments numbered by ``seq``, from 0, from 1 or from any number; the
segment with ``final: true`` is the last one. Segments may arrive out of order, twice,
or after the call is over. ``add_segment`` folds one segment into a call's state and
says what it did with it; ``expire`` decides what becomes of a call whose time is up.
Both are pure: they return a new ``VoiceCall`` and never change the one they are given,
so a table value is only ever replaced, never edited in place.

Nothing says where a call's numbering starts, so the lowest seq received stands for
the start: a call is answered as soon as its final segment is in and every seq from
the lowest one received up to the final one is there, unless the order of arrival
puts that start in doubt. It is in doubt when the first segment to arrive was not the
lowest seq (the head of the call was reordered: a still lower seq may be on its way)
or was the final one (a final that overtook every earlier segment looks like a call of
one segment). Seq 0 has nothing below it, so a call holding it is never in doubt. A
call with its final segment that is not complete, for a gap or a start in doubt, is
answered with the segments it has once none has arrived for the gap grace. A segment
that arrives after the answer is late: if its words are in no answer, the agent
dead-letters it with that reason.

A call's life: ``open`` while segments arrive; ``answered`` once its utterance has been
produced (complete, or its grace over); ``abandoned`` when it goes silent for the
timeout without a final segment, its segments then being dead-lettered. An ended call
is kept for one more timeout so that late copies of its segments are recognised as
late, then deleted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from app.inbound import Timestamp, _validate, decode_json_object

#: The highest ``seq`` a segment may have: the largest signed 64-bit integer, so a seq
#: taken from a global counter or a Java ``long`` fits.
MAX_SEQ = 2**63 - 1
#: The most a call's seqs may span (final minus lowest); bounds one call's state.
MAX_SPAN = 10_000

CallState = Literal["open", "answered", "abandoned"]
SegmentNote = Literal["stored", "duplicate", "late", "completed", "conflict"]
ExpiryAction = Literal["answered", "abandoned", "delete"]

CALL_STATES: tuple[CallState, ...] = get_args(CallState)

#: (topic, partition, offset) of an inbound message.
Source = tuple[str, int, int]


class VoiceSegment(BaseModel):
    """``support.voice.inbound`` payload: one recognised segment of a call.

    ``seq`` and ``final`` are strict: a string or a float for ``seq``, or a number for
    ``final``, says the producer is not sending what SPEC section 3 describes. A seq
    may start anywhere from 0 to ``MAX_SEQ``; a negative one comes from no numbering.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    call_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    seq: int = Field(ge=0, le=MAX_SEQ, strict=True)
    transcript: str
    final: bool = Field(strict=True)
    at: Timestamp


def parse_voice_segment(raw: bytes | None) -> VoiceSegment:
    """A voice segment from its inbound bytes; raises ``DecodeError`` or ``ValidationError``."""
    return _validate(VoiceSegment, decode_json_object(raw))


@dataclass(frozen=True, kw_only=True)
class VoiceCall:
    """What is known of one call; stored in a table as ``to_dict()``.

    The maps are keyed by ``seq``. Times ending in ``_ms`` are arrival times in
    milliseconds, as passed to ``add_segment`` and ``expire`` as ``now_ms``.
    """

    call_id: str
    customer_id: str
    segments: dict[int, str]  # seq -> transcript
    raw: dict[int, str]  # seq -> the inbound payload as text, for dead-lettering
    sources: dict[int, Source]  # seq -> where the inbound message came from
    at: dict[int, str]  # seq -> the segment's own ``at`` timestamp
    final_seq: int | None
    first_seq: int  # the seq of the segment that arrived first
    first_at_ms: int  # earliest arrival of a stored segment
    last_at_ms: int  # latest arrival of a stored segment
    state: CallState
    ended_ms: int | None = None  # when the call was answered or abandoned

    def __post_init__(self) -> None:
        if self.state not in CALL_STATES:
            raise ValueError(f"unknown call state {self.state!r}; expected one of {CALL_STATES}")
        if (self.state == "open") != (self.ended_ms is None):
            raise ValueError(
                f"call {self.call_id} is {self.state} with ended_ms={self.ended_ms}: "
                "ended_ms is set exactly when the call is answered or abandoned"
            )

    @property
    def arrived_ms(self) -> int:
        """When the call's first segment arrived: latency is measured from it."""
        return self.first_at_ms

    @property
    def lowest_seq(self) -> int:
        """The lowest seq received: where the call's numbering is taken to start."""
        return min(self.segments)

    def gaps(self) -> tuple[int, ...]:
        """The seqs missing between the lowest one received and the final one.

        Empty while no final has arrived. At most ``MAX_SPAN`` long: ``add_segment``
        stores no segment that would make the call span more.
        """
        if self.final_seq is None:
            return ()
        return tuple(
            seq for seq in range(self.lowest_seq, self.final_seq + 1) if seq not in self.segments
        )

    def start_in_doubt(self) -> bool:
        """Whether a seq below the lowest one received may still be on its way.

        So when the first segment to arrive was not the lowest seq, or was the final
        one; never when seq 0, the lowest there is, is in.
        """
        return self.lowest_seq != 0 and (
            self.first_seq != self.lowest_seq or self.first_seq == self.final_seq
        )

    def complete(self) -> bool:
        """Final segment in, every seq from the lowest one up to it, the start not in doubt."""
        # No seq above final_seq is ever stored, so a full count means no gaps.
        return (
            self.final_seq is not None
            and len(self.segments) == self.final_seq - self.lowest_seq + 1
            and not self.start_in_doubt()
        )

    def to_times(self) -> dict[str, Any]:
        """What ``due_ms`` reads; the same keys and values as in ``to_dict``."""
        return {
            "ended_ms": self.ended_ms,
            "final_seq": self.final_seq,
            "last_at_ms": self.last_at_ms,
        }

    def to_dict(self) -> dict[str, Any]:
        """The call as a JSON-able dict; ``VoiceCall.from_dict`` reads it back."""
        return {
            "call_id": self.call_id,
            "customer_id": self.customer_id,
            "segments": {str(seq): text for seq, text in self.segments.items()},
            "raw": {str(seq): text for seq, text in self.raw.items()},
            "sources": {str(seq): list(source) for seq, source in self.sources.items()},
            "at": {str(seq): at for seq, at in self.at.items()},
            "final_seq": self.final_seq,
            "first_seq": self.first_seq,
            "first_at_ms": self.first_at_ms,
            "last_at_ms": self.last_at_ms,
            "state": self.state,
            "ended_ms": self.ended_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VoiceCall:
        """The call ``to_dict`` wrote (JSON turns the int keys into strings)."""
        segments = {int(seq): text for seq, text in data["segments"].items()}
        return cls(
            call_id=data["call_id"],
            customer_id=data["customer_id"],
            segments=segments,
            raw={int(seq): text for seq, text in data["raw"].items()},
            sources={
                int(seq): (str(topic), int(partition), int(offset))
                for seq, (topic, partition, offset) in data["sources"].items()
            },
            at={int(seq): at for seq, at in data["at"].items()},
            final_seq=data["final_seq"],
            # A call stored before first_seq was kept: its lowest seq stands for the first.
            first_seq=data.get("first_seq", min(segments)),
            first_at_ms=data["first_at_ms"],
            last_at_ms=data["last_at_ms"],
            state=data["state"],  # checked by __post_init__
            ended_ms=data["ended_ms"],
        )


@dataclass(frozen=True, kw_only=True)
class Utterance:
    """What the customer said in one call: its segments' transcripts, in seq order."""

    call_id: str
    customer_id: str
    text: str
    first_at: str  # ``at`` of the lowest stored seq
    arrived_ms: int  # arrival of the call's first segment
    segments: int  # how many segments the text is made of
    gaps: tuple[int, ...] = ()  # seqs missing when the call was answered after its grace
    start_in_doubt: bool = False  # answered after its grace, a lower seq perhaps missing
    too_long: bool = False  # ``text`` is longer than ``max_chars``: dead-letter the call


@dataclass(frozen=True, kw_only=True)
class StoredSegment:
    """One segment of a call as it arrived: its payload text and where it came from."""

    seq: int
    raw: str
    source: Source


@dataclass(frozen=True, kw_only=True)
class SegmentResult:
    """What ``add_segment`` did with a segment.

    ``call`` is the call's state afterwards (the same object when the segment was
    ignored). ``utterance`` is set on the one segment that completes the call
    (``note == "completed"``). ``reason`` explains a ``duplicate``, ``late`` or
    ``conflict`` note, for logs and dead-letter headers.
    """

    call: VoiceCall
    note: SegmentNote
    utterance: Utterance | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ExpiryResult:
    """What ``expire`` decided for a call whose time is up.

    - ``action == "answered"``: the call had its final segment but was not complete
      when its grace ran out; ``utterance`` is built from the segments it has
      (``utterance.gaps`` names the missing seqs; ``utterance.start_in_doubt`` says a
      seq below them may be missing too) and ``call`` is the answered call.
    - ``action == "abandoned"``: no final segment ever arrived; ``call`` is the
      abandoned call to store and ``dead_letters`` holds its segments, in seq order,
      to send to the dead-letter topic.
    - ``action == "delete"`` (``delete`` is true): the call ended at least
      ``timeout_ms`` ago; remove it from the table. ``call`` is the call unchanged.
    """

    action: ExpiryAction
    call: VoiceCall
    utterance: Utterance | None = None
    dead_letters: tuple[StoredSegment, ...] = ()

    @property
    def delete(self) -> bool:
        return self.action == "delete"


def stored_segments(call: VoiceCall) -> tuple[StoredSegment, ...]:
    """The call's segments in seq order, with their original payloads and sources."""
    return tuple(
        StoredSegment(seq=seq, raw=call.raw[seq], source=call.sources[seq])
        for seq in sorted(call.segments)
    )


def add_segment(
    call: VoiceCall | None,
    segment: VoiceSegment,
    *,
    raw: str,
    source: Source,
    now_ms: int,
    max_chars: int,
) -> SegmentResult:
    """Fold ``segment`` into ``call`` (``None`` for a call not seen yet).

    ``raw`` is the segment's inbound payload as text and ``source`` where it came
    from; ``now_ms`` is its arrival time. The first version of anything wins: a
    segment that contradicts what is stored is ignored as a ``conflict``.
    """
    _check_positive("max_chars", max_chars)
    if call is None:
        return _stored(_new_call(segment, raw=raw, source=source, now_ms=now_ms), max_chars)
    if call.call_id != segment.call_id:
        raise ValueError(f"segment of call {segment.call_id!r} added to call {call.call_id!r}")
    if call.state != "open":
        return _ignored(call, "late", _late_reason(call, segment.seq))
    if segment.customer_id != call.customer_id:
        return _ignored(
            call,
            "conflict",
            f"segment {segment.seq} is for customer {segment.customer_id!r}, "
            f"but call {call.call_id} is customer {call.customer_id!r}'s",
        )
    if segment.seq in call.segments:
        # A redelivery repeats both the transcript and the final flag.
        was_final = call.final_seq == segment.seq
        if call.segments[segment.seq] == segment.transcript and segment.final == was_final:
            return _ignored(call, "duplicate", f"segment {segment.seq} is already stored")
        return _ignored(
            call, "conflict", f"segment {segment.seq} differs from the one already stored"
        )
    if call.final_seq is not None and segment.final:
        return _ignored(
            call,
            "conflict",
            f"segment {segment.seq} is final, but segment {call.final_seq} already was",
        )
    if call.final_seq is not None and segment.seq > call.final_seq:
        return _ignored(
            call,
            "conflict",
            f"segment {segment.seq} comes after the final segment {call.final_seq}",
        )
    # A final below a stored seq contradicts that segment; the stored one came first.
    if segment.final and max(call.segments) > segment.seq:
        return _ignored(
            call,
            "conflict",
            f"segment {segment.seq} is final, but segment {max(call.segments)} is stored",
        )
    far = max(call.segments) if segment.seq < call.lowest_seq else call.lowest_seq
    if abs(segment.seq - far) > MAX_SPAN:
        return _ignored(
            call,
            "conflict",
            f"segment {segment.seq} is {abs(segment.seq - far)} seqs from segment {far} of "
            f"the same call; a call spans at most {MAX_SPAN} seqs",
        )
    updated = dataclasses.replace(
        call,
        segments={**call.segments, segment.seq: segment.transcript},
        raw={**call.raw, segment.seq: raw},
        sources={**call.sources, segment.seq: source},
        at={**call.at, segment.seq: segment.at},
        final_seq=segment.seq if segment.final else call.final_seq,
        first_at_ms=min(call.first_at_ms, now_ms),
        last_at_ms=max(call.last_at_ms, now_ms),
    )
    return _stored(updated, max_chars)


def expire(
    call: VoiceCall, *, now_ms: int, timeout_ms: int, grace_ms: int, max_chars: int
) -> ExpiryResult | None:
    """What becomes of ``call`` at ``now_ms``, or ``None`` while it is not due.

    An open call with its final segment is due once no segment has arrived for
    ``grace_ms``; one without, for ``timeout_ms``; an ended one ``timeout_ms`` after it
    ended. ``max_chars`` is the longest utterance a call answered after its grace may
    have before it is flagged ``too_long``.
    """
    _check_positive("max_chars", max_chars)
    if now_ms < due_ms(call.to_times(), timeout_ms=timeout_ms, grace_ms=grace_ms):
        return None
    if call.ended_ms is not None:  # answered or abandoned
        return ExpiryResult(action="delete", call=call)
    if call.final_seq is None:
        abandoned = dataclasses.replace(call, state="abandoned", ended_ms=now_ms)
        return ExpiryResult(action="abandoned", call=abandoned, dead_letters=stored_segments(call))
    answered = dataclasses.replace(call, state="answered", ended_ms=now_ms)
    return ExpiryResult(action="answered", call=answered, utterance=_utterance(answered, max_chars))


def due_ms(times: Mapping[str, Any], *, timeout_ms: int, grace_ms: int) -> int:
    """When a call is next due for ``expire``, from the times of ``VoiceCall.to_times``.

    ``to_times`` is a subset of ``to_dict``, so a sweep can ask this of a stored call
    without reading its segments back.
    """
    _check_positive("timeout_ms", timeout_ms)
    _check_positive("grace_ms", grace_ms)
    if times["ended_ms"] is not None:  # answered or abandoned: forgotten after the timeout
        return int(times["ended_ms"]) + timeout_ms
    wait = timeout_ms if times["final_seq"] is None else grace_ms
    return int(times["last_at_ms"]) + wait


def grace_note(utterance: Utterance) -> str:
    """For the log: a call answered after its grace, and what it may be missing."""
    missing = []
    if utterance.gaps:
        shown = ", ".join(str(seq) for seq in utterance.gaps[:10])
        more = f" and {len(utterance.gaps) - 10} more" if len(utterance.gaps) > 10 else ""
        missing.append(f"seq {shown}{more}")
    if utterance.start_in_doubt:
        missing.append("perhaps seqs below the lowest one received")
    return (
        f"call {utterance.call_id} answered after its gap grace with {utterance.segments} "
        f"segment(s); missing: {'; '.join(missing) or 'nothing'}"
    )


def _new_call(segment: VoiceSegment, *, raw: str, source: Source, now_ms: int) -> VoiceCall:
    return VoiceCall(
        call_id=segment.call_id,
        customer_id=segment.customer_id,
        segments={segment.seq: segment.transcript},
        raw={segment.seq: raw},
        sources={segment.seq: source},
        at={segment.seq: segment.at},
        final_seq=segment.seq if segment.final else None,
        first_seq=segment.seq,
        first_at_ms=now_ms,
        last_at_ms=now_ms,
        state="open",
    )


def _stored(call: VoiceCall, max_chars: int) -> SegmentResult:
    """The result for a segment just stored in ``call``: completing it if it can."""
    if not call.complete():
        return SegmentResult(call=call, note="stored")
    answered = dataclasses.replace(call, state="answered", ended_ms=call.last_at_ms)
    return SegmentResult(call=answered, note="completed", utterance=_utterance(answered, max_chars))


def _late_reason(call: VoiceCall, seq: int) -> str:
    ended = f"arrived after call {call.call_id} was {call.state}"
    if seq in call.segments:
        return f"segment {seq} {ended}; a copy of it had arrived in time"
    if call.state == "abandoned":
        return f"segment {seq} {ended}"
    used = sorted(call.segments)
    return (
        f"segment {seq} {ended} from segments {used[0]}-{used[-1]} "
        f"({len(used)} of them); its words are not in the answer"
    )


def _ignored(call: VoiceCall, note: SegmentNote, reason: str) -> SegmentResult:
    return SegmentResult(call=call, note=note, reason=reason)


def _utterance(call: VoiceCall, max_chars: int) -> Utterance:
    seqs = sorted(call.segments)
    parts = (call.segments[seq].strip() for seq in seqs)
    text = " ".join(part for part in parts if part)
    return Utterance(
        call_id=call.call_id,
        customer_id=call.customer_id,
        text=text,
        first_at=call.at[seqs[0]],
        arrived_ms=call.arrived_ms,
        segments=len(seqs),
        gaps=call.gaps(),
        start_in_doubt=call.start_in_doubt(),
        too_long=len(text) > max_chars,
    )


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be an integer > 0, got {value!r}")
