"""Faster encoding and decoding of aiokafka's protocol structures, with the same bytes.

aiokafka encodes and decodes every Kafka request and response field by field, a few
Python calls per field. A worker fetches every partition it owns once per fetch wait
(81 partitions every 5 ms on the embedded broker), so that alone took a sixth of a
busy worker's CPU and two fifths of an idle one's (README, *Benchmark*). Here each
schema is compiled once into one function for encoding and one for decoding: runs of
fixed-width fields are packed or unpacked with one ``struct`` call, and a decoder
reads a bytes object by position instead of a stream.

Only the non-flexible types are compiled (integers, booleans, strings, bytes, arrays
and nested schemas: Fetch up to v11, Produce, offsets, group and metadata calls); a
schema holding any other type (compact or tagged fields) keeps aiokafka's own code.
``install`` swaps aiokafka's ``Struct.encode`` and ``Struct.decode`` for these and is
undone by ``uninstall``; ``FLOWDESK_KAFKA_FAST_CODEC=false`` leaves aiokafka as it is.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from io import BytesIO
from typing import Any

from aiokafka.protocol import struct as aiokafka_struct
from aiokafka.protocol import types

#: value -> the parts of its encoding, appended to a list
Encoder = Callable[[Any, list[bytes]], None]
#: (data, position) -> (value, position after it)
Decoder = Callable[[bytes, int], tuple[Any, int]]

_FIXED: dict[type, str] = {
    types.Int8: "b",
    types.Int16: "h",
    types.Int32: "i",
    types.UInt32: "I",
    types.Int64: "q",
    types.Float64: "d",
    types.Boolean: "?",
}
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


class NotCompiled(Exception):
    """A type this module does not compile; its schema keeps aiokafka's code."""


def _fixed_code(field: Any) -> str | None:
    return _FIXED.get(field) if isinstance(field, type) else None


def _underrun(what: str) -> ValueError:
    return ValueError(f"Buffer underrun decoding {what}")


def _compile(field: Any, fixed: Callable[[str], Any], builders: dict[type, Any]) -> Any:
    """What ``builders`` (or ``fixed``, for a fixed-width type) makes of ``field``."""
    code = _fixed_code(field)
    if code is not None:
        return fixed(code)
    kind = field if isinstance(field, type) else type(field)
    builder = builders.get(kind)
    if builder is None:
        raise NotCompiled(kind.__name__)
    return builder(field)


# --- Encoding ---------------------------------------------------------------------------


def _string_encoder(field: types.String) -> Encoder:
    encoding = field.encoding
    pack = _INT16.pack

    def encode(value: Any, out: list[bytes]) -> None:
        if value is None:
            out.append(pack(-1))
            return
        raw = str(value).encode(encoding)
        out.append(pack(len(raw)))
        out.append(raw)

    return encode


def _bytes_encode(value: Any, out: list[bytes]) -> None:
    if value is None:
        out.append(_INT32.pack(-1))
        return
    out.append(_INT32.pack(len(value)))
    out.append(value)


def _array_encoder(field: types.Array) -> Encoder:
    item = _encoder(field.array_of)
    pack = _INT32.pack

    def encode(values: Any, out: list[bytes]) -> None:
        if values is None:
            out.append(pack(-1))
            return
        out.append(pack(len(values)))
        for value in values:
            item(value, out)

    return encode


def _fixed_encoder(code: str) -> Encoder:
    pack = struct.Struct(">" + code).pack

    def encode(value: Any, out: list[bytes]) -> None:
        out.append(pack(value))

    return encode


def _schema_encoder(schema: types.Schema) -> Encoder:
    """Runs of fixed-width fields become one ``pack`` of the values at their indexes."""
    steps: list[tuple[struct.Struct | None, tuple[int, ...] | int, Encoder | None]] = []
    run: list[tuple[int, str]] = []

    def close_run() -> None:
        if run:
            codes = "".join(code for _, code in run)
            steps.append((struct.Struct(">" + codes), tuple(i for i, _ in run), None))
            run.clear()

    for index, field in enumerate(schema.fields):
        code = _fixed_code(field)
        if code is not None:
            run.append((index, code))
            continue
        close_run()
        steps.append((None, index, _encoder(field)))
    close_run()
    width = len(schema.fields)

    if len(steps) == 1 and steps[0][0] is not None:
        pack = steps[0][0].pack

        def encode_fixed(value: Any, out: list[bytes]) -> None:
            if len(value) != width:
                raise ValueError("Item field count does not match Schema")
            out.append(pack(*value))

        return encode_fixed

    def encode(value: Any, out: list[bytes]) -> None:
        if len(value) != width:
            raise ValueError("Item field count does not match Schema")
        for packer, at, field_encoder in steps:
            if packer is not None:
                out.append(packer.pack(*[value[i] for i in at]))  # type: ignore[union-attr]
            else:
                field_encoder(value[at], out)  # type: ignore[misc]

    return encode


_ENCODERS: dict[type, Callable[[Any], Encoder]] = {
    types.Bytes: lambda _: _bytes_encode,
    types.String: _string_encoder,
    types.Array: _array_encoder,
    types.Schema: _schema_encoder,
}


def _encoder(field: Any) -> Encoder:
    encoder: Encoder = _compile(field, _fixed_encoder, _ENCODERS)
    return encoder


# --- Decoding ---------------------------------------------------------------------------


