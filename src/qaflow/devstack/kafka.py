"""A single-node Apache Kafka broker in KRaft mode, run from the Maven Central jars."""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from qaflow.devstack.errors import MissingBinaryError, require_module
from qaflow.devstack.ports import LOOPBACK, free_port, free_ports, is_listening
from qaflow.devstack.process import ServerProcess

DEFAULT_VERSION = "4.3.1"  # keep in step with k8s-dev/local/kafka/pom.xml and Strimzi
DEFAULT_JVM_OPTS = ("-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError")

# One combined broker+controller. Topics are not auto-created: like the cluster, where each
# topic is a Strimzi KafkaTopic, code must create (or declare) the topics it uses.
# Internal topics get one partition and one replica so the first consumer group starts fast.
SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}
auto.create.topics.enable={auto_create}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
"""

LOG4J2_PROPERTIES = """\
appender.out.type=Console
appender.out.name=STDOUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=STDOUT
logger.state.name=state.change.logger
logger.state.level=WARN
"""


def new_cluster_id() -> str:
    """A random cluster id: 16 bytes, URL-safe base64, never starting with ``-``.

    The storage tool's argument parser takes an id starting with ``-`` for an option, so
    Kafka's own ``Uuid.randomUuid()`` redraws those; so do we (1 draw in 64 began with ``-``).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def default_libs_dir(version: str = DEFAULT_VERSION) -> Path:
    """Where install-deps.sh puts the jars of Kafka ``version``."""
    cache = os.environ.get("QAFLOW_CACHE_DIR") or Path.home() / ".cache" / "qaflow"
    return Path(cache) / f"kafka-{version}" / "libs"


class KafkaServer(ServerProcess):
    """``java -cp '<libs>/*' kafka.Kafka server.properties`` on 127.0.0.1."""

    name = "kafka"

    def __init__(
        self,
        workdir: Path | str,
        port: int | None = None,
        *,
        version: str = DEFAULT_VERSION,
        libs_dir: Path | str | None = None,
        auto_create_topics: bool = False,
        jvm_opts: tuple[str, ...] = DEFAULT_JVM_OPTS,
        controller_port: int = 0,
        keep_data: bool = False,
        **kwargs: Any,
    ) -> None:
        """``keep_data``: start on the log directory a previous run left (a restart), if formatted."""
        kwargs.setdefault("start_timeout", 90.0)
        super().__init__(workdir, port, **kwargs)
        self.version = version
        self.libs_dir = Path(libs_dir) if libs_dir else default_libs_dir(version)
        self.auto_create_topics = auto_create_topics
        self.jvm_opts = jvm_opts
        self.controller_port = controller_port
        self.keep_data = keep_data

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def check(self) -> None:
        require_module("kafka", "kafka")
        if shutil.which("java") is None:
            raise MissingBinaryError(what="java", looked_in="PATH")
        if not (self.libs_dir / f"kafka_2.13-{self.version}.jar").is_file():
            raise MissingBinaryError(what=f"Kafka {self.version} jars", looked_in=str(self.libs_dir))

    def pick_ports(self) -> None:
        self.port, self.controller_port = free_ports(2)

    def _java(self, *args: str, opts: tuple[str, ...]) -> list[str]:
        log4j = f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}"
        classpath = f"{self.libs_dir}/*"
        return ["java", *opts, "-Djava.awt.headless=true", log4j, "-cp", classpath, *args]

    def prepare(self) -> None:
        if not self.controller_port:
            self.controller_port = free_port()
        data_dir = self.workdir / "data"
        reuse = self.keep_data and (data_dir / "meta.properties").is_file()
        if not reuse:
            shutil.rmtree(data_dir, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        props = self.workdir / "server.properties"
        props.write_text(
            SERVER_PROPERTIES.format(
                host=LOOPBACK,
                port=self.port,
                controller_port=self.controller_port,
                data_dir=data_dir,
                auto_create=str(self.auto_create_topics).lower(),
            )
        )
        if reuse:
            return
        cluster_id = new_cluster_id()
        fmt = ("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props))
        quick = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
        self.run_step("format", self._java(*fmt, opts=quick))

    def start_in_place(self) -> KafkaServer:
        """Start again after :meth:`stop`, on the same ports and data directory (no format):
        a broker restart, as an operator or a chaos test does it."""
        if self.running:
            return self
        if not self.port or not (self.workdir / "server.properties").is_file():
            msg = "start_in_place() needs a server that was started before"
            raise RuntimeError(msg)
        self.spawn()
        try:
            self.wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def command(self) -> list[str]:
        props = str(self.workdir / "server.properties")
        return self._java("kafka.Kafka", props, opts=self.jvm_opts)

    def detach(self) -> dict[str, Any]:
        return {**super().detach(), "controller_port": self.controller_port}

    def ping(self) -> None:
        if not is_listening(self.port):
            msg = f"nothing listens on {self.bootstrap} yet"
            raise ConnectionError(msg)
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="qaflow-devstack-ping",
            request_timeout_ms=5000,
        )
        try:
            admin.list_topics()
        finally:
            admin.close()
