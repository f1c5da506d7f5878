"""Voice: segments assembled into one query per call, in a changelog-backed table.

Segments arrive re-keyed by customer on ``flowdesk.voice`` (``agents.ingest``), so
all of a call's segments, and its table entry, are on one partition. The plain
rules (order, duplicates, completion, expiry) are in ``app.voice``; this agent
keeps the table and sends what they decide. It handles one event at a time, which
is what allows it to write the table.

Expiry is driven through the log: the leader sends a tick to every partition of
``flowdesk.voice`` every few seconds, and the owner of that partition sweeps its
calls while handling the tick, so table writes (and their changelog records) happen
inside an event of the right partition, as Faust requires. A call waiting out its
gap grace would wait for the next tick as well; instead, the worker that stored it
sends a check for that one call to its partition when the grace is due to end (a
sweep still finds the call if that worker stops first).

A segment of a call already answered or abandoned changes nothing: a copy of a
segment that was used is counted (``late``); one whose words no answer used is
dead-lettered (``voice_call``), with the reason, so that they are not lost unseen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust import StreamT
from faust.types import EventT

from app.acks import acked_when_done
from app.dlq import dead_letter, header_dict, send_dead_letter, source_of
from app.errors import CallAbandoned, InputError, ValidationError, VoiceCallError
from app.inbound import prepare_query
from app.logs import key_text, log_context
from app.main import app
from app.metrics import EVENTS
from app.settings import get_settings
from app.sizes import check_record, check_table_value
from app.topics import queries_topic, voice_topic
from app.voice import (
    StoredSegment,
    Utterance,
    VoiceCall,
    add_segment,
    due_ms,
    expire,
    grace_note,
    parse_voice_segment,
    stored_segments,
)
from app.wire import query_codec
from tables.voice import voice_calls

logger = logging.getLogger(__name__)
settings = get_settings()
#: The largest record a worker sends (``app.sizes``).
LIMIT = settings.producer_max_request_size

TICK_HEADER = "flowdesk.tick"
CHECK_HEADER = "flowdesk.check"  # value: the call id to look at
TIMEOUT_MS = round(settings.voice_call_timeout * 1000)
GRACE_MS = round(settings.voice_gap_grace * 1000)
#: How often calls are checked for expiry: a quarter of the timeout, within 0.5-15 s.
SWEEP_INTERVAL = min(max(settings.voice_call_timeout / 4, 0.5), 15.0)

#: Checks being sent, kept so that they are not garbage-collected while they run.
_sending: set[asyncio.Task[Any]] = set()


def now_ms() -> int:
    return int(time.time() * 1000)


@app.timer(interval=SWEEP_INTERVAL, on_leader=True)
async def voice_ticks() -> None:
    """One tick per ``flowdesk.voice`` partition; each owner sweeps its own calls."""
    for partition in range(settings.topic_partitions):
        await voice_topic.send(value=b"", partition=partition, headers=[(TICK_HEADER, b"1")])


@app.agent(voice_topic)
async def assemble_voice(stream: StreamT) -> None:
    async for event in acked_when_done(stream):
        message = event.message
        # Segments are keyed by customer (agents.ingest); ticks have no key.
        with log_context(customer_id=key_text(message.key)):
            try:
                headers = header_dict(message)
                if TICK_HEADER in headers:
                    await sweep(message.partition)
                elif CHECK_HEADER in headers:
                    await check(headers[CHECK_HEADER], message.partition)
                else:
                    arrived = int(headers.get("arrived_ms", b"0") or 0) or now_ms()
                    await on_segment(event, arrived)
            except Exception as exc:  # bad input, or a bug: park it, never stop the stream
                await dead_letter(event, exc)


#: Room a call stored with a new segment keeps for its later changes of state (answered,
#: abandoned), so that the sweep never finds a call it cannot store.
STATE_ROOM = 1024


def _store(call: VoiceCall, partition: int, *, room: int = 0) -> None:
    """Write the call to the table; ``TooLarge`` when it would not fit in a changelog
    record with ``room`` bytes to spare."""
    key = call.call_id.encode()
    value = {"partition": partition, "call": call.to_dict()}
    check_table_value(voice_calls, key, value, limit=LIMIT - room, what="the call")
    voice_calls[key] = value


async def on_segment(event: EventT, arrived_ms: int) -> None:
    message = event.message
    raw = message.value or b""
    segment = parse_voice_segment(raw)
    with log_context(query_id=segment.call_id, customer_id=segment.customer_id):
        key = segment.call_id.encode()
        stored: dict[str, Any] | None = voice_calls.get(key)
        call = VoiceCall.from_dict(stored["call"]) if stored else None
        result = add_segment(
            call,
            segment,
            raw=raw.decode("utf-8"),
            source=source_of(message),
            now_ms=arrived_ms,
            max_chars=settings.max_text_chars,
        )
        if result.call is not call:
            _store(result.call, message.partition, room=STATE_ROOM)
            if result.note == "stored" and result.call.final_seq is not None:
                schedule_check(result.call, message.partition)
        EVENTS.labels(stage="voice", result=result.note).inc()
        if result.note == "conflict" or (
            result.note == "late" and call is not None and segment.seq not in call.segments
        ):
            # A segment whose words no answer used: park it, with why.
            raise VoiceCallError(
                f"segment {segment.seq} of call {segment.call_id}: {result.reason}"
            )
        if result.note == "late":
            logger.info("ignored: %s", result.reason)
        if result.utterance is not None:
            await answer(result.call, result.utterance, completed_ms=arrived_ms)


async def answer(call: VoiceCall, utterance: Utterance, *, completed_ms: int) -> None:
    """Send the call's query; a call that cannot be one has its segments dead-lettered."""
    first = stored_segments(call)[0]
    try:
        if utterance.too_long:
            raise ValidationError(
                f"call transcript has {len(utterance.text)} characters, more than the limit "
                f"{settings.max_text_chars} (FLOWDESK_MAX_TEXT_CHARS)"
            )
        query = prepare_query(
            query_id=utterance.call_id,
            customer_id=utterance.customer_id,
            channel="voice",
            text=utterance.text,
            received_at=utterance.first_at,
            # Latency counts from the moment the call could be answered.
            arrived_ms=completed_ms,
            source=first.source,
            max_chars=settings.max_text_chars,
        )
        key, value = query.customer_id.encode(), query_codec.encode(query)
        check_record(key, value, limit=LIMIT, what="the call's query")
    except InputError as exc:
        await _dead_letter_segments(stored_segments(call), exc)
        return
    await queries_topic.send(key=key, value=value)
    EVENTS.labels(stage="ingest", result="voice").inc()


