"""Avro in the Confluent wire format, with a schema registry, through a real worker."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Cluster, StartWorker, chat_message, collect, send_json

from app.codecs import CONFLUENT_MAGIC, ConfluentAvroCodec, load_schema, record_subject
from app.records import SupportResponse
from app.registry import SchemaRegistryClient
from app.stack import ManagedProcess, free_port, http_ok
from app.topics import CHAT_INBOUND, RESPONSES

pytestmark = pytest.mark.integration

SERVER = Path(__file__).parent.parent / "registry_server.py"


@pytest.fixture
def registry(log_dir: Path) -> Iterator[ManagedProcess]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        name=f"registry :{port}",
        argv=[sys.executable, str(SERVER), "--port", str(port)],
        address=url,
        log_path=log_dir / f"registry-{port}.log",
        healthy=lambda: http_ok(f"{url}/subjects"),
        env={},
    )
    process.start()
    process.wait_healthy(30)
    yield process
    process.stop()


async def test_a_worker_with_a_registry_writes_the_confluent_wire_format(
    cluster: Cluster, start_worker: StartWorker, producer, registry: ManagedProcess
) -> None:
    start_worker(FLOWDESK_SCHEMA_REGISTRY_URL=registry.address)
    message = chat_message(f"S-{uuid.uuid4().hex[:8]}", "Where is my parcel ORD-313131?")
    await send_json(producer, CHAT_INBOUND, message)
    client = SchemaRegistryClient(url=registry.address)
    schema = load_schema("SupportResponse")
    codec = ConfluentAvroCodec(
        record_type=SupportResponse, client=client, subject=record_subject(schema)
    )

    def ours(messages: list) -> list:
        found = []
        for m in messages:
            if (m.value or b"")[:1] != CONFLUENT_MAGIC:
                continue
            record = codec.decode(m.value)
            if record.query_id == message["message_id"]:
                found.append((m, record))
        return found

    messages = await collect(
        cluster.bootstrap, [RESPONSES["chat"]], want=lambda ms: bool(ours(ms)), within=60
    )
    [(raw, response)] = ours(messages)
    assert int.from_bytes(raw.value[1:5], "big") == codec.schema_id
    assert response.customer_id == message["customer_id"] and response.text
