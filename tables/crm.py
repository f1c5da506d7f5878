"""Customer profiles and recent orders, fed from ``crm.customers`` and ``crm.orders``.

Both are keyed by the customer id's UTF-8 bytes, the same bytes as the Kafka key
of every ``flowdesk.*`` topic, so a key's partition (and the worker that owns it)
is the same for the table, its changelog and the queries; Faust's table routing
(``GET /customers/{id}``) hashes the same bytes.
"""

from __future__ import annotations

from app.main import app
from app.settings import get_settings

_settings = get_settings()

#: customer id -> the latest ``crm.customers`` payload (a dict).
customers = app.Table(
    "customers",
    key_type=bytes,
    partitions=_settings.topic_partitions,
    help="Customer profiles from crm.customers; the latest wins.",
)

#: customer id -> {order id: the latest ``crm.orders`` payload}, the most recent
#: ``FLOWDESK_ORDERS_PER_CUSTOMER`` orders by ``ordered_at``.
orders = app.Table(
    "orders",
    key_type=bytes,
    partitions=_settings.topic_partitions,
    help="Recent orders per customer from crm.orders; the latest event per order wins.",
)