async def _dead_letter_segments(segments: tuple[StoredSegment, ...], error: InputError) -> None:
    for segment in segments:
        await send_dead_letter(
            key=None, value=segment.raw.encode("utf-8"), error=error, source=segment.source
        )


def schedule_check(call: VoiceCall, partition: int) -> None:
    """Send a check for ``call`` to its partition when its grace is due to end."""
    due = due_ms(call.to_times(), timeout_ms=TIMEOUT_MS, grace_ms=GRACE_MS)
    delay = max(due - now_ms(), 0) / 1000
    asyncio.get_running_loop().call_later(delay, _send_check, call.call_id, partition)


def _send_check(call_id: str, partition: int) -> None:
    headers = [(CHECK_HEADER, call_id.encode())]
    task = asyncio.ensure_future(voice_topic.send(value=b"", partition=partition, headers=headers))
    _sending.add(task)
    task.add_done_callback(_check_sent)


def _check_sent(task: asyncio.Task[Any]) -> None:
    _sending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # The next sweep finds the call all the same.
        logger.warning("could not send a voice call check: %r", task.exception())


async def check(call_id: bytes, partition: int) -> None:
    """Expire one call, if it is due: the check ``schedule_check`` sent."""
    value: dict[str, Any] | None = voice_calls.get(call_id)
    if value is not None:
        await settle(call_id, value, partition, now_ms())


async def sweep(partition: int) -> None:
    """Expire this partition's silent calls: answer, abandon or forget each."""
    now = now_ms()
    for key, value in list(voice_calls.items()):
        if value.get("partition") == partition:
            await settle(key, value, partition, now)


async def settle(key: bytes, value: dict[str, Any], partition: int, now: int) -> None:
    """Answer, abandon or forget the stored call ``value`` if it is due at ``now``."""
    # Most calls are not due: decide that without reading their segments back.
    if now < due_ms(value["call"], timeout_ms=TIMEOUT_MS, grace_ms=GRACE_MS):
        return
    call = VoiceCall.from_dict(value["call"])
    with log_context(query_id=call.call_id, customer_id=call.customer_id):
        result = expire(
            call,
            now_ms=now,
            timeout_ms=TIMEOUT_MS,
            grace_ms=GRACE_MS,
            max_chars=settings.max_text_chars,
        )
        if result is None:
            return
        if result.delete:
            del voice_calls[key]
            return
        _store(result.call, partition)
        if result.action == "answered" and result.utterance is not None:
            EVENTS.labels(stage="voice", result="grace_answered").inc()
            logger.warning("%s", grace_note(result.utterance))
            await answer(result.call, result.utterance, completed_ms=now)
        elif result.action == "abandoned":
            EVENTS.labels(stage="voice", result="abandoned").inc()
            error = CallAbandoned(
                f"call {call.call_id} went silent for {TIMEOUT_MS / 1000:g} s without its "
                f"final segment; {len(result.dead_letters)} segment(s) dead-lettered"
            )
            await _dead_letter_segments(result.dead_letters, error)
