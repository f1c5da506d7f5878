"""The broker's flavour decides the quirk settings; unset settings take its values."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_BROKER
from hypothesis import given
from hypothesis import strategies as st

from app import kafka_codec, kafka_flavour
from app.kafka_flavour import BrokerInfo, detect, flavour_of, negotiated_versions, tuning
from app.main import broker_tuning, create_app
from app.settings import Settings
from app.stack import ManagedProcess, free_port

#: What the brokers answered to ApiVersions (key: (min, max)), recorded from Tansu 0.6.0
#: and Apache Kafka 4.4.0 (keys above 51 left out: aiokafka sends none of them).
TANSU_VERSIONS = {0: (0, 11), 1: (0, 17), 2: (0, 9), 3: (0, 12), 8: (0, 9), 9: (0, 9),
                  10: (0, 6), 11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 5),
                  16: (0, 5), 17: (0, 1), 18: (0, 4), 19: (0, 7), 20: (0, 6), 21: (0, 2),
                  22: (0, 5), 24: (0, 5), 25: (0, 4), 26: (0, 4), 28: (0, 4), 29: (0, 3),
                  30: (0, 3), 32: (0, 4), 36: (0, 2), 42: (0, 2), 44: (0, 1), 46: (0, 0),
                  50: (0, 0), 51: (0, 0)}  # fmt: skip
KAFKA_4_VERSIONS = {0: (0, 13), 1: (4, 18), 2: (1, 11), 3: (0, 13), 8: (2, 10), 9: (1, 10),
                    10: (0, 6), 11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 6),
                    16: (0, 5), 17: (0, 1), 18: (0, 5), 19: (2, 7), 20: (1, 6), 21: (0, 2),
                    22: (0, 5), 23: (2, 4), 24: (0, 5), 25: (0, 4), 26: (0, 5), 27: (1, 2),
                    28: (0, 6), 29: (1, 3), 30: (1, 3), 31: (1, 3), 32: (1, 4), 33: (0, 2),
                    34: (1, 2), 35: (1, 5), 36: (0, 2), 37: (0, 3), 38: (1, 3), 39: (1, 2),
                    40: (1, 2), 41: (1, 3), 42: (0, 3), 43: (0, 2), 44: (0, 1), 45: (0, 1),
                    46: (0, 0), 47: (0, 0), 48: (0, 1), 49: (0, 1), 50: (0, 0),
                    51: (0, 0)}  # fmt: skip


def test_tansu_gets_its_workarounds_and_kafka_keeps_batching() -> None:
    tansu, kafka = tuning("tansu"), tuning("kafka")
    assert tansu.producer_max_batch_size == 1
    assert (tansu.session_timeout, tansu.heartbeat_interval, tansu.fetch_max_wait) == (
        6.0,
        1.0,
        0.005,
    )
    assert kafka.producer_max_batch_size == 16384
    assert kafka.fetch_max_wait == 0.5
    # Kafka refuses a session timeout under its group.min.session.timeout.ms (6 s), and
    # a heartbeat must come several times per session.
    assert kafka.session_timeout >= 6.0
    assert kafka.heartbeat_interval * 3 <= kafka.session_timeout


@given(
    flavour=st.sampled_from(["tansu", "kafka"]),
    session=st.none() | st.floats(0.1, 600),
    batch=st.none() | st.integers(1, 2**20),
    wait=st.none() | st.floats(0.001, 5),
)
def test_a_value_given_wins_over_the_flavour(
    flavour: kafka_flavour.Flavour, session: float | None, batch: int | None, wait: float | None
) -> None:
    tuned = tuning(
        flavour, session_timeout=session, producer_max_batch_size=batch, fetch_max_wait=wait
    )
    base = kafka_flavour.DEFAULTS[flavour]
    assert tuned.session_timeout == (session if session is not None else base.session_timeout)
    assert tuned.producer_max_batch_size == (
        batch if batch is not None else base.producer_max_batch_size
    )
    assert tuned.fetch_max_wait == (wait if wait is not None else base.fetch_max_wait)
    assert tuned.heartbeat_interval == base.heartbeat_interval


@pytest.mark.parametrize(
    ("cluster_id", "flavour"),
    [
        ("tansu_cluster", "tansu"),
        ("MkU3OEVBNTcwNTJENDM2Qk", "kafka"),  # Kafka's ids are random
        ("tansu", "kafka"),
        (None, "kafka"),  # not asked (SASL), or a broker too old to say
    ],
)
def test_tansu_is_known_by_its_cluster_id(cluster_id: str | None, flavour: str) -> None:
    info = BrokerInfo(api_versions=TANSU_VERSIONS, cluster_id=cluster_id)
    assert flavour_of(info) == flavour


def test_settings_pick_the_flavour_without_asking(tmp_path: Path) -> None:
    settings = Settings(kafka_flavour="tansu", data_dir=str(tmp_path))
    tuned, info = broker_tuning(settings)
    assert (tuned.flavour, info) == ("tansu", None)
    app = create_app(Settings(kafka_flavour="kafka", data_dir=str(tmp_path)))
    assert app.conf.producer_max_batch_size == 16384
    assert app.conf.broker_session_timeout == 10.0
    assert app.fetch_max_wait == 0.5  # type: ignore[attr-defined]
    app = create_app(
        Settings(kafka_flavour="tansu", producer_max_batch_size=512, data_dir=str(tmp_path))
    )
    assert app.conf.producer_max_batch_size == 512
    assert app.conf.broker_heartbeat_interval == 1.0


def test_a_broker_that_cannot_be_asked_is_taken_for_kafka(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flavour, info = detect(f"127.0.0.1:{free_port()}", timeout=1.0)
    assert (flavour, info) == ("kafka", None)
    assert "FLOWDESK_KAFKA_FLAVOUR=tansu" in caplog.text


@pytest.fixture
def mute_server() -> Iterator[int]:
    """A port that accepts connections and answers nothing, then hangs up."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(1024)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    server.close()
    thread.join(5)


