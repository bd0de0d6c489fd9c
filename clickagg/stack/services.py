"""The two real services of the local stack: a KRaft Kafka broker and an Elasticsearch node."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickagg.stack import javatool
from clickagg.stack.fetch import compile_es_launcher, fetch_jars, require_tool
from clickagg.stack.layout import ELASTICSEARCH_VERSION, KAFKA_VERSION, StackError, StackLayout


@dataclass(frozen=True)
class Service:
    """What the manager needs to run one service: how to install, start and probe it."""

    name: str
    port: int
    url: str
    install: Callable[[], None]
    command: Callable[[], list[str]]
    healthy: Callable[[], bool]

    def tag(self, layout: StackLayout) -> str:
        """A marker placed on the command line so `down` only ever stops processes it started."""
        return f"-Dclickagg.stack={layout.service_dir(self.name)}"


@dataclass(frozen=True)
class KafkaListener:
    """One more broker listener (`stack up --secure` adds SASL_SSL); the PLAINTEXT and CONTROLLER ones stay.

    `format_args` go to the storage format (e.g. `--add-scram`) through a 0600 argument file, never on
    a command line, and `secrets` (the passwords in them) never reach the log (`javatool.py`).
    """

    name: str
    protocol: str
    bind: str  # host:port
    advertised: str  # host:port
    properties: tuple[str, ...] = ()
    format_args: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


def kafka_service(layout: StackLayout, listener: KafkaListener | None = None) -> Service:
    home = layout.service_dir("kafka")
    props = home / "server.properties"
    data = home / "data"

    def install() -> None:
        fetch_jars("kafka-pom.xml", KAFKA_VERSION, layout.kafka_lib, layout.log_file("kafka"))
        home.mkdir(parents=True, exist_ok=True)
        props.write_text(_kafka_properties(layout, data, listener))
        (home / "log4j.properties").write_text(_KAFKA_LOG4J)
        if not (data / "meta.properties").exists():
            _format_kafka_storage(layout, props, listener)

    def command() -> list[str]:
        java = require_tool("java", "install a Java 17+ runtime")
        return [
            java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{home / 'log4j.properties'}",
            f"-Dclickagg.stack={home}",
            "-cp", f"{layout.kafka_lib}/*", "kafka.Kafka", str(props),
        ]  # fmt: skip

    return Service(
        name="kafka",
        port=layout.kafka_port,
        url=layout.kafka_bootstrap,
        install=install,
        command=command,
        healthy=lambda: kafka_answers_metadata(layout.kafka_bootstrap),
    )


def _kafka_properties(layout: StackLayout, data: Path, listener: KafkaListener | None = None) -> str:
    listeners = (
        f"PLAINTEXT://127.0.0.1:{layout.kafka_port},CONTROLLER://127.0.0.1:{layout.kafka_controller_port}"
    )
    advertised = f"PLAINTEXT://127.0.0.1:{layout.kafka_port}"
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if listener is not None:
        listeners += f",{listener.name}://{listener.bind}"
        advertised += f",{listener.name}://{listener.advertised}"
        protocols += f",{listener.name}:{listener.protocol}"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{layout.kafka_controller_port}",
            f"listeners={listeners}",
            f"advertised.listeners={advertised}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listener.security.protocol.map={protocols}",
            f"log.dirs={data}",
            "num.partitions=1",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=8",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=24",
            *(listener.properties if listener is not None else ()),
            "",
        ]
    )


_KAFKA_LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.storage=WARN
"""


def _format_kafka_storage(layout: StackLayout, props: Path, listener: KafkaListener | None = None) -> None:
    import subprocess

    java = require_tool("java", "install a Java 17+ runtime")
    cluster_id = "-"
    while cluster_id.startswith("-"):  # as Kafka's Uuid.randomUuid(): "-..." would parse as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    jvm = [
        java,
        f"-Dlog4j.configuration=file:{props.parent / 'log4j.properties'}",
        "-cp",
        f"{layout.kafka_lib}/*",
    ]
    tool = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props), "--ignore-formatted"]
    log = layout.log_file("kafka")
    if listener is not None and listener.format_args:  # e.g. --add-scram with a password
        code = javatool.run(jvm, [*tool, *listener.format_args], listener.secrets, log, props.parent)
    else:
        with log.open("ab") as out:
            code = subprocess.run([*jvm, *tool], stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise StackError(f"formatting Kafka's KRaft storage failed; see {log}")


def kafka_answers_metadata(bootstrap: str, timeout_s: float = 5.0, **client_options: Any) -> bool:
    """True when the broker answers a metadata request (what every client needs first).

    client_options: security for a listener that needs it (the secure stack's SASL_SSL probe).
    """
    import logging

    from aiokafka import AIOKafkaClient  # deferred: status/down do not need it

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refused connects are expected while starting

    async def probe() -> bool:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **client_options
        )
        try:
            await asyncio.wait_for(client.bootstrap(), timeout_s)
            return bool(client.cluster.brokers())
        except Exception:
            return False
        finally:
            await client.close()

    return asyncio.run(probe())


def elasticsearch_service(layout: StackLayout) -> Service:
    home = layout.service_dir("elasticsearch")

    def install() -> None:
        log = layout.log_file("elasticsearch")
        fetch_jars("elasticsearch-pom.xml", ELASTICSEARCH_VERSION, layout.es_lib, log)
        compile_es_launcher(layout.es_lib, layout.es_launcher_dir, log)
        (home / "tmp").mkdir(parents=True, exist_ok=True)

    def command() -> list[str]:
        java = require_tool("java", "install a Java 17+ runtime")
        return [
            java, "-Xms512m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            # The node runs as a library: no native access (it refuses root and needs no mlock here).
            "-Djna.nosys=true", "-Djna.nounpack=true", "-Dtests.system_call_filter=false",
            f"-Djava.io.tmpdir={home / 'tmp'}",
            f"-Dclickagg.es.home={home}",
            f"-Dclickagg.es.http_port={layout.es_port}",
            f"-Dclickagg.es.transport_port={layout.es_transport_port}",
            f"-Dclickagg.stack={home}",
            "-cp", f"{layout.es_launcher_dir}:{layout.es_lib}/*", "EsNode",
        ]  # fmt: skip

    return Service(
        name="elasticsearch",
        port=layout.es_port,
        url=layout.es_url,
        install=install,
        command=command,
        healthy=lambda: elasticsearch_healthy(layout.es_url),
    )


def elasticsearch_healthy(url: str, timeout_s: float = 5.0) -> bool:
    """True when the cluster is yellow or green and speaks as Elasticsearch (the client checks the header)."""
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=timeout_s) as resp:
            body = json.loads(resp.read())
            product = resp.headers.get("X-Elastic-Product")
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return product == "Elasticsearch" and body.get("status") in ("yellow", "green")


def wait_healthy(service: Service, pid_alive: Callable[[], bool], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.healthy():
            return
        if not pid_alive():
            raise StackError(f"{service.name} exited during start-up; see {log}")
        time.sleep(1.0)
    raise StackError(f"{service.name} did not become healthy within {timeout_s:.0f}s; see {log}")


def java_major() -> int:
    """Major version of the `java` on PATH (the stack needs 17+)."""
    import subprocess

    java = shutil.which("java")
    if java is None:
        raise StackError("`java` was not found on PATH: install a Java 17+ runtime")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    try:
        version = out.split('"')[1]
        return int(version.split(".")[0])
    except (IndexError, ValueError):
        raise StackError(f"cannot read the Java version from: {out.strip()[:200]}") from None
