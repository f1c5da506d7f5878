"""Router: each outcome to its public topic: a channel's responses or escalations.

Exactly one outcome per query id: the ``routed`` table remembers the query ids
whose outcome was written, so a query processed again (inference is at least once)
is not answered twice; an outcome from before a takeover without that record is
looked up in its output topic (``app.published``), in case the worker that sent it
died before recording it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from faust import StreamT
from faust.types import TP, EventT

from app.acks import acked_when_done
from app.dlq import dead_letter
from app.enrich import Turn, add_turn, already_routed, mark_routed
from app.errors import ValidationError
from app.logs import log_context
from app.main import app, client_security
from app.metrics import DUPLICATE_OUTCOMES, ESCALATIONS, EVENTS
from app.monitor import SignalBatches, signal_of
from app.pipeline import to_escalation, to_response
from app.published import PublishedOutcomes, output_partitions
from app.records import Outcome
from app.settings import get_settings
from app.status import RECENT
from app.topics import (
    OUTCOMES,
    SPECS,
    escalations_topic,
    outcomes_topic,
    response_topics,
    signals_topic,
)
from app.wire import escalation_codec, outcome_codec, response_codec
from tables.history import history
from tables.routed import routed

settings = get_settings()
logger = logging.getLogger(__name__)


#: How often the drift signals held here are sent, s (``app.monitor.SignalBatches``).
SIGNALS_EVERY = 1.0
signals = SignalBatches(window=settings.drift_window)

#: ``flowdesk.outcomes`` partition -> when this worker got it (epoch seconds).
owned_since: dict[TP, float] = {}
published = PublishedOutcomes(
    bootstrap=",".join(settings.bootstrap_servers),
    readers={
        **{
            topic.get_topic_name(): lambda value: response_codec.decode(value).query_id
            for topic in response_topics.values()
        },
        escalations_topic.get_topic_name(): lambda value: escalation_codec.decode(value).query_id,
    },
    client_options=client_security(settings),
)
#: The topics outcomes go to.
published_topics = [
    *(topic.get_topic_name() for topic in response_topics.values()),
    escalations_topic.get_topic_name(),
]


@app.on_partitions_revoked.connect
async def _revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Faust sends the revoked partitions: ``(app, revoked)``."""
    for tp in args[0] if args else ():
        owned_since.pop(tp, None)
    published.forget()


@app.on_partitions_assigned.connect
async def _assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Faust sends the whole new assignment: ``(app, assigned)``.

    The output partitions of the outcome partitions taken over are read back at once,
    all together, so that their first replays find the read done or under way.
    """
    now = time.time()
    taken = [
        tp for tp in (args[0] if args else ()) if tp.topic == OUTCOMES and tp not in owned_since
    ]
    for tp in taken:
        owned_since[tp] = now
    if taken:
        topics = {name: SPECS[name].partition_count(settings) for name in published_topics}
        source_partitions = SPECS[OUTCOMES].partition_count(settings)
        published.prefetch(
            (
                tp
                for taken_tp in taken
                for tp in output_partitions(
                    taken_tp.partition, source_partitions=source_partitions, topics=topics
                )
            ),
            since=now,
        )


async def published_before(event: EventT, topic: str, key: bytes, outcome: Outcome) -> bool:
    """Whether the outcome of a query that arrived before this worker owned its partition
    is out already.

    Only such a query can have been answered by a worker that died before recording it
    (``app.published``): its outcome may be the one that worker wrote, or one written
    again here when the query was answered a second time (from the cache) after the
    takeover. A failure to look is logged and counted as not sent.
    """
    since = owned_since.get(event.message.tp)
    if since is None or outcome.arrived_ms / 1000 >= since:
        return False
    query_id = outcome.query_id
    partitions = SPECS[topic].partition_count(settings)
    partition = DefaultPartitioner()(key, list(range(partitions)), list(range(partitions)))
    try:
        return await published.contains(topic, partition, query_id, since=since)
    except Exception:
        logger.exception("could not read %s:%d back; routing %s", topic, partition, query_id)
        return False


@app.agent(outcomes_topic)
async def route(stream: StreamT) -> None:
    try:
        await _route(stream)
    finally:
        await flush_signals()  # on a graceful stop: what is held goes out too


async def _route(stream: StreamT) -> None:
    async for event in acked_when_done(stream):
        try:
            outcome = outcome_codec.decode(event.message.value or b"")
            if outcome.route == "response":
                if outcome.channel not in response_topics:
                    raise ValidationError(f"no response topic for channel {outcome.channel!r}")
                topic = response_topics[outcome.channel]
                value = response_codec.encode(to_response(outcome))
            elif outcome.route == "escalation":
                topic = escalations_topic
                value = escalation_codec.encode(to_escalation(outcome))
            else:
                raise ValidationError(f"unknown route {outcome.route!r}")
        except Exception as exc:  # bad input, or a bug: park it, never stop the stream
            await dead_letter(event, exc)
            continue
        with log_context(query_id=outcome.query_id, customer_id=outcome.customer_id):
            key = outcome.customer_id.encode()
            if already_routed(routed.get(key), outcome.query_id) or await published_before(
                event, topic.get_topic_name(), key, outcome
            ):
                # A replay (after a crash or a rebalance) of a query already answered.
                DUPLICATE_OUTCOMES.inc()
                continue
            # Faust flushes the producer before it commits an offset, so this send is
            # on the broker before the outcome's offset is acknowledged. The record of it
            # comes after the send: a crash between the two repeats the outcome rather
            # than losing it.
            try:
                await topic.send(key=key, value=value)
            except Exception as exc:  # never stop the stream: the outcome is parked instead
                await dead_letter(event, exc)
                continue
            routed[key] = mark_routed(
                routed.get(key),
                outcome.query_id,
                now_ms=int(time.time() * 1000),
                ttl_ms=settings.outcome_dedupe_ttl * 1000,
            )
            if outcome.route == "response" and settings.history_turns:
                # This agent runs one event at a time, so it may write the table.
                turn = Turn(
                    query_id=outcome.query_id,
                    arrived_ms=outcome.arrived_ms,
                    channel=outcome.channel,
                    question=outcome.question,
                    answer=outcome.text,
                )
                history[key] = add_turn(history.get(key), turn, keep=settings.history_turns)
            EVENTS.labels(stage="router", result=outcome.route).inc()
            latency = max(0.0, time.time() * 1000 - outcome.arrived_ms)
            RECENT.add(outcome.route, latency if outcome.route == "response" else None)
            if outcome.route == "escalation":
                ESCALATIONS.labels(reason=outcome.reason).inc()
            variant, labels = signal_of(outcome)
            signals.add(variant, labels, at=time.time())


async def flush_signals() -> None:
    """Send the drift signals held here, one record per variant and window."""
    for variant, value, at in signals.take():
        await signals_topic.send(key=variant.encode(), value=value, timestamp=at)


@app.timer(interval=SIGNALS_EVERY)
async def send_signals() -> None:
    # Not called directly: Faust's timer decorator returns the timer's loop.
    await flush_signals()
