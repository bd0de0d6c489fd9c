"""`clickagg stack up --secure`: Kafka over SASL_SSL (SCRAM-SHA-512) and Elasticsearch behind TLS + auth.

Each stack here has its own state dir and free ports (never the shared stack's CLICKAGG_STACK_DIR, 9092
or 9200, which other tests use): this module brings it up itself, fails (never skips) when it cannot
start, and stops everything it started. Clients are configured only from the written secure.env /
secure-apikey.env, as a user would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context
from elastic_transport import TlsError
from elasticsearch import AuthenticationException, Elasticsearch

from clickagg.cli import main
from clickagg.stack import manager, procs, secure
from clickagg.stack.layout import StackError, StackLayout

ENV_NAMES = [
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "ELASTICSEARCH_URL",
    "ELASTICSEARCH_USERNAME",
    "ELASTICSEARCH_PASSWORD",
    "ELASTICSEARCH_CA_CERTS",
]


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(*groups: tuple[int, ...]) -> list[int]:
    """One port per group, each free together with port + every offset of its group, none shared."""
    taken: set[int] = set()
    chosen = []
    start = 21000 + (os.getpid() % 500) * 13  # away from the stack's defaults; differs between runs
    for offsets in groups:
        for port in range(start, 31000, 7):
            needed = {port + offset for offset in offsets}
            if not needed & taken and all(_free(p) for p in needed):
                taken |= needed
                chosen.append(port)
                break
        else:
            raise AssertionError("no free ports for a separate stack")
    return chosen


def separate_layout(state_dir: Path) -> StackLayout:
    """A stack of its own: shares only the download cache with the one the other tests use."""
    kafka, es, opensearch, kafka_secure, es_secure = _ports((0, 10001), (0, 100), (0, 100), (0,), (0,))
    return StackLayout(
        cache_dir=StackLayout.from_env().cache_dir,
        state_dir=state_dir,
        kafka_port=kafka,
        es_port=es,
        opensearch_port=opensearch,
        kafka_secure_port=kafka_secure,
        es_secure_port=es_secure,
    )


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackLayout]:
    layout = separate_layout(tmp_path_factory.mktemp("secure-stack"))
    started = time.monotonic()
    try:
        lines = manager.up(layout, secure=True)
    except StackError as exc:
        manager.down(layout, kill=True)
        pytest.fail(f"the secure stack could not start: {exc}", pytrace=False)
    print(f"\n[secure stack] up --secure from scratch: {time.monotonic() - started:.1f}s")
    print("[secure stack] " + "\n[secure stack] ".join(lines))
    yield layout
    manager.down(layout)


@pytest.fixture(scope="module")
def env(secure_stack: StackLayout) -> dict[str, str]:
    return read_env(secure.env_file(secure_stack))


def test_secure_env_has_the_contract_names_and_private_files(secure_stack: StackLayout) -> None:
    values = read_env(secure.env_file(secure_stack))
    assert list(values) == ENV_NAMES
    assert values["KAFKA_BOOTSTRAP_SERVERS"] == f"localhost:{secure_stack.kafka_secure_port}"
    assert values["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert values["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert values["ELASTICSEARCH_URL"] == f"https://localhost:{secure_stack.es_secure_port}"
    assert values["KAFKA_SSL_CA_LOCATION"] == values["ELASTICSEARCH_CA_CERTS"]
    assert Path(values["KAFKA_SSL_CA_LOCATION"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    # API key in its own file, without a user/password (an API key wins when both are set).
    apikey = read_env(secure.apikey_env_file(secure_stack))
    assert "ELASTICSEARCH_API_KEY" in apikey
    assert "ELASTICSEARCH_USERNAME" not in apikey and "ELASTICSEARCH_PASSWORD" not in apikey
    assert apikey["KAFKA_SASL_PASSWORD"] == values["KAFKA_SASL_PASSWORD"]
    assert (
        len(
            {values["KAFKA_SASL_PASSWORD"], values["ELASTICSEARCH_PASSWORD"], apikey["ELASTICSEARCH_API_KEY"]}
        )
        == 3
    )
    # Secrets and keys are 0600 in a 0700 dir; so are both env files.
    sec = secure.secure_dir(secure_stack)
    assert stat.S_IMODE(sec.stat().st_mode) == 0o700
    private = [
        *secure.secret_files(secure_stack).values(),
        sec / "ca.key",
        sec / "server.key",
        sec / "htpasswd",
    ]
    private += [secure.env_file(secure_stack), secure.apikey_env_file(secure_stack)]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_secrets_are_random_per_stack(secure_stack: StackLayout, tmp_path: Path) -> None:
    other = StackLayout(cache_dir=tmp_path / "c", state_dir=tmp_path / "s", kafka_port=1, es_port=2)
    mine, theirs = secure.load_secrets(secure_stack), secure.load_secrets(other)
    assert mine.kafka_password != theirs.kafka_password and mine.api_key != theirs.api_key
    assert secure.load_secrets(secure_stack) == mine  # kept: the broker's SCRAM user depends on it


def test_status_shows_secure_endpoints_and_no_secret(
    secure_stack: StackLayout,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {
        "CLICKAGG_STACK_DIR": str(secure_stack.state_dir),
        "CLICKAGG_KAFKA_PORT": str(secure_stack.kafka_port),
        "CLICKAGG_ES_PORT": str(secure_stack.es_port),
        "CLICKAGG_OPENSEARCH_PORT": str(secure_stack.opensearch_port),
        "CLICKAGG_KAFKA_SECURE_PORT": str(secure_stack.kafka_secure_port),
        "CLICKAGG_ES_SECURE_PORT": str(secure_stack.es_secure_port),
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["stack", "status"]) == 0
    out = capsys.readouterr().out
    assert f"kafka-secure   healthy            localhost:{secure_stack.kafka_secure_port}" in out
    assert f"es-secure      healthy            https://localhost:{secure_stack.es_secure_port}" in out
    assert str(secure.env_file(secure_stack)) in out
    apikey = read_env(secure.apikey_env_file(secure_stack))["ELASTICSEARCH_API_KEY"]
    for secret in (env["KAFKA_SASL_PASSWORD"], env["ELASTICSEARCH_PASSWORD"], apikey):
        assert secret not in out


def _secrets_of(layout: StackLayout) -> list[str]:
    found = secure.load_secrets(layout)
    return [found.kafka_password, found.es_password, found.api_key, found.api_key_encoded]


def assert_no_secret_leaked(layout: StackLayout) -> None:
    """No secret in a log, a properties file or a process's command line; only in secure/ and the env files."""
    allowed = {secure.env_file(layout), secure.apikey_env_file(layout)}
    secrets = _secrets_of(layout)
    for path in layout.state_dir.rglob("*"):
        if path.is_file() and secure.secure_dir(layout) not in path.parents and path not in allowed:
            text = path.read_bytes().decode(errors="replace")
            assert not any(secret in text for secret in secrets), f"a secret is in {path}"
    for name in ("kafka", "elasticsearch", secure.NGINX):
        pid = procs.owned_pid(layout.pid_file(name), f"-Dclickagg.stack={layout.service_dir(name)}")
        if pid is not None:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            assert not any(secret in cmdline for secret in secrets), f"a secret is on {name}'s command line"