def _string_decoder(field: types.String) -> Decoder:
    encoding = field.encoding
    unpack_from = _INT16.unpack_from

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        (length,) = unpack_from(data, pos)
        pos += 2
        if length < 0:
            return None, pos
        end = pos + length
        if end > len(data):
            raise _underrun("string")
        return data[pos:end].decode(encoding), end

    return decode


def _bytes_decode(data: bytes, pos: int) -> tuple[Any, int]:
    (length,) = _INT32.unpack_from(data, pos)
    pos += 4
    if length < 0:
        return None, pos
    end = pos + length
    if end > len(data):
        raise _underrun("Bytes")
    return data[pos:end], end


def _array_decoder(field: types.Array) -> Decoder:
    item = _decoder(field.array_of)
    unpack_from = _INT32.unpack_from

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        (length,) = unpack_from(data, pos)
        pos += 4
        if length == -1:
            return None, pos
        values = []
        for _ in range(length):
            value, pos = item(data, pos)
            values.append(value)
        return values, pos

    return decode


def _fixed_decoder(code: str) -> Decoder:
    unpacker = struct.Struct(">" + code)
    unpack_from, size = unpacker.unpack_from, unpacker.size

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        (value,) = unpack_from(data, pos)
        return value, pos + size

    return decode


def _schema_decoder(schema: types.Schema) -> Decoder:
    """One function made for the schema: each run of fixed-width fields is one
    ``unpack_from``, each other field a call of its own decoder, with no loop over the
    fields at run time."""
    names: dict[str, Any] = {}
    lines: list[str] = []
    parts: list[str] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            unpacker = struct.Struct(">" + "".join(run))
            n = len(names)
            names[f"u{n}"] = unpacker.unpack_from
            lines.append(f"    v{n} = u{n}(data, pos); pos += {unpacker.size}")
            parts.append(f"*v{n}")
            run.clear()

    for field in schema.fields:
        code = _fixed_code(field)
        if code is not None:
            run.append(code)
            continue
        close_run()
        n = len(names)
        names[f"d{n}"] = _decoder(field)
        lines.append(f"    v{n}, pos = d{n}(data, pos)")
        parts.append(f"v{n}")
    close_run()
    values = "(" + "".join(f"{part}, " for part in parts) + ")"
    source = "def decode(data, pos):\n" + "\n".join([*lines, f"    return {values}, pos"])
    exec(source, names)  # the source is made here, of names made here
    decode: Decoder = names["decode"]
    return decode


_DECODERS: dict[type, Callable[[Any], Decoder]] = {
    types.Bytes: lambda _: _bytes_decode,
    types.String: _string_decoder,
    types.Array: _array_decoder,
    types.Schema: _schema_decoder,
}


def _decoder(field: Any) -> Decoder:
    decoder: Decoder = _compile(field, _fixed_decoder, _DECODERS)
    return decoder


# --- aiokafka's Struct ------------------------------------------------------------------

#: schema -> (encoder, decoder), or None where it holds a type not compiled
_compiled: dict[int, tuple[types.Schema, tuple[Encoder, Decoder] | None]] = {}


def compiled(schema: types.Schema) -> tuple[Encoder, Decoder] | None:
    """The encoder and decoder of ``schema``, compiled on first use; None for a schema
    with a type this module leaves to aiokafka."""
    entry = _compiled.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    try:
        codec: tuple[Encoder, Decoder] | None = (
            _schema_encoder(schema),
            _schema_decoder(schema),
        )
    except NotCompiled:
        codec = None
    # The schema is kept too: an id is unique only while its object lives.
    _compiled[id(schema)] = (schema, codec)
    return codec


_original_encode = aiokafka_struct.Struct.encode
_original_decode = aiokafka_struct.Struct.decode.__func__


def _encode(self: aiokafka_struct.Struct) -> bytes:
    schema = self.SCHEMA
    codec = compiled(schema)
    if codec is None:
        return _original_encode(self)
    values = self.__dict__
    parts: list[bytes] = []
    try:
        codec[0]([values[name] for name in schema.names], parts)
    except struct.error as exc:  # a value out of its field's range, as aiokafka says it
        raise ValueError(f"cannot encode {self!r}: {exc}") from exc
    return b"".join(parts)


def _decode(cls: type[aiokafka_struct.Struct], data: BytesIO | bytes) -> Any:
    codec = compiled(cls.SCHEMA)
    if codec is None:
        return _original_decode(cls, data)
    if isinstance(data, bytes):
        raw, start = data, 0
    else:
        # A BytesIO made from bytes hands them back without a copy while unchanged.
        raw, start = data.getvalue(), data.tell()
    try:
        fields, end = codec[1](raw, start)
    except struct.error as exc:  # data ended inside a fixed-width field
        raise _underrun(cls.__name__) from exc
    if not isinstance(data, bytes):
        data.seek(end)
    return cls(*fields)


def install() -> None:
    """Encode and decode aiokafka's protocol structures with the compiled schemas."""
    aiokafka_struct.Struct.encode = _encode
    aiokafka_struct.Struct.decode = classmethod(_decode)


def uninstall() -> None:
    """aiokafka's own encoding and decoding again."""
    aiokafka_struct.Struct.encode = _original_encode
    aiokafka_struct.Struct.decode = classmethod(_original_decode)


def installed() -> bool:
    return aiokafka_struct.Struct.encode is _encode
