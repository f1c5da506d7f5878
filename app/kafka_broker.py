"""Apache Kafka for the embedded stack: one KRaft node, its jars from Maven Central.

``flowdesk dev --broker kafka`` and the test fixtures (``FLOWDESK_TEST_BROKER=kafka``)
run Apache Kafka instead of Tansu. Nothing of Kafka is in the repository: the first run
writes a small POM into the cache (``FLOWDESK_KAFKA_CACHE_DIR``, by default
``~/.cache/flowdesk``) and has Maven copy ``kafka_2.13`` and its dependencies into
``kafka-<version>/lib/`` there; later runs use that folder as it is. Each broker gets a
fresh data folder, formatted with Kafka's ``StorageTool`` and removed when it stops.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.errors import StackError
from app.kafka_flavour import probe
from app.stack import ManagedProcess, free_port

#: The Kafka release the embedded stack runs.
KAFKA_VERSION = "4.4.0"
#: Kafka 4 brokers need Java 17.
MIN_JAVA = 17
#: A small heap: the broker shares two cores with the workers and the tests.
JVM_OPTIONS = ("-Xmx512m", "-Xms128m", "-XX:+UseSerialGC", "-Djava.awt.headless=true")
#: Seconds between two "still resolving" messages.
PROGRESS_EVERY = 15.0
#: Longest the first resolution may take, s.
RESOLVE_TIMEOUT = 1800.0
_COMPLETE = ".complete"

POM = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by flowdesk to fetch Apache Kafka's jars; nothing is built from it. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.flowdesk</groupId>
  <artifactId>embedded-kafka</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""
#: Kafka's jars log through SLF4J 1 and bring log4j 2 but no binding between them; this
#: is the binding, of the log4j version Kafka brings.
LOG4J_VERSION = "2.25.5"

LOG4J_CONFIG = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
"""

Say = Callable[[str], None]


def _say_stderr(text: str) -> None:
    print(f"flowdesk: {text}", file=sys.stderr, flush=True)


def cache_root(setting: str = "") -> Path:
    """Where resolved brokers are kept: the setting, else ``$XDG_CACHE_HOME/flowdesk``,
    else ``~/.cache/flowdesk``."""
    if setting:
        return Path(setting).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "flowdesk"


def java_major(version_output: str) -> int | None:
    """The major version in ``java -version``'s output (``"17.0.15"`` -> 17,
    ``"1.8.0_392"`` -> 8), or None when it names none."""
    found = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if found is None:
        return None
    major = int(found.group(1))
    if major == 1 and found.group(2) is not None:
        return int(found.group(2))
    return major


def find_java() -> str:
    """The ``java`` to run Kafka with (``$JAVA_HOME/bin/java``, else the one on PATH),
    checked to be Java 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    install = (
        f"install a Java {MIN_JAVA}+ runtime (e.g. `apt-get install openjdk-17-jre-headless`, "
        f"or Temurin from adoptium.net) and put `java` on PATH or set JAVA_HOME"
    )
    if not candidate or not Path(candidate).exists():
        raise StackError(
            f"Apache Kafka needs Java {MIN_JAVA} or newer, and none was found: {install}"
        )
    try:
        done = subprocess.run(
            [candidate, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"could not run {candidate} -version ({exc}): {install}") from exc
    major = java_major(done.stderr + done.stdout)
    if major is None or major < MIN_JAVA:
        raise StackError(
            f"Apache Kafka needs Java {MIN_JAVA} or newer; {candidate} is "
            f"{major if major is not None else 'of an unknown version'}: {install}"
        )
    return candidate


def find_maven() -> str:
    found = shutil.which("mvn")
    if found is None:
        raise StackError(
            "resolving Apache Kafka's jars from Maven Central needs Maven, once: install it "
            "(e.g. `apt-get install maven`, or from maven.apache.org) and put `mvn` on PATH"
        )
    return found


def jars_ready(lib: Path) -> bool:
    return (lib / _COMPLETE).exists()


def resolve(version: str = KAFKA_VERSION, *, cache: Path, say: Say = _say_stderr) -> Path:
    """The folder of Kafka ``version``'s jars, resolved with Maven on first use.

    A lock file keeps two processes from resolving the same version at once; the
    folder counts as resolved only once Maven finished (its marker file).
    """
    home = cache / f"kafka-{version}"
    lib = home / "lib"
    if jars_ready(lib):
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if jars_ready(lib):  # another process resolved it while this one waited
            return lib
        mvn = find_maven()
        pom = home / "pom.xml"
        pom.write_text(POM.format(version=version, log4j=LOG4J_VERSION))
        partial = home / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        say(
            f"resolving Apache Kafka {version} from Maven Central into {home} "
            f"(first run only; a minute or more)"
        )
        started = time.monotonic()
        log_path = home / "mvn.log"
        argv = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={partial}",
            "-DincludeScope=runtime",
        ]
        code = _run_reporting(argv, log_path=log_path, say=say, what=f"Apache Kafka {version}")
        if code != 0 or not any(partial.glob("kafka_2.13-*.jar")):
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise StackError(
                f"Maven could not resolve Apache Kafka {version} (exit code {code}); "
                f"is Maven Central reachable? Its log: {log_path}\n{tail}"
            )
        shutil.rmtree(lib, ignore_errors=True)
        partial.rename(lib)
        jars = sorted(p.name for p in lib.glob("*.jar"))
        (lib / _COMPLETE).write_text("\n".join(jars) + "\n")
        took = time.monotonic() - started
        say(f"resolved Apache Kafka {version}: {len(jars)} jars in {took:.0f} s")
    return lib


def _run_reporting(argv: list[str], *, log_path: Path, say: Say, what: str) -> int:
    """Run ``argv`` to its end, logging to ``log_path`` and saying every
    ``PROGRESS_EVERY`` s that it still runs; its exit code."""
    started = time.monotonic()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            while True:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    return child.wait(PROGRESS_EVERY)
                elapsed = time.monotonic() - started
                if elapsed > RESOLVE_TIMEOUT:
                    raise StackError(f"{argv[0]} did not finish within {RESOLVE_TIMEOUT:.0f} s")
                say(f"still resolving {what} ({elapsed:.0f} s)")
        finally:
            if child.poll() is None:  # a timeout, or Ctrl-C
                child.kill()
                child.wait()


def cluster_id() -> str:
    """A random KRaft cluster id, as Kafka writes them (URL-safe base64 of 16 bytes)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # would read as an option on Kafka's command line
            return text


