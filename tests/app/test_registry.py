"""Confluent wire format with a schema registry: client, codec, make_codec, test registry."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import fastavro
import faust
import pytest
from aiohttp import web
from factories import make_escalation, make_outcome, make_query, make_response
from registry_server import RegistryServer

from app.codecs import (
    AvroCodec,
    ConfluentAvroCodec,
    JsonCodec,
    load_schema,
    make_codec,
    record_subject,
    registry_client,
    to_plain,
)
from app.errors import ConfigurationError, DecodeError
from app.records import Action, Escalation, Outcome, Query, SupportResponse
from app.registry import SchemaRegistryClient, canonical_json
from app.settings import Settings
from app.stack import free_port

T = TypeVar("T")
SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "registry_server.py"


class LoopThread:
    """An event loop in a daemon thread, so servers run while synchronous clients call them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def registry(loop_thread: LoopThread) -> Iterator[RegistryServer]:
    server = RegistryServer()
    loop_thread.run(server.start())
    yield server
    loop_thread.run(server.stop())


@pytest.fixture
def serve(loop_thread: LoopThread) -> Iterator[Callable[[web.Application], str]]:
    """Serves any aiohttp app on a free port; gives its root URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield lambda app: loop_thread.run(start(app))
    for runner in runners:
        loop_thread.run(runner.cleanup())


@pytest.fixture(autouse=True)
def fresh_shared_clients() -> Iterator[None]:
    # A later test's registry may get an earlier one's port; its ids must not be reused.
    registry_client.cache_clear()
    yield
    registry_client.cache_clear()


def response() -> SupportResponse:
    return make_response(model_latency_ms=8.0)


SAMPLES: list[faust.Record] = [
    make_query(order_ids=["ORD-1"], damaged=True, session_id="s1"),
    make_outcome(
        route="escalation",
        reason="human_requested",
        actions=[Action(type="return_denied", order_id=None, detail="too late")],
    ),
    response(),
    make_escalation(),
]


def codec_for(record_type: type[Any], registry: RegistryServer) -> ConfluentAvroCodec[Any]:
    codec = make_codec(record_type, Settings(serializer="avro", schema_registry_url=registry.url))
    assert isinstance(codec, ConfluentAvroCodec)
    return codec


def header(schema_id: int) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_round_trip_of_every_record_type(record: faust.Record, registry: RegistryServer) -> None:
    codec = codec_for(type(record), registry)
    decoded = codec.decode(codec.encode(record))
    assert decoded == record
    assert type(decoded) is type(record)


def test_message_is_magic_byte_registry_id_then_plain_avro(registry: RegistryServer) -> None:
    codec = codec_for(SupportResponse, registry)
    data = codec.encode(response())
    [schema_id] = registry.state.subjects["flowdesk.SupportResponse"]
    assert codec.schema_id == schema_id
    assert data[:5] == header(schema_id)
    # Any Avro reader with the registered schema decodes the body.
    registered = fastavro.parse_schema(json.loads(registry.state.schemas[schema_id]))
    body = fastavro.schemaless_reader(io.BytesIO(data[5:]), registered)
    assert body["query_id"] == "q1"
    assert body["actions"][0]["order_id"] == "ORD-1"


def test_subjects_follow_the_record_name_and_ids_are_global(registry: RegistryServer) -> None:
    codecs = [codec_for(t, registry) for t in (Query, Outcome, SupportResponse, Escalation)]
    assert get_json(f"{registry.url}/subjects") == [
        "flowdesk.Escalation",
        "flowdesk.Outcome",
        "flowdesk.Query",
        "flowdesk.SupportResponse",
    ]
    assert sorted(c.schema_id for c in codecs) == [1, 2, 3, 4]
    assert record_subject(load_schema("Query")) == "flowdesk.Query"


def test_registration_and_lookups_are_cached(registry: RegistryServer) -> None:
    for _ in range(3):  # as if wire.py were imported again, or several codecs were built
        codecs = [codec_for(t, registry) for t in (Query, Outcome, SupportResponse, Escalation)]
    for codec in codecs:
        assert registry.count("POST", f"/subjects/{codec.subject}/versions") == 1
    # Messages written with the codec's own schema need no lookup by id.
    for record, codec in zip(SAMPLES, codecs, strict=True):
        codec.decode(codec.encode(record))
    assert sum(n for (method, _), n in registry.state.requests.items() if method == "GET") == 0
    assert len({id(c.client) for c in codecs}) == 1


def old_support_response_schema() -> dict[str, Any]:
    """``SupportResponse`` as it was before ``model_latency_ms``."""
    current = json.loads(canonical_json(load_schema("SupportResponse")))
    fields = [f for f in current["fields"] if f["name"] != "model_latency_ms"]
    assert len(fields) == len(current["fields"]) - 1
    return {**current, "fields": fields}


def test_reader_fills_the_default_of_a_field_the_writer_lacked(registry: RegistryServer) -> None:
    old = old_support_response_schema()
    writer = SchemaRegistryClient(url=registry.url)
    old_id = writer.register("flowdesk.SupportResponse", old)
    payload = to_plain(response())
    del payload["model_latency_ms"]
    out = io.BytesIO(header(old_id))
    out.seek(0, io.SEEK_END)
    fastavro.schemaless_writer(out, fastavro.parse_schema(old), payload)
    data = out.getvalue()

    # A worker with the current schema: its own client, as in another process.
    codec = ConfluentAvroCodec(
        record_type=SupportResponse,
        client=SchemaRegistryClient(url=registry.url),
        subject="flowdesk.SupportResponse",
    )
    assert codec.schema_id != old_id
    for _ in range(3):
        decoded = codec.decode(data)
        assert decoded == SupportResponse(**{**to_plain(response()), "model_latency_ms": 0.0})
    assert registry.count("GET", f"/schemas/ids/{old_id}") == 1
    assert get_json(f"{registry.url}/subjects/flowdesk.SupportResponse/versions") == [1, 2]


def test_codec_can_write_with_an_explicit_schema(registry: RegistryServer) -> None:
    old = fastavro.parse_schema(old_support_response_schema())
    client = SchemaRegistryClient(url=registry.url)
    old_writer = ConfluentAvroCodec(
        record_type=SupportResponse, client=client, subject="flowdesk.SupportResponse", schema=old
    )
    current = codec_for(SupportResponse, registry)
    assert current.decode(old_writer.encode(response())).model_latency_ms == 0.0
    # And the other way round: the old reader drops the field it does not know.
    assert old_writer.decode(current.encode(response())).query_id == "q1"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00\x00",  # shorter than the header
        b"\xc3\x01" + b"\x00" * 12,  # single-object encoding, not Confluent
        b'{"query_id": "q1"}',  # JSON
        header(9_999) + b"\x02a",  # an id the registry does not know
    ],
    ids=["empty", "short", "single-object", "json", "unknown-id"],
)
def test_undecodable_bytes_raise_decode_error(data: bytes, registry: RegistryServer) -> None:
    with pytest.raises(DecodeError):
        codec_for(Escalation, registry).decode(data)


def test_corrupt_truncated_or_padded_avro_raises_decode_error(registry: RegistryServer) -> None:
    codec = codec_for(SupportResponse, registry)
    data = codec.encode(response())
    for bad in (data[:20], data[:5] + b"\xff" * 12, data + b"\x00"):
        with pytest.raises(DecodeError, match="corrupt"):
            codec.decode(bad)


def test_another_record_types_message_raises_decode_error(registry: RegistryServer) -> None:
    data = codec_for(Query, registry).encode(make_query())
    with pytest.raises(DecodeError, match=r"flowdesk\.Query.*flowdesk\.Escalation"):
        codec_for(Escalation, registry).decode(data)


def test_unknown_id_message_names_the_id(registry: RegistryServer) -> None:
    with pytest.raises(DecodeError, match="9999"):
        codec_for(Escalation, registry).decode(header(9_999) + b"\x02a")
    with pytest.raises(LookupError):
        SchemaRegistryClient(url=registry.url).schema_by_id(9_999)


def test_unreachable_registry_fails_at_start_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigurationError) as caught:
        make_codec(Query, Settings(serializer="avro", schema_registry_url=url))
    message = str(caught.value)
    assert url in message
    assert "FLOWDESK_SCHEMA_REGISTRY_URL" in message


def test_credentials_in_the_url_never_show_in_messages() -> None:
    url = f"http://key:s3cret@127.0.0.1:{free_port()}"
    client = SchemaRegistryClient(url=url, attempts=1)
    assert "s3cret" not in client.url
    with pytest.raises(ConfigurationError) as caught:
        client.register("flowdesk.Query", load_schema("Query"))
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("url", ["registry:8081", "ftp://registry", "http://"])
def test_malformed_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="FLOWDESK_SCHEMA_REGISTRY_URL"):
        SchemaRegistryClient(url=url)


def test_invalid_schema_is_rejected_with_the_registrys_reason(registry: RegistryServer) -> None:
    bad = {"type": "record", "name": "Bad", "fields": [{"name": "a", "type": "nope"}]}
    with pytest.raises(ConfigurationError, match=r"invalid: Invalid schema.*nope"):
        SchemaRegistryClient(url=registry.url).register("flowdesk.Bad", bad)


def test_incompatible_schema_is_rejected_with_the_registrys_reason(
    serve: Callable[[web.Application], str],
) -> None:
    reason = "Schema being registered is incompatible with an earlier schema"

    async def reject(request: web.Request) -> web.Response:
        return web.json_response({"error_code": 409, "message": reason}, status=409)

    app = web.Application()
    app.router.add_post("/subjects/{subject}/versions", reject)
    client = SchemaRegistryClient(url=serve(app))
    with pytest.raises(ConfigurationError, match="incompatible") as caught:
        client.register("flowdesk.Query", load_schema("Query"))
    assert reason in str(caught.value)
    assert "'flowdesk.Query'" in str(caught.value)


def test_5xx_and_dropped_connections_are_retried(
    serve: Callable[[web.Application], str],
) -> None:
    calls: list[str] = []

    async def flaky(request: web.Request) -> web.Response:
        calls.append(request.path)
        if len(calls) == 1:
            return web.json_response({"error_code": 50001, "message": "store"}, status=503)
        return web.json_response({"id": 42})

    app = web.Application()
    app.router.add_post("/subjects/{subject}/versions", flaky)
    client = SchemaRegistryClient(url=serve(app), backoff=0)
    assert client.register("flowdesk.Query", load_schema("Query")) == 42
    assert len(calls) == 2


def test_5xx_on_every_attempt_is_a_configuration_error(
    serve: Callable[[web.Application], str],
) -> None:
    calls: list[str] = []

    async def broken(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({"error_code": 50001, "message": "store down"}, status=500)

    app = web.Application()
    app.router.add_post("/subjects/{subject}/versions", broken)
    client = SchemaRegistryClient(url=serve(app), attempts=3, backoff=0)
    with pytest.raises(ConfigurationError, match="store down"):
        client.register("flowdesk.Query", load_schema("Query"))
    assert len(calls) == 3


def test_make_codec_picks_the_codec_for_each_setting(registry: RegistryServer) -> None:
    assert isinstance(make_codec(Query, Settings(serializer="json")), JsonCodec)
    assert isinstance(
        make_codec(Query, Settings(serializer="json", schema_registry_url=registry.url)),
        JsonCodec,
    )
    assert isinstance(make_codec(Query, Settings(serializer="avro")), AvroCodec)
    confluent = make_codec(Query, Settings(serializer="avro", schema_registry_url=registry.url))
    assert isinstance(confluent, ConfluentAvroCodec)
    assert confluent.subject == "flowdesk.Query"
    # JSON with a registry set talks to no registry.
    assert registry.count("POST", "/subjects/flowdesk.Query/versions") == 1


def test_registry_server_api(registry: RegistryServer) -> None:
    client = SchemaRegistryClient(url=registry.url)
    first = client.register("a", load_schema("Query"))
    assert client.register("b", load_schema("Query")) == first  # same text, same id
    second = client.register("a", old_support_response_schema())
    assert second == first + 1
    assert get_json(f"{registry.url}/subjects") == ["a", "b"]
    assert get_json(f"{registry.url}/subjects/a/versions") == [1, 2]
    assert get_json(f"{registry.url}/subjects/b/versions") == [1]
    schema = get_json(f"{registry.url}/schemas/ids/{first}")["schema"]
    assert schema == canonical_json(load_schema("Query"))
    for path, code in (("/schemas/ids/77", 40403), ("/subjects/nope/versions", 40401)):
        with pytest.raises(urllib.error.HTTPError) as caught:
            get_json(registry.url + path)
        assert caught.value.code == 404
        assert json.loads(caught.value.read())["error_code"] == code


def test_registry_server_runs_as_a_process() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"registry listening on http://127.0.0.1:{port}"
        url = f"http://127.0.0.1:{port}"
        codec = make_codec(Escalation, Settings(serializer="avro", schema_registry_url=url))
        assert codec.decode(codec.encode(make_escalation())) == make_escalation()
        assert get_json(f"{url}/subjects") == ["flowdesk.Escalation"]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