def test_a_server_that_is_no_broker_is_taken_for_kafka(mute_server: int) -> None:
    assert detect(f"127.0.0.1:{mute_server}", timeout=2.0) == ("kafka", None)


def test_aiokafka_uses_versions_both_sides_know() -> None:
    on_tansu = negotiated_versions(TANSU_VERSIONS)
    on_kafka = negotiated_versions(KAFKA_4_VERSIONS)
    # Where both brokers accept a request, aiokafka sends the same version to both.
    both = {name for name, version in on_tansu.items() if version is not None}
    assert {name: on_kafka[name] for name in both} == {name: on_tansu[name] for name in both}
    assert on_kafka["FetchRequest"] == 11
    assert on_kafka["ProduceRequest"] == 7
    assert on_kafka["OffsetRequest"] == 3
    assert on_kafka["JoinGroupRequest"] == 5
    assert on_tansu["CreatePartitionsRequest"] is None
    # A broker that no longer accepts a version aiokafka knows: the next one up.
    assert negotiated_versions({1: (4, 4)})["FetchRequest"] == 4
    assert negotiated_versions({1: (12, 18)})["FetchRequest"] is None
    assert negotiated_versions({})["MetadataRequest"] is None


def test_describe_names_each_request_once() -> None:
    line = kafka_flavour.describe(BrokerInfo(api_versions=TANSU_VERSIONS))
    assert "FetchRequest v11" in line
    assert "CreatePartitionsRequest (none)" in line
    names = [part.split(" ")[0] for part in line.split(", ")]
    assert len(names) == len(set(names))


def test_kafka_4_gets_the_versions_the_compiled_codec_covers() -> None:
    # app.kafka_codec's equivalence tests check every structure it compiles; the versions
    # aiokafka picks with Kafka 4 are among them, but for three flexible admin calls the
    # pipeline never makes, which keep aiokafka's code (as on Tansu).
    uncompiled = set()
    for builder in kafka_flavour._request_builders():
        chosen = negotiated_versions(KAFKA_4_VERSIONS)[builder.__name__]
        if chosen is None:
            continue
        struct = next(c for c in builder._CLASSES if c.API_VERSION == chosen)
        for kind in (struct, struct.RESPONSE_TYPE):
            if kafka_codec.compiled(kind.SCHEMA) is None:
                uncompiled.add(kind.__name__)
    assert uncompiled == {
        "AlterPartitionReassignmentsRequest_v0",
        "AlterPartitionReassignmentsResponse_v0",
        "DeleteRecordsRequest_v2",
        "DeleteRecordsResponse_v2",
        "ListPartitionReassignmentsRequest_v0",
        "ListPartitionReassignmentsResponse_v0",
    }


@pytest.mark.integration
def test_the_test_broker_is_recognised(broker: ManagedProcess) -> None:
    flavour, info = detect(broker.address.split("://", 1)[1])
    assert flavour == TEST_BROKER
    assert info is not None and info.brokers, "a live broker lists itself"
    assert negotiated_versions(info.api_versions)["FetchRequest"] == 11
