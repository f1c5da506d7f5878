"""Inference: many model requests in flight, without blocking the stream.

The agent only reads and submits; the in-flight window (``app.window``) bounds
the work and keeps each customer's queries in order. Acks are manual: an event
is acked once its outcome (or its dead letter) is sent and every earlier event of
its partition is acked (``app.acks``), so the committed offset stays below the
oldest query without an outcome: a crash re-processes and never skips.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import cast

from faust import StreamT
from faust.streams import Stream
from faust.types import EventT

from app.acks import OrderedAcks
from app.clients import inferencer
from app.dlq import dead_letter
from app.enrich import Context, history_before, pick_order
from app.logs import log_context
from app.main import app
from app.metrics import EVENTS
from app.pipeline import finalize, pre_model_outcome
from app.records import Query
from app.settings import get_settings
from app.topics import outcomes_topic, queries_topic
from app.window import InFlightWindow
from app.wire import outcome_codec, query_codec
from tables.crm import customers, orders
from tables.history import history

settings = get_settings()
logger = logging.getLogger(__name__)


def context_for(query: Query) -> Context:
    """The query's context from the tables (read only: this agent runs many at once)."""
    key = query.customer_id.encode()
    order, unknown = pick_order(orders.get(key), query.text, hinted=query.order_ids)
    return Context(
        profile=customers.get(key),
        order=order,
        unknown_order=unknown,
        history=history_before(history.get(key), query),
    )


async def handle(acks: OrderedAcks, event: EventT) -> None:
    """Answer one query and write its outcome; then, and only then, ack it."""
    message = event.message
    try:
        query = query_codec.decode(message.value or b"")
        with log_context(query_id=query.query_id, customer_id=query.customer_id):
            context = context_for(query)
            outcome = pre_model_outcome(query, context)
            if outcome is None:
                outcome = finalize(await inferencer.answer(query, context), query, context)
    except Exception as exc:  # bad input, or a bug: park it, never stop the stream
        await dead_letter(event, exc)
        EVENTS.labels(stage="inference", result="dead_letter").inc()
    else:
        await outcomes_topic.send(
            key=outcome.customer_id.encode(), value=outcome_codec.encode(outcome)
        )
        EVENTS.labels(stage="inference", result=outcome.route).inc()
    # Not reached if a send above raised: the event stays un-acked, the committed
    # offset stays below it, and it is processed again after a restart.
    await acks.done(event)


@app.agent(queries_topic)
async def infer(stream: StreamT) -> None:
    window = InFlightWindow(capacity=settings.window_size)
    manual = cast(Stream, stream).noack()
    acks = OrderedAcks(manual.ack)
    try:
        async for event in manual.events():
            acks.track(event)
            # The key is the customer id (ingest re-keys), so a customer's queries queue
            # behind each other while other customers' run alongside.
            await window.submit(event.message.key, partial(handle, acks, event))
    finally:
        # On a graceful stop: finish what is in flight and commit it (every partition's
        # acked offsets, not only these), so that the worker taking the partitions over
        # does not ask the model again for queries answered here.
        await window.finish(grace=settings.shutdown_grace)
        try:
            await app.consumer.commit()
        except Exception:  # the consumer may be gone already; Faust commits on its stop
            logger.exception("could not commit on stopping")