def test_no_secret_in_logs_configs_or_command_lines(secure_stack: StackLayout) -> None:
    assert_no_secret_leaked(secure_stack)


# --- Kafka -----------------------------------------------------------------------------------------


def kafka_options(env: dict[str, str], **override: object) -> dict[str, object]:
    options: dict[str, object] = {
        "bootstrap_servers": env["KAFKA_BOOTSTRAP_SERVERS"],
        "security_protocol": env["KAFKA_SECURITY_PROTOCOL"],
        "sasl_mechanism": env["KAFKA_SASL_MECHANISM"],
        "sasl_plain_username": env["KAFKA_SASL_USERNAME"],
        "sasl_plain_password": env["KAFKA_SASL_PASSWORD"],
        "ssl_context": create_ssl_context(cafile=env["KAFKA_SSL_CA_LOCATION"]),
        "request_timeout_ms": 10_000,
    }
    options.update(override)
    return options


async def test_kafka_produce_and_consume_over_sasl_ssl(env: dict[str, str]) -> None:
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    value = f"hello over SASL_SSL {uuid.uuid4()}".encode()
    producer = AIOKafkaProducer(**kafka_options(env))  # type: ignore[arg-type]
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **kafka_options(env))  # type: ignore[arg-type]
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert (record.partition, record.offset, record.key, record.value) == (
        meta.partition,
        meta.offset,
        b"k",
        value,
    )


