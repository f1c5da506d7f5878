"""``flowdesk dev --demo``: demo traffic in, every outcome printed as it arrives."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer

from app.codecs import Codec
from app.loadgen import run_loadgen
from app.settings import Settings
from app.topics import DLQ, ESCALATIONS, RESPONSES

MAX_SHOWN = 110

#: The demo sends every channel (and the CRM data the enrichment reads first).
DEMO_CHANNELS = ("chat", "email", "voice")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


async def run_demo(*, settings: Settings, rate: float, count: int) -> None:
    """Send ``count`` demo queries at ``rate`` per second and print each outcome."""
    from app.wire import escalation_codec, response_codec

    codecs: dict[str, Codec] = {topic: response_codec for topic in RESPONSES.values()}
    codecs[ESCALATIONS] = escalation_codec
    consumer = AIOKafkaConsumer(
        *codecs,
        DLQ,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
    )
    await consumer.start()
    print(
        f"demo: sending {count} queries at {rate:g}/s on {', '.join(DEMO_CHANNELS)}; outcomes:",
        flush=True,
    )
    sender = asyncio.create_task(
        run_loadgen(
            bootstrap_servers=settings.bootstrap_servers,
            rate=rate,
            count=count,
            channels=DEMO_CHANNELS,
            progress=False,
        )
    )
    try:
        async for message in consumer:
            if message.topic == DLQ:
                headers = {k: v.decode(errors="replace") for k, v in message.headers}
                print(f"  DLQ        {headers.get('error.type')}: {headers.get('error.message')}")
                continue
            record = codecs[message.topic].decode(message.value or b"")
            if message.topic == ESCALATIONS:
                print(f"  ESCALATED  {record.channel:<5} {record.customer_id} ({record.reason})")
            else:
                print(
                    f"  ANSWER     {record.channel:<5} {record.customer_id} [{record.intent}] "
                    f"{record.latency_ms:.0f} ms: {_short(record.text)}",
                    flush=True,
                )
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        await consumer.stop()
