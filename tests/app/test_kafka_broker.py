"""Apache Kafka as the embedded broker: its jars, its process, its life cycle."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hypothesis import given
from hypothesis import strategies as st

from app import kafka_broker
from app.errors import StackError
from app.kafka_broker import (
    cache_root,
    cluster_id,
    find_java,
    find_maven,
    java_major,
    kafka_process,
    resolve,
    server_properties,
)
from app.kafka_flavour import detect
from app.settings import Settings
from app.stack import free_port, http_ok, port_open


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21-ea" 2023-09-19', 21),
        ("Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nnothing else", None),
        ("", None),
    ],
)
def test_the_java_version_is_read_from_its_banner(output: str, major: int | None) -> None:
    assert java_major(output) == major


def _script(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_no_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match=r"Java 17 or newer.*install a Java 17\+ runtime"):
        find_java()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-such-jdk"))
    with pytest.raises(StackError, match="JAVA_HOME"):
        find_java()


def test_an_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _script(tmp_path / "bin", "java", "echo 'java version \"1.8.0_392\"' >&2")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(StackError, match=r"needs Java 17 or newer; .* is 8"):
        find_java()


def test_no_maven_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match="needs Maven, once: install it"):
        find_maven()


@pytest.fixture
def fake_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A folder first on PATH, where a test writes its own ``mvn``."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    yield folder


def test_resolving_runs_maven_once_and_says_so(
    fake_maven: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for Maven: writes a jar where it is told, after a while.
    _script(
        fake_maven,
        "mvn",
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#-DoutputDirectory=}";; esac; '
        'done; sleep 0.5; mkdir -p "$out"; touch "$out/kafka_2.13-9.9.9.jar"; '
        'echo "$@" > "$out/../argv"',
    )
    monkeypatch.setattr(kafka_broker, "PROGRESS_EVERY", 0.1)
    said: list[str] = []
    lib = resolve("9.9.9", cache=tmp_path / "cache", say=said.append)
    assert lib == tmp_path / "cache" / "kafka-9.9.9" / "lib"
    assert (lib / "kafka_2.13-9.9.9.jar").exists()
    assert "Maven Central" in said[0]
    assert any("still resolving" in line for line in said)
    assert said[-1].startswith("resolved Apache Kafka 9.9.9: 1 jars")
    argv = (lib.parent / "argv").read_text()
    assert "dependency:copy-dependencies" in argv
    pom = (lib.parent / "pom.xml").read_text()
    assert "<artifactId>kafka_2.13</artifactId>" in pom
    assert "<version>9.9.9</version>" in pom
    # Resolved: no Maven needed any more.
    (fake_maven / "mvn").unlink()
    monkeypatch.setenv("PATH", str(fake_maven))
    said.clear()
    assert resolve("9.9.9", cache=tmp_path / "cache", say=said.append) == lib
    assert said == []


def test_a_failed_resolution_shows_maven_s_log_and_keeps_nothing(
    fake_maven: Path, tmp_path: Path
) -> None:
    _script(fake_maven, "mvn", "echo 'Could not transfer artifact: connection refused'; exit 1")
    with pytest.raises(StackError, match=r"(?s)exit code 1.*Maven Central.*connection refused"):
        resolve("9.9.9", cache=tmp_path, say=lambda _: None)
    assert not (tmp_path / "kafka-9.9.9" / "lib").exists()


def test_the_cache_is_the_setting_else_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cache_root(str(tmp_path)) == tmp_path
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root("") == tmp_path / "xdg" / "flowdesk"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root("") == Path.home() / ".cache" / "flowdesk"


@given(st.integers(0, 100))
def test_cluster_ids_are_kafka_uuids(_: int) -> None:
    text = cluster_id()
    assert len(text) == 22
    assert not text.startswith("-")
    assert uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=="))


def test_one_node_is_controller_and_broker_on_loopback(tmp_path: Path) -> None:
    lines = server_properties(port=1234, controller_port=1235, data_dir=tmp_path).splitlines()
    config = dict(line.split("=", 1) for line in lines if line)
    assert config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:1235"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1234"
    assert config["log.dirs"].startswith(str(tmp_path))
    assert config["offsets.topic.replication.factor"] == "1"
    assert int(config["message.max.bytes"]) > 8 * 1_000_000, "the oversized inputs the tests send"


def _missing_tools() -> str | None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Apache Kafka needs Java 17+, and this machine has no java"
    lib = cache_root(Settings().kafka_cache_dir) / f"kafka-{kafka_broker.KAFKA_VERSION}" / "lib"
    if shutil.which("mvn") is None and not kafka_broker.jars_ready(lib):
        return "resolving Apache Kafka's jars needs Maven, and this machine has no mvn"
    return None


@pytest.mark.integration
@pytest.mark.skipif(_missing_tools() is not None, reason=_missing_tools() or "")
async def test_kafka_starts_serves_and_stops_clean(tmp_path: Path) -> None:
    port = free_port()
    broker = kafka_process(port=port, log_dir=tmp_path)
    broker.start()
    try:
        broker.wait_healthy(120)
        assert detect(f"127.0.0.1:{port}")[0] == "kafka"
        bootstrap = f"127.0.0.1:{port}"
        topic = f"round-trip-{uuid.uuid4().hex[:8]}"
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
            assert topic in await admin.list_topics()
        finally:
            await admin.close()
        # Batching on: several records per produce batch, which Tansu miscounts.
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
        await producer.start()
        try:
            sent = [producer.send(topic, f"record {n}".encode(), partition=0) for n in range(20)]
            for future in sent:
                await (await future)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"test-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            got: list[bytes] = []
            while len(got) < 20:
                batch = await consumer.getmany(timeout_ms=10_000)
                assert batch, f"nothing more to read after {len(got)} records"
                got.extend(r.value for records in batch.values() for r in records)
            tp = TopicPartition(topic, 0)
            assert (await consumer.end_offsets([tp]))[tp] == 20
        finally:
            await consumer.stop()
        assert got == [f"record {n}".encode() for n in range(20)]
    finally:
        broker.stop()
    assert broker.popen is not None and broker.popen.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(broker.popen.pid, 0)
    assert not port_open("127.0.0.1", port)
    assert not broker.data_dir.exists(), "the data folder goes with the broker"
    assert "Kafka Server started" in broker.log_path.read_text()
    # Started again, as a stack restarts what stopped: on a fresh, empty data folder.
    broker.start()
    try:
        broker.wait_healthy(120)
        assert broker.data_dir.exists()
    finally:
        broker.stop()
    assert not broker.data_dir.exists()


@pytest.mark.integration
@pytest.mark.skipif(_missing_tools() is not None, reason=_missing_tools() or "")
def test_flowdesk_dev_runs_on_kafka_and_stops_it(tmp_path: Path) -> None:
    env = {**os.environ, "FLOWDESK_WEB_PORT": str(free_port())}
    for configured in ("FLOWDESK_KAFKA_URL", "FLOWDESK_REDIS_URL", "FLOWDESK_LLM_BASE_URL"):
        env.pop(configured, None)
    argv = ["dev", "--broker", "kafka", "--free-ports", "--backend", "sim"]
    dev = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *argv, "--log-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert dev.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            line = dev.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        output = "".join(lines)
        assert "ready in" in output, output
        broker = re.search(
            r"broker +kafka://127\.0\.0\.1:(\d+) +\(Apache Kafka.*pid (\d+)\)", output
        )
        assert broker is not None, output
        worker = re.search(r"worker 1 +(http://\S+)", output)
        assert worker is not None and http_ok(worker.group(1) + "ready"), output
    finally:
        os.kill(dev.pid, signal.SIGINT)
        try:
            rest, _ = dev.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.communicate()
            raise
    assert "stopped" in rest, rest
    # The worker asked the broker what it is, and keeps batching on.
    worker_log = "".join(p.read_text() for p in tmp_path.glob("worker-*.log"))
    assert "flavour='kafka'" in worker_log
    assert "producer_max_batch_size=16384" in worker_log
    assert "FetchRequest v11" in worker_log
    port, pid = int(broker.group(1)), int(broker.group(2))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_open("127.0.0.1", port)
    # The node's data folder, named in the configuration it logged, went with it.
    data = re.search(r"log\.dirs = (\S+)/log", (tmp_path / "broker.log").read_text())
    assert data is not None
    assert not Path(data.group(1)).exists()