async def _start_fails(**options: object) -> float:
    """Seconds until the producer's start raised (it must: the test fails if it connects)."""
    producer = AIOKafkaProducer(**options)  # type: ignore[arg-type]
    started = time.monotonic()
    try:
        with pytest.raises(Exception):  # noqa: B017  (aiokafka: KafkaConnectionError after the auth/TLS failure)
            await asyncio.wait_for(producer.start(), 30)
    finally:
        await producer.stop()
    return time.monotonic() - started


def _broker_says(layout: StackLayout, text: str, since: int) -> bool:
    return text in layout.log_file("kafka").read_bytes()[since:].decode(errors="replace")


async def test_kafka_wrong_password_fails_fast(env: dict[str, str], secure_stack: StackLayout) -> None:
    since = secure_stack.log_file("kafka").stat().st_size
    took = await _start_fails(**kafka_options(env, sasl_plain_password="not-the-password"))
    assert took < 30
    await asyncio.sleep(0.5)  # the broker's log line may trail the client's failure
    assert _broker_says(secure_stack, "invalid credentials with SASL mechanism SCRAM-SHA-512", since)


async def test_kafka_plaintext_client_to_the_secure_port_fails(
    env: dict[str, str], secure_stack: StackLayout
) -> None:
    since = secure_stack.log_file("kafka").stat().st_size
    took = await _start_fails(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], request_timeout_ms=10_000)
    assert took < 30
    await asyncio.sleep(0.5)
    assert _broker_says(secure_stack, "SSL handshake failed", since)


async def test_kafka_without_the_stack_ca_fails(env: dict[str, str]) -> None:
    took = await _start_fails(**kafka_options(env, ssl_context=ssl.create_default_context()))
    assert took < 30


async def test_kafka_plain_listener_still_open(secure_stack: StackLayout) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=secure_stack.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(f"plain-{uuid.uuid4().hex[:8]}", b"x")
    finally:
        await producer.stop()


# --- Elasticsearch ---------------------------------------------------------------------------------


def _index_and_get(client: Elasticsearch) -> None:
    index = f"secure-{uuid.uuid4().hex[:8]}"
    doc = {"article_id": 7, "impression": 3, "id": str(uuid.uuid4())}
    try:
        written = client.index(index=index, id="1", document=doc, refresh=True)
        assert written["result"] == "created"
        assert client.get(index=index, id="1")["_source"] == doc
    finally:
        client.options(ignore_status=404).indices.delete(index=index)


def test_elasticsearch_basic_auth_through_tls(env: dict[str, str]) -> None:
    with Elasticsearch(
        env["ELASTICSEARCH_URL"],
        ca_certs=env["ELASTICSEARCH_CA_CERTS"],
        basic_auth=(env["ELASTICSEARCH_USERNAME"], env["ELASTICSEARCH_PASSWORD"]),
    ) as client:
        _index_and_get(client)


def test_elasticsearch_api_key_through_tls(secure_stack: StackLayout) -> None:
    apikey = read_env(secure.apikey_env_file(secure_stack))
    with Elasticsearch(
        apikey["ELASTICSEARCH_URL"],
        ca_certs=apikey["ELASTICSEARCH_CA_CERTS"],
        api_key=apikey["ELASTICSEARCH_API_KEY"],
    ) as client:
        _index_and_get(client)
    found = secure.load_secrets(secure_stack)  # the (id, key) form the client encodes itself
    with Elasticsearch(
        apikey["ELASTICSEARCH_URL"],
        ca_certs=apikey["ELASTICSEARCH_CA_CERTS"],
        api_key=(found.api_key_id, found.api_key),
    ) as client:
        assert client.cluster.health()["status"] in ("green", "yellow")


