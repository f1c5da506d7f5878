"""CRM: customer profiles and orders into the tables the enrichment reads.

``crm.customers`` and ``crm.orders`` may be keyed any way upstream, so their
messages are first re-keyed by customer onto ``flowdesk.crm`` (original bytes,
with where they came from); one agent then applies them to the tables, on the
partition that also carries that customer's queries.
"""

from __future__ import annotations

from collections.abc import Callable

from faust import StreamT

from app.acks import acked_when_done
from app.dlq import dead_letter, source_headers, source_of
from app.enrich import upsert_order
from app.errors import InputError
from app.inbound import Customer, Order, parse_customer, parse_order
from app.logs import key_text, log_context
from app.main import app
from app.metrics import EVENTS
from app.settings import get_settings
from app.sizes import check_ids, check_record, check_table_value, check_whole
from app.topics import CUSTOMERS, ORDERS, crm_topic, customers_topic, orders_topic
from tables.crm import customers, orders

settings = get_settings()
#: The largest record a worker sends (``app.sizes``).
LIMIT = settings.producer_max_request_size

Parser = Callable[[bytes | None], Customer | Order]


async def _rekey(stream: StreamT, parse: Parser) -> None:
    async for event in acked_when_done(stream):
        message = event.message
        try:
            check_whole(message.key, message.value, limit=LIMIT)
            record = parse(message.value)
            order_id = record.order_id if isinstance(record, Order) else None
            check_ids(customer_id=record.customer_id, order_id=order_id)
            with log_context(customer_id=record.customer_id):
                key = record.customer_id.encode()
                headers = source_headers(
                    topic=message.topic, partition=message.partition, offset=message.offset
                )
                check_record(key, message.value, headers, limit=LIMIT, what="the record re-keyed")
                await crm_topic.send(key=key, value=message.value, headers=headers)
        except Exception as exc:  # bad input, or a bug: park it, never stop the stream
            await dead_letter(event, exc)
            continue


@app.agent(customers_topic)
async def rekey_customers(stream: StreamT) -> None:
    await _rekey(stream, parse_customer)


@app.agent(orders_topic)
async def rekey_orders(stream: StreamT) -> None:
    await _rekey(stream, parse_order)


@app.agent(crm_topic)
async def apply_crm(stream: StreamT) -> None:
    """Apply each CRM event to its table. One event at a time: tables are written here."""
    async for event in acked_when_done(stream):
        message = event.message
        topic, _, _ = source_of(message)
        # Keyed by customer (re-keyed above), so the id is known before parsing.
        with log_context(customer_id=key_text(message.key)):
            try:
                if topic == CUSTOMERS:
                    customer = parse_customer(message.value)
                    key = customer.customer_id.encode()
                    profile = customer.model_dump(mode="json")
                    check_table_value(customers, key, profile, limit=LIMIT, what="the profile")
                    customers[key] = profile
                elif topic == ORDERS:
                    order = parse_order(message.value)
                    key = order.customer_id.encode()
                    # Assigned back as a new dict: a value changed in place misses the changelog.
                    recent = upsert_order(
                        orders.get(key),
                        order.model_dump(mode="json"),
                        keep=settings.orders_per_customer,
                    )
                    what = "the customer's recent orders with this one"
                    check_table_value(orders, key, recent, limit=LIMIT, what=what)
                    orders[key] = recent
                else:
                    raise InputError(f"no table for CRM messages from {topic!r}")
            except Exception as exc:  # bad input, or a bug: park it, never stop the stream
                await dead_letter(event, exc)
                continue
            EVENTS.labels(stage="crm", result=topic).inc()
