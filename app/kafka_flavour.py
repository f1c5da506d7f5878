"""Which broker the workers talk to, and the settings its quirks call for.

Tansu, the embedded broker, has defects that Apache Kafka has not (README, *Settings*):
it holds a JoinGroup for half the session timeout, reports wrong offsets for produce
batches of several records, and answers a fetch only when its wait runs out. The
workers therefore use short group timeouts, one record per batch and a 5 ms fetch wait
on Tansu only; on Apache Kafka (or any other broker) batching stays on and the fetch
waits as Kafka's clients do. ``FLOWDESK_KAFKA_FLAVOUR`` names the broker, or ``auto``
asks it: Tansu calls its cluster ``tansu_cluster`` unless told otherwise.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
import socket
import ssl
import struct
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Literal

import aiokafka.protocol
from aiokafka.protocol.admin import ApiVersionRequest
from aiokafka.protocol.api import Request
from aiokafka.protocol.metadata import MetadataRequest

Flavour = Literal["tansu", "kafka"]

#: The cluster id Tansu reports unless started with ``--cluster-id``.
TANSU_CLUSTER_ID = "tansu_cluster"

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class BrokerInfo:
    """What a broker said about itself."""

    #: api key -> (lowest, highest) version the broker accepts
    api_versions: dict[int, tuple[int, int]]
    cluster_id: str | None = None
    #: (node id, host, port) of each live broker
    brokers: list[tuple[int, str, int]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class BrokerTuning:
    """The settings that depend on the broker's flavour, resolved."""

    flavour: Flavour
    session_timeout: float
    heartbeat_interval: float
    producer_max_batch_size: int
    fetch_max_wait: float


#: flavour -> the values used where the setting is not given. Tansu's: a JoinGroup
#: returns within half the session timeout; a record per batch keeps ListOffsets right;
#: a fetch returns within 5 ms. Kafka's are its clients' usual ones, with a session
#: timeout short enough that a dead worker's partitions move within seconds.
DEFAULTS: dict[Flavour, BrokerTuning] = {
    "tansu": BrokerTuning(
        flavour="tansu",
        session_timeout=6.0,
        heartbeat_interval=1.0,
        producer_max_batch_size=1,
        fetch_max_wait=0.005,
    ),
    "kafka": BrokerTuning(
        flavour="kafka",
        session_timeout=10.0,
        heartbeat_interval=3.0,
        producer_max_batch_size=16384,
        fetch_max_wait=0.5,
    ),
}


def flavour_of(info: BrokerInfo) -> Flavour:
    return "tansu" if info.cluster_id == TANSU_CLUSTER_ID else "kafka"


def tuning(
    flavour: Flavour,
    *,
    session_timeout: float | None = None,
    heartbeat_interval: float | None = None,
    producer_max_batch_size: int | None = None,
    fetch_max_wait: float | None = None,
) -> BrokerTuning:
    """The flavour's values, each replaced by the one given (a setting that is set)."""
    base = DEFAULTS[flavour]
    return BrokerTuning(
        flavour=flavour,
        session_timeout=session_timeout if session_timeout is not None else base.session_timeout,
        heartbeat_interval=(
            heartbeat_interval if heartbeat_interval is not None else base.heartbeat_interval
        ),
        producer_max_batch_size=(
            producer_max_batch_size
            if producer_max_batch_size is not None
            else base.producer_max_batch_size
        ),
        fetch_max_wait=fetch_max_wait if fetch_max_wait is not None else base.fetch_max_wait,
    )


# --- Asking a broker ----------------------------------------------------------------------


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    parts: list[bytes] = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise EOFError("the broker closed the connection")
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _call(sock: socket.socket, request: Any, correlation_id: int) -> Any:
    """Send one request struct and decode its response, as aiokafka's connection does."""
    body = request.build_request_header(correlation_id, "flowdesk-probe").encode()
    body += request.encode()
    sock.sendall(struct.pack(">i", len(body)) + body)
    (size,) = struct.unpack(">i", _read_exactly(sock, 4))
    buffer = BytesIO(_read_exactly(sock, size))
    header = request.parse_response_header(buffer)
    if header.correlation_id != correlation_id:
        raise ValueError(f"response to request {header.correlation_id}, not {correlation_id}")
    return request.RESPONSE_TYPE.decode(buffer)


def probe(
    host: str,
    port: int,
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
    metadata: bool = True,
) -> BrokerInfo:
    """Ask the broker at host:port for its API versions and, with ``metadata``, its
    cluster id and live brokers (which a broker that wants SASL first does not tell)."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = (
            ssl_context.wrap_socket(raw, server_hostname=host) if ssl_context else raw
        )
        answer = _call(sock, ApiVersionRequest().prepare({}), 1)
        if answer.error_code != 0:
            raise ValueError(f"ApiVersions failed with error code {answer.error_code}")
        versions = {key: (low, high) for key, low, high in answer.api_versions}
        if not metadata:
            return BrokerInfo(api_versions=versions)
        meta = _call(sock, MetadataRequest(None).prepare(versions), 2)
        return BrokerInfo(
            api_versions=versions,
            cluster_id=getattr(meta, "cluster_id", None),
            brokers=[(b[0], b[1], b[2]) for b in meta.brokers],
        )


def detect(
    bootstrap: str,
    *,
    timeout: float = 3.0,
    ssl_context: ssl.SSLContext | None = None,
    sasl: bool = False,
) -> tuple[Flavour, BrokerInfo | None]:
    """The flavour of the broker at ``bootstrap`` (``host:port``): Tansu when it names
    its cluster ``tansu_cluster``, else Kafka, which is also the answer when the broker
    cannot be asked (production brokers are Kafka; the embedded stack names its own)."""
    host, _, port = bootstrap.rpartition(":")
    try:
        info = probe(
            host.strip("[]"), int(port), timeout=timeout, ssl_context=ssl_context, metadata=not sasl
        )
    except (OSError, ValueError, EOFError) as exc:
        _log.warning(
            "could not ask the broker at %s what it is (%s): taking it for Apache Kafka; "
            "set FLOWDESK_KAFKA_FLAVOUR=tansu if it is Tansu",
            bootstrap,
            exc,
        )
        return "kafka", None
    return flavour_of(info), info


# --- What aiokafka sends ------------------------------------------------------------------


def _request_builders() -> list[type[Request[Any]]]:
    builders: dict[str, type[Request[Any]]] = {}
    for module in pkgutil.iter_modules(aiokafka.protocol.__path__):
        loaded = importlib.import_module(f"aiokafka.protocol.{module.name}")
        for name, value in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(value, Request) and value is not Request and hasattr(value, "_CLASSES"):
                builders[name] = value
    return [builders[name] for name in sorted(builders)]


def negotiated_versions(api_versions: dict[int, tuple[int, int]]) -> dict[str, int | None]:
    """For each request aiokafka can send, the version it sends to a broker with these
    ``api_versions`` (the newest both know, as ``Request.prepare`` picks it); None where
    they share none."""
    chosen: dict[str, int | None] = {}
    for builder in _request_builders():
        span = api_versions.get(builder.API_KEY)
        version = None
        if span is not None:
            known = [c.API_VERSION for c in builder._CLASSES if span[0] <= c.API_VERSION <= span[1]]
            version = max(known) if known else None
        chosen[builder.__name__] = version
    return chosen


def describe(info: BrokerInfo) -> str:
    """One line: the versions aiokafka uses with this broker, ``Name vN`` each."""
    return ", ".join(
        f"{name} v{version}" if version is not None else f"{name} (none)"
        for name, version in negotiated_versions(info.api_versions).items()
    )
