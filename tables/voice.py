"""Voice calls being assembled from their segments (``app.voice``)."""

from __future__ import annotations

from app.main import app
from app.settings import get_settings

_settings = get_settings()

#: call id -> {"partition": the flowdesk.voice partition, "call": VoiceCall.to_dict()}.
#: Segments are re-keyed by customer, so a call's entry lives on its customer's
#: partition; expiry sweeps one partition at a time.
voice_calls = app.Table(
    "voice_calls",
    key_type=bytes,
    partitions=_settings.topic_partitions,
    help="Voice calls in assembly, and recently finished ones.",
)
