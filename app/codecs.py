"""Wire formats of the internal and outbound topics: Avro (default) or JSON.

Avro uses fastavro and the Avro specification's single-object encoding: the two
marker bytes ``C3 01``, the schema's 8-byte CRC-64-AVRO fingerprint, then the
binary record. Every message therefore names its writer schema, and a reader
that knows several versions of a schema decodes each with the right one.
Schemas are the ``.avsc`` files in ``app/schemas/``.

With a schema registry (``FLOWDESK_SCHEMA_REGISTRY_URL``), Avro uses the
Confluent wire format instead: a zero byte, the schema's 4-byte registry id,
then the binary record; schemas are registered there at start.
"""

from __future__ import annotations

import io
import json
import struct
from functools import cache
from importlib import resources
from typing import Any, Generic, Protocol, TypeVar, cast

import fastavro
import faust
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint, to_parsing_canonical_form

from app.errors import DecodeError
from app.registry import SchemaRegistryClient
from app.settings import Serializer, Settings

R = TypeVar("R", bound=faust.Record)

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
#: The magic byte and the big-endian schema id.
_CONFLUENT_HEADER = struct.Struct(">BI")


def to_plain(value: Any) -> Any:
    """A record (nested records and lists included) as plain dicts and lists."""
    if isinstance(value, faust.Record):
        return {name: to_plain(getattr(value, name)) for name in value._options.fields}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    return value


class Codec(Protocol[R]):
    """Encodes one record type to bytes and back."""

    def encode(self, record: R) -> bytes: ...

    def decode(self, data: bytes) -> R: ...


class JsonCodec(Generic[R]):
    """Compact UTF-8 JSON, one object per message."""

    def __init__(self, *, record_type: type[R]) -> None:
        self.record_type = record_type

    def encode(self, record: R) -> bytes:
        return json.dumps(to_plain(record), separators=(",", ":"), ensure_ascii=False).encode()

    def decode(self, data: bytes) -> R:
        try:
            payload = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DecodeError(f"not UTF-8 JSON: {exc}") from exc
        return _build(self.record_type, payload)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed Avro schema ``app/schemas/<name>.avsc``."""
    text = resources.files("app").joinpath("schemas", f"{name}.avsc").read_text()
    return cast(dict[str, Any], fastavro.parse_schema(json.loads(text)))


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8 bytes that name ``schema`` in the single-object encoding."""
    # fastavro gives the CRC-64-AVRO value as hex of its little-endian bytes,
    # which is the byte order the single-object header wants.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


class AvroCodec(Generic[R]):
    """Avro single-object encoding of one record type.

    ``writer_schemas`` are older (or newer) versions of the schema this reader
    accepts; each message is decoded with the schema its fingerprint names and
    resolved to the current one, so an added field with a default is filled in.
    """

    def __init__(
        self,
        *,
        record_type: type[R],
        schema: dict[str, Any] | None = None,
        writer_schemas: tuple[dict[str, Any], ...] = (),
    ) -> None:
        self.record_type = record_type
        self.schema = schema or load_schema(record_type.__name__)
        self._header = SINGLE_OBJECT_MAGIC + schema_fingerprint(self.schema)
        self._writers = {schema_fingerprint(s): s for s in (self.schema, *writer_schemas)}

    def encode(self, record: R) -> bytes:
        return _write_avro(self._header, self.schema, record)

    def decode(self, data: bytes) -> R:
        if len(data) < 10 or data[:2] != SINGLE_OBJECT_MAGIC:
            raise DecodeError("not Avro single-object encoded (no C3 01 marker)")
        writer = self._writers.get(data[2:10])
        if writer is None:
            raise DecodeError(
                f"unknown Avro schema fingerprint {data[2:10].hex()} "
                f"for {self.record_type.__name__}"
            )
        try:
            payload = fastavro.schemaless_reader(io.BytesIO(data[10:]), writer, self.schema)
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError...
            raise DecodeError(f"corrupt Avro {self.record_type.__name__}: {exc}") from exc
        return _build(self.record_type, payload)


def _write_avro(header: bytes, schema: dict[str, Any], record: Any) -> bytes:
    """``header`` (naming the schema, in either framing) then the Avro binary record."""
    out = io.BytesIO()
    out.write(header)
    fastavro.schemaless_writer(out, schema, to_plain(record))
    return out.getvalue()


