"""Conversation history: the last turns (query and answer) per customer."""

from __future__ import annotations

from app.main import app
from app.settings import get_settings

_settings = get_settings()

#: customer id -> a list of turns, oldest first (``app.enrich.Turn`` as dicts), at
#: most ``FLOWDESK_HISTORY_TURNS``; written by the router when a response is sent.
history = app.Table(
    "history",
    key_type=bytes,
    partitions=_settings.topic_partitions,
    help="Last conversation turns per customer.",
)