def server_properties(*, port: int, controller_port: int, data_dir: Path) -> str:
    """One node that is both controller and broker, for one client on loopback."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data_dir / 'log'}",
            # One node: every internal topic has a single replica.
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # Records as large as channel systems may send (Tansu has no limit): the
            # workers cut what they forward to FLOWDESK_PRODUCER_MAX_REQUEST_SIZE.
            "message.max.bytes=16777216",
            # A group forms as soon as its first member joins, not 3 s later.
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2",
            "num.io.threads=4",
            "",
        ]
    )


@dataclass(kw_only=True)
class KafkaProcess(ManagedProcess):
    """A Kafka node whose data folder is written and formatted each time it starts and
    removed each time it stops."""

    java: str
    lib: Path
    data_dir: Path
    port: int
    controller_port: int

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "server.properties").write_text(
            server_properties(
                port=self.port, controller_port=self.controller_port, data_dir=self.data_dir
            )
        )
        (self.data_dir / "log4j2.properties").write_text(LOG4J_CONFIG)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            done = subprocess.run(
                [
                    self.java,
                    *JVM_OPTIONS,
                    "-cp",
                    f"{self.lib}/*",
                    f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                    "kafka.tools.StorageTool",
                    "format",
                    "--cluster-id",
                    cluster_id(),
                    "--config",
                    str(self.data_dir / "server.properties"),
                    "--ignore-formatted",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=120,
                check=False,
            )
        if done.returncode != 0:
            self.remove_data()
            raise StackError(
                f"Kafka's StorageTool could not format {self.data_dir} (exit code "
                f"{done.returncode}); its log: {self.log_path}\n{self.log_tail()}"
            )
        super().start()

    def stop(self, timeout: float = 20.0) -> None:
        # A controlled shutdown of a KRaft node takes a few seconds.
        try:
            super().stop(timeout)
        finally:
            if not self.alive():
                self.remove_data()

    def kill(self) -> None:
        try:
            super().kill()
        finally:
            if not self.alive():
                self.remove_data()

    def remove_data(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


def kafka_process(
    *,
    port: int,
    log_dir: Path,
    cache: Path | None = None,
    version: str = KAFKA_VERSION,
    say: Say = _say_stderr,
) -> KafkaProcess:
    """Apache Kafka ``version`` on 127.0.0.1:``port``, controller and broker in one JVM;
    healthy once it answers a metadata request naming itself.

    Checks Java first, then resolves the jars if this cache has not got them yet.
    """
    java = find_java()
    if cache is None:
        # Read now, not through get_settings(): flowdesk dev sets more variables after
        # starting the broker, and the cached settings would miss them.
        from app.settings import Settings

        cache = cache_root(Settings().kafka_cache_dir)
    lib = resolve(version, cache=cache, say=say)
    data_dir = Path(tempfile.mkdtemp(prefix="flowdesk-kafka-"))
    return KafkaProcess(
        name=f"broker (Apache Kafka {version})",
        argv=[
            java,
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
            "-cp",
            f"{lib}/*",
            "kafka.Kafka",
            str(data_dir / "server.properties"),
        ],
        address=f"kafka://127.0.0.1:{port}",
        log_path=log_dir / "broker.log",
        healthy=lambda: _answers_metadata(port),
        java=java,
        lib=lib,
        data_dir=data_dir,
        port=port,
        controller_port=free_port(),
    )


def _answers_metadata(port: int) -> bool:
    """True once the broker lists itself in a metadata response (it does so only when
    it has caught up with the cluster's metadata and is unfenced)."""
    try:
        return bool(probe("127.0.0.1", port, timeout=2.0).brokers)
    except (OSError, ValueError, EOFError):
        return False
