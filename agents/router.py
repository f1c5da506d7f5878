"""Router: each outcome to its public topic: a channel's responses or escalations.

Exactly one outcome per query id: the ``routed`` table remembers the query ids
whose outcome was written, so a query processed again (inference is at least once)
is not answered twice.
"""

from __future__ import annotations

import time

from faust import StreamT

from app.dlq import dead_letter
from app.enrich import Turn, add_turn, already_routed, mark_routed
from app.errors import ValidationError
from app.logs import log_context
from app.main import app
from app.metrics import DUPLICATE_OUTCOMES, ESCALATIONS, EVENTS
from app.monitor import encode_signal, signal_of
from app.pipeline import to_escalation, to_response
from app.settings import get_settings
from app.status import RECENT
from app.topics import escalations_topic, outcomes_topic, response_topics, signals_topic
from app.wire import escalation_codec, outcome_codec, response_codec
from tables.history import history
from tables.routed import routed

settings = get_settings()


@app.agent(outcomes_topic)
async def route(stream: StreamT) -> None:
    async for event in stream.events():
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
            if already_routed(routed.get(key), outcome.query_id):
                # A replay (after a crash or a rebalance) of a query already answered.
                DUPLICATE_OUTCOMES.inc()
                continue
            # Faust flushes the producer before it commits an offset, so this send is
            # on the broker before the outcome's offset is acknowledged. The record of it
            # comes after the send: a crash between the two repeats the outcome rather
            # than losing it.
            await topic.send(key=key, value=value)
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
            await signals_topic.send(key=variant.encode(), value=encode_signal(labels))
