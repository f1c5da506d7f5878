"""The compiled protocol schemas give aiokafka's bytes and values, for every structure."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import aiokafka.protocol
import pytest
from aiokafka.protocol import types
from aiokafka.protocol.fetch import FetchRequest_v11, FetchResponse_v4, FetchResponse_v11
from aiokafka.protocol.struct import Struct
from hypothesis import given, settings
from hypothesis import strategies as st

from app import kafka_codec

_RANGES = {
    types.Int8: (-(2**7), 2**7 - 1),
    types.Int16: (-(2**15), 2**15 - 1),
    types.Int32: (-(2**31), 2**31 - 1),
    types.UInt32: (0, 2**32 - 1),
    types.Int64: (-(2**63), 2**63 - 1),
}


def values_of(field: Any) -> st.SearchStrategy[Any]:
    """Values aiokafka can encode for ``field`` (a type of aiokafka.protocol.types)."""
    if field in _RANGES:
        low, high = _RANGES[field]
        return st.integers(low, high)
    if field is types.Float64:
        return st.floats(allow_nan=False)
    if field is types.Boolean:
        return st.booleans()
    if field is types.Bytes:
        return st.none() | st.binary(max_size=40)
    if type(field) is types.String:
        return st.none() | st.text(max_size=20)
    if type(field) is types.Array:
        return st.none() | st.lists(values_of(field.array_of), max_size=3)
    if type(field) is types.Schema:
        return st.tuples(*(values_of(f) for f in field.fields))
    raise AssertionError(f"not a compiled type: {field!r}")


def structures() -> Iterator[type[Struct]]:
    """Every request and response structure aiokafka defines."""
    for module in pkgutil.iter_modules(aiokafka.protocol.__path__):
        loaded = importlib.import_module(f"aiokafka.protocol.{module.name}")
        for _, value in inspect.getmembers(loaded, inspect.isclass):
            if (
                issubclass(value, Struct)
                and value.__module__ == loaded.__name__
                and not inspect.isabstract(value)
            ):
                # Classes that encode or decode themselves are left to their own code.
                if "encode" not in vars(value) and "decode" not in vars(value):
                    yield value


STRUCTURES = sorted(set(structures()), key=lambda kind: (kind.__module__, kind.__name__))
COMPILED = [kind for kind in STRUCTURES if kafka_codec.compiled(kind.SCHEMA) is not None]


@pytest.fixture(scope="module", autouse=True)
def compiled_codec() -> Iterator[None]:
    """Every test here starts with the compiled schemas installed, whatever ran before."""
    was = kafka_codec.installed()
    kafka_codec.install()
    yield
    if not was:
        kafka_codec.uninstall()


def test_the_calls_a_worker_makes_all_the_time_are_compiled() -> None:
    names = {kind.__name__ for kind in COMPILED}
    for version in range(4, 12):
        assert f"FetchRequest_v{version}" in names
        assert f"FetchResponse_v{version}" in names
    for name in ("ProduceRequest_v3", "ProduceResponse_v5", "HeartbeatRequest_v1"):
        assert name in names
    assert len(COMPILED) > len(STRUCTURES) / 2
    # Flexible versions hold compact and tagged fields: aiokafka's own code.
    left = [kind for kind in STRUCTURES if kind not in COMPILED]
    assert left, "some structures are left to aiokafka"


@pytest.mark.parametrize("kind", COMPILED, ids=lambda kind: f"{kind.__module__}.{kind.__name__}")
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_compiled_structure_has_aiokafkas_bytes_and_values(kind: type[Struct], data) -> None:
    fields = data.draw(values_of(kind.SCHEMA))
    # Some structures have constructors of their own (request headers); Struct's fills
    # in the schema's fields, as decoding does.
    structure = kind.__new__(kind)
    Struct.__init__(structure, *fields)

    kafka_codec.uninstall()
    try:
        expected = structure.encode()
        try:
            decoded = kind.decode(BytesIO(expected))
        except TypeError as exc:  # a request header, which aiokafka never decodes
            refused: TypeError | None = exc
        else:
            refused = None
    finally:
        kafka_codec.install()
    assert structure.encode() == expected
    if refused is not None:
        with pytest.raises(TypeError):
            kind.decode(BytesIO(expected))
        return

    stream = BytesIO(b"\x00\x00" + expected + b"tail")
    stream.seek(2)
    again = kind.decode(stream)
    assert again.__dict__ == decoded.__dict__
    assert stream.read() == b"tail", "the stream is left right after the structure"
    assert kind.decode(expected).__dict__ == decoded.__dict__


def test_a_schema_with_compact_fields_is_left_to_aiokafka() -> None:
    schema = types.Schema(("name", types.CompactString("utf-8")), ("id", types.Int32))
    assert kafka_codec.compiled(schema) is None


def response_v11(records: bytes | None) -> FetchResponse_v11:
    partition = (3, 0, 120, 120, 0, [(7, 100)], -1, records)
    return FetchResponse_v11(0, 0, 0, [("flowdesk.queries", [partition])])


def test_a_truncated_response_is_refused_as_aiokafka_refuses_it() -> None:
    raw = response_v11(b"x" * 30).encode()
    for cut in (len(raw) - 1, len(raw) - 31, 5):
        with pytest.raises(ValueError):
            FetchResponse_v11.decode(BytesIO(raw[:cut]))


def test_a_value_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        FetchRequest_v11(-1, 2**40, 1, 1, 0, 0, -1, [], [], "").encode()


def test_install_and_uninstall() -> None:
    kafka_codec.uninstall()
    assert not kafka_codec.installed()
    plain = response_v11(b"records").encode()
    kafka_codec.install()
    assert kafka_codec.installed()
    assert response_v11(b"records").encode() == plain
    decoded = FetchResponse_v11.decode(BytesIO(plain))
    assert decoded.topics == [
        ("flowdesk.queries", [(3, 0, 120, 120, 0, [(7, 100)], -1, b"records")])
    ]
    kafka_codec.uninstall()
    assert not kafka_codec.installed()
    kafka_codec.install()  # as the other tests here expect


def test_an_older_fetch_response_decodes_the_same() -> None:
    response = FetchResponse_v4(0, [("t", [(0, 0, 5, 5, None, b"")])])
    assert FetchResponse_v4.decode(response.encode()).topics == [("t", [(0, 0, 5, 5, None, b"")])]