@pytest.mark.parametrize(
    "auth",
    [
        {"basic_auth": ("clickagg", "wrong-password")},
        {"basic_auth": ("elastic", "changeme")},
        {"api_key": ("wrong-id", "wrong-key")},
        {},
    ],
    ids=["wrong-password", "other-user", "wrong-api-key", "no-credentials"],
)
def test_elasticsearch_rejects_with_401_like_elasticsearch(
    env: dict[str, str], auth: dict[str, object]
) -> None:
    with Elasticsearch(env["ELASTICSEARCH_URL"], ca_certs=env["ELASTICSEARCH_CA_CERTS"], **auth) as client:  # type: ignore[arg-type]
        with pytest.raises(AuthenticationException) as raised:
            client.cluster.health()
    assert raised.value.meta.status == 401
    body = raised.value.body
    assert isinstance(body, dict) and body["status"] == 401
    assert body["error"]["type"] == "security_exception"
    expected = "missing authentication credentials" if not auth else "unable to authenticate"
    assert body["error"]["reason"].startswith(expected)


def test_elasticsearch_api_key_must_match_exactly(env: dict[str, str], secure_stack: StackLayout) -> None:
    key = secure.load_secrets(secure_stack).api_key_encoded
    for wrong in (key.swapcase(), key + "A", key[:-1]):
        with Elasticsearch(
            env["ELASTICSEARCH_URL"], ca_certs=env["ELASTICSEARCH_CA_CERTS"], api_key=wrong
        ) as client:
            with pytest.raises(AuthenticationException):
                client.cluster.health()


def test_elasticsearch_without_the_stack_ca_is_a_tls_error(env: dict[str, str]) -> None:
    with Elasticsearch(
        env["ELASTICSEARCH_URL"],
        basic_auth=(env["ELASTICSEARCH_USERNAME"], env["ELASTICSEARCH_PASSWORD"]),
        max_retries=0,
    ) as client:
        with pytest.raises(TlsError) as raised:
            client.cluster.health()
    causes, error = [], raised.value
    while error is not None:  # the transport wraps urllib3's SSLError, which wraps ssl's
        causes.append(repr(error))
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    assert "CERTIFICATE_VERIFY_FAILED" in " ".join(causes), causes


def test_elasticsearch_plain_port_unchanged(secure_stack: StackLayout) -> None:
    with Elasticsearch(secure_stack.es_url) as client:
        assert client.cluster.health()["status"] in ("green", "yellow")


def test_down_stops_nginx_too(secure_stack: StackLayout) -> None:
    pid = secure.nginx_pid(secure_stack)
    assert pid is not None
    lines = manager.down(secure_stack)
    assert any(line.startswith("es-secure") and "stopped" in line for line in lines), lines
    assert not procs.alive(pid)
    assert not procs.port_in_use(secure_stack.es_secure_port)
    assert not procs.port_in_use(secure_stack.kafka_secure_port)


# --- a Kafka data dir formatted by a plain `stack up` ----------------------------------------------


async def _produce(env: dict[str, str], topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(**kafka_options(env))  # type: ignore[arg-type]
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def test_secure_on_a_plain_formatted_kafka_adds_the_user(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    layout = separate_layout(tmp_path_factory.mktemp("plain-then-secure"))
    try:
        try:
            manager.up(layout, "kafka")
        except StackError as exc:
            pytest.fail(f"the plain Kafka could not start: {exc}", pytrace=False)
        # A running plain broker is not restarted behind its clients' backs: a clear line says how.
        with pytest.raises(StackError, match="clickagg stack down kafka && clickagg stack up --secure"):
            manager.up(layout, "kafka", secure=True)
        manager.down(layout, "kafka")
        started = time.monotonic()
        try:
            lines = manager.up(layout, "kafka", secure=True)
        except StackError as exc:
            pytest.fail(f"the secure Kafka could not start: {exc}", pytrace=False)
        print(
            f"\n[secure stack] kafka restart with --secure on a plain data dir: {time.monotonic() - started:.1f}s"
        )
        assert any("kafka-configs" in line for line in lines), lines
        env = read_env(secure.env_file(layout))
        topic = f"secure-{uuid.uuid4().hex[:8]}"
        asyncio.run(_produce(env, topic, b"after kafka-configs"))  # a sync test: the stack's probes run loops
        # Once added, the user is not added again on the next start.
        manager.down(layout, "kafka")
        lines = manager.up(layout, "kafka", secure=True)
        assert not any("kafka-configs" in line for line in lines), lines
        assert_no_secret_leaked(layout)
    finally:
        manager.down(layout)
