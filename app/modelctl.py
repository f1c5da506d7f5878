"""``flowdesk models``: list and change the model definitions on ``support.models``.

The topic is compacted and keyed by ``name@version``, so its latest message per
key is the definition the workers serve (a message with no value removes it).
Listing reads the topic from the start; changing sends one message, which every
worker applies within about a second, without a restart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.catalog import ModelDefinition, parse_definition, variant_id
from app.errors import ConfigurationError, InputError
from app.main import client_security
from app.settings import Settings
from app.topics import MODELS, ensure_topics


async def read_definitions(settings: Settings, *, wait: float = 15.0) -> dict[str, ModelDefinition]:
    """The definitions in force: the latest valid message per key on ``support.models``."""
    await ensure_topics(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        **client_security(settings),
    )
    await consumer.start()
    definitions: dict[str, ModelDefinition] = {}
    try:
        async with asyncio.timeout(wait):
            numbers = consumer.partitions_for_topic(MODELS) or {0}
            partitions = [TopicPartition(MODELS, p) for p in sorted(numbers)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for message in messages:
                        _fold(definitions, message.key, message.value)
    except TimeoutError:
        raise ConfigurationError(
            f"could not read {MODELS} to its end within {wait:g} s; "
            "is FLOWDESK_KAFKA_URL right and the broker up?"
        ) from None
    finally:
        await consumer.stop()
    return definitions


def _fold(definitions: dict[str, ModelDefinition], key: bytes | None, value: bytes | None) -> None:
    """Apply one control message as the workers do."""
    if value is None:
        definitions.pop((key or b"").decode("utf-8", "replace"), None)
        return
    try:
        definition = parse_definition(key, value)
    except InputError:
        return  # the workers dead-lettered it and kept what they had
    definitions[definition.id] = definition


async def _send(settings: Settings, key: str, value: bytes | None) -> None:
    await ensure_topics(settings)
    # One record per call, so one record per batch on any broker (Tansu needs that).
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        **client_security(settings),
    )
    await producer.start()
    try:
        await producer.send_and_wait(MODELS, key=key.encode(), value=value)
    finally:
        await producer.stop()


async def define(settings: Settings, definition: ModelDefinition) -> None:
    """Serve ``definition`` (it replaces the variant with the same name and version)."""
    await _send(settings, definition.id, definition.model_dump_json().encode())


async def set_weight(settings: Settings, name: str, version: str, weight: float) -> ModelDefinition:
    """Change one variant's weight (0 drains it: no new queries, in-flight ones finish)."""
    current = (await read_definitions(settings)).get(variant_id(name, version))
    if current is None:
        raise ConfigurationError(
            f"no model {variant_id(name, version)} is defined; add it with `flowdesk models set`"
        )
    changed = ModelDefinition.model_validate({**current.model_dump(), "weight": weight})
    await define(settings, changed)
    return changed


async def remove(settings: Settings, name: str, version: str) -> None:
    """Stop serving a variant at all (drain it first to let its share move gently)."""
    await _send(settings, variant_id(name, version), None)


def format_definitions(definitions: Iterable[ModelDefinition]) -> str:
    """A table for people: variant, served model, URL, weight and share of traffic."""
    rows = sorted(definitions, key=lambda d: d.id)
    if not rows:
        return (
            "no model definitions: workers use FLOWDESK_LLM_* (and the fallback settings); "
            "add one with `flowdesk models set NAME VERSION --base-url URL`"
        )
    total = sum(d.weight for d in rows if not d.fallback)
    lines = [("VARIANT", "SERVED MODEL", "BASE URL", "WEIGHT", "SHARE", "PARAMS")]
    for d in rows:
        share = "fallback" if d.fallback else f"{d.weight / total:.0%}" if total else "0%"
        params = (
            json.dumps(d.params.request_params(), sort_keys=True)
            if d.params.request_params()
            else "-"
        )
        lines.append((d.id, d.served_model, d.base_url, f"{d.weight:g}", share, params))
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in lines
    )


def parse_param(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with a JSON value (a number, true/false) or else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigurationError(f"--param takes KEY=VALUE, such as temperature=0.3; got {text!r}")
    try:
        value: object = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value