def _build(record_type: type[R], payload: Any) -> R:
    if not isinstance(payload, dict):
        raise DecodeError(f"expected a {record_type.__name__} object, got {type(payload).__name__}")
    try:
        return record_type.from_data(payload)
    except (TypeError, ValueError, KeyError) as exc:
        raise DecodeError(f"not a valid {record_type.__name__}: {exc}") from exc


class ConfluentAvroCodec(Generic[R]):
    """Avro in the Confluent wire format, its schema registered in a schema registry.

    The schema is registered at construction, so a worker whose registry is
    unreachable or rejects the schema fails at start with the registry's reason.
    Each message names its writer schema by registry id; a message written with
    another version is decoded with that version (fetched once per id) and
    resolved to this codec's schema, so an added field with a default is filled in.

    Looking up a new id blocks for one registry request. If the registry cannot
    answer it, ``decode`` raises ``ConfigurationError``, not ``DecodeError``: the
    message itself may be fine.
    """

    def __init__(
        self,
        *,
        record_type: type[R],
        client: SchemaRegistryClient,
        subject: str,
        schema: dict[str, Any] | None = None,
    ) -> None:
        self.record_type = record_type
        self.schema = schema or load_schema(record_type.__name__)
        self.client = client
        self.subject = subject
        self.schema_id = client.register(subject, self.schema)
        self._header = _CONFLUENT_HEADER.pack(0, self.schema_id)

    def encode(self, record: R) -> bytes:
        return _write_avro(self._header, self.schema, record)

    def decode(self, data: bytes) -> R:
        name = self.record_type.__name__
        if len(data) < _CONFLUENT_HEADER.size or data[:1] != CONFLUENT_MAGIC:
            raise DecodeError(
                f"not Avro in the Confluent wire format (no 00 magic byte and schema id) for {name}"
            )
        _, schema_id = _CONFLUENT_HEADER.unpack_from(data)
        if schema_id == self.schema_id:
            writer, reader = self.schema, None
        else:
            try:
                writer = self.client.schema_by_id(schema_id)
            except LookupError as exc:
                raise DecodeError(f"unknown Avro schema id {schema_id} for {name}: {exc}") from exc
            reader = self.schema
        body = io.BytesIO(data[_CONFLUENT_HEADER.size :])
        try:
            payload = fastavro.schemaless_reader(body, writer, reader)
        except SchemaResolutionError as exc:
            raise DecodeError(
                f"Avro schema id {schema_id} ({writer.get('name')}) cannot be read as "
                f"{self.schema.get('name')}"
            ) from exc
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError...
            raise DecodeError(f"corrupt Avro {name} (schema id {schema_id}): {exc}") from exc
        if body.tell() != len(data) - _CONFLUENT_HEADER.size:
            raise DecodeError(
                f"corrupt Avro {name} (schema id {schema_id}): bytes after the record"
            )
        return _build(self.record_type, payload)


def record_subject(schema: dict[str, Any]) -> str:
    """The registry subject of ``schema``: its full record name, e.g. ``flowdesk.Query``.

    This is the registry's record name strategy rather than the default topic name
    strategy: flowdesk has one codec per record type, whatever topic it is written
    to (``SupportResponse`` goes to three), so the subject follows the record.
    """
    parsed = cast(dict[str, Any], fastavro.parse_schema(schema))
    return str(parsed["name"])


@cache
def registry_client(url: str) -> SchemaRegistryClient:
    """The process's one client of the registry at ``url``, shared by every codec."""
    return SchemaRegistryClient(url=url)


def make_codec(record_type: type[R], settings: Settings) -> Codec[R]:
    """The codec ``FLOWDESK_SERIALIZER`` and ``FLOWDESK_SCHEMA_REGISTRY_URL`` select."""
    kind: Serializer = settings.serializer
    if kind == "json":
        return JsonCodec(record_type=record_type)
    if settings.schema_registry_url:
        schema = load_schema(record_type.__name__)
        return ConfluentAvroCodec(
            record_type=record_type,
            client=registry_client(settings.schema_registry_url),
            subject=record_subject(schema),
            schema=schema,
        )
    return AvroCodec(record_type=record_type)
