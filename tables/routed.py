"""Query ids already routed, per customer: the router's idempotency record."""

from __future__ import annotations

from app.main import app
from app.settings import get_settings

_settings = get_settings()

#: customer id -> {query id: when its outcome was sent, ms}, for
#: ``FLOWDESK_OUTCOME_DEDUPE_TTL`` seconds. Keyed like the outcomes topic, so the
#: record of a query lives on the partition its replays arrive on.
routed = app.Table(
    "routed",
    key_type=bytes,
    partitions=_settings.topic_partitions,
    help="Query ids whose outcome was written, per customer.",
)
