"""The codec of every record type, chosen once per process by ``FLOWDESK_SERIALIZER``."""

from __future__ import annotations

from app.codecs import make_codec
from app.records import Escalation, Outcome, Query, SupportResponse
from app.settings import get_settings

_settings = get_settings()
query_codec = make_codec(Query, _settings)
outcome_codec = make_codec(Outcome, _settings)
response_codec = make_codec(SupportResponse, _settings)
escalation_codec = make_codec(Escalation, _settings)
