"""Avro single-object and JSON codecs: round trips, fingerprints, evolution, errors."""

from __future__ import annotations

import io
import json

import fastavro
import pytest
from factories import make_escalation, make_outcome, make_query, make_response

from app.codecs import (
    SINGLE_OBJECT_MAGIC,
    AvroCodec,
    JsonCodec,
    load_schema,
    make_codec,
    schema_fingerprint,
)
from app.errors import DecodeError
from app.records import Action, Escalation, Query, SupportResponse
from app.settings import Settings


@pytest.mark.parametrize("codec_type", [AvroCodec, JsonCodec])
def test_round_trip(codec_type: type) -> None:
    codec = codec_type(record_type=SupportResponse)
    decoded = codec.decode(codec.encode(make_response()))
    assert decoded == make_response()
    assert isinstance(decoded.actions[0], Action)


def test_avro_single_object_header_names_the_schema() -> None:
    data = AvroCodec(record_type=SupportResponse).encode(make_response())
    assert data[:2] == SINGLE_OBJECT_MAGIC
    assert data[2:10] == schema_fingerprint(load_schema("SupportResponse"))
    # The body is plain Avro binary: any Avro reader with the schema decodes it.
    body = fastavro.schemaless_reader(io.BytesIO(data[10:]), load_schema("SupportResponse"))
    assert body["query_id"] == "q1"


def test_crc64_fingerprint_matches_the_avro_spec_vector() -> None:
    # The Avro spec's test vector: CRC-64-AVRO of "int" is 0x7275d51a3f395c8f,
    # written little-endian in the single-object header.
    assert schema_fingerprint("int") == (0x7275D51A3F395C8F).to_bytes(8, "little")


def test_every_record_has_a_schema_that_fits_it() -> None:
    samples = [
        make_response(),
        make_escalation(),
        make_query(),
        make_outcome(route="escalation", reason="human_requested"),
    ]
    for record in samples:
        codec = AvroCodec(record_type=type(record))
        assert codec.decode(codec.encode(record)) == record


def test_reader_with_an_added_defaulted_field_reads_old_messages() -> None:
    old = load_schema("Escalation")
    new = fastavro.parse_schema(
        {
            **json.loads(json.dumps(old)),
            "fields": [*old["fields"], {"name": "priority", "type": "int", "default": 3}],
        }
    )
    writer = AvroCodec(record_type=Escalation)
    data = writer.encode(
        Escalation(
            query_id="q", customer_id="c", channel="chat", reason="r", text="t", created_at="n"
        )
    )
    # A newer reader that knows the old schema by fingerprint fills in the default.
    reader = AvroCodec(record_type=Escalation, schema=new, writer_schemas=(old,))
    payload = fastavro.schemaless_reader(io.BytesIO(data[10:]), old, new)
    assert payload["priority"] == 3
    assert reader.decode(data).query_id == "q"


@pytest.mark.parametrize(
    "data",
    [b"", b"{}", b"\xc3\x01" + b"\x00" * 8 + b"\x01", b"\xc3\x01" + b"\xff" * 12],
)
def test_undecodable_avro_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        AvroCodec(record_type=SupportResponse).decode(data)


def test_truncated_avro_raises_decode_error() -> None:
    data = AvroCodec(record_type=SupportResponse).encode(make_response())
    with pytest.raises(DecodeError):
        AvroCodec(record_type=SupportResponse).decode(data[:20])


@pytest.mark.parametrize("data", [b"not json", b"[1]", b'{"query_id": 1}', b"\xff"])
def test_undecodable_json_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        JsonCodec(record_type=Escalation).decode(data)


def test_make_codec_follows_the_serializer_setting() -> None:
    assert isinstance(make_codec(Query, Settings(serializer="json")), JsonCodec)
    assert isinstance(make_codec(Query, Settings(serializer="avro")), AvroCodec)
    # With a registry URL, see tests/app/test_registry.py.
