"""Before the worker starts: can it reach Kafka and Elasticsearch with its settings? One line if not.

Why: a wrong password, a wrong CA or a plaintext client on a TLS port made aiokafka log an ERROR line
per retry while the worker waited forever (and Elasticsearch's client raised deep inside a
traceback). A person needs one line that names what failed and which setting to look at, within
seconds, and a non-zero exit. Credentials and TLS failures are final at once; an unreachable
service is waited for up to `wait_s` (a worker may start a moment before its brokers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator

from clickagg import clients
from clickagg.config import ConfigError, Settings
from clickagg.es import engines


class CannotConnect(ConfigError):
    """A service refused or could not be reached with these settings (the message says which)."""


def kafka_problem(s: Settings, messages: list[str]) -> tuple[str, bool]:
    """(one line, final?) from what aiokafka logged while bootstrapping."""
    where = f"Kafka at {s.kafka_bootstrap_servers}"
    text = " | ".join(messages)
    if "SaslAuthenticationFailed" in text or "Authentication failed" in text:
        return (
            f"{where} refused the credentials ({s.kafka_sasl_mechanism.upper()}): "
            "check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
            True,
        )
    if "UnsupportedSaslMechanism" in text or "IllegalSaslState" in text:
        return f"{where} does not accept KAFKA_SASL_MECHANISM={s.kafka_sasl_mechanism}", True
    if "CERTIFICATE_VERIFY_FAILED" in text:
        if "match" in text or "Hostname mismatch" in text:
            return (
                f"{where}: the broker's certificate does not match its host name: check "
                "KAFKA_BOOTSTRAP_SERVERS (or KAFKA_SSL_ENDPOINT_IDENTIFICATION=none)",
                True,
            )
        return f"{where}: the broker's TLS certificate is not trusted: check KAFKA_SSL_CA_LOCATION", True
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return f"{where} does not speak TLS there: check KAFKA_SECURITY_PROTOCOL and the port", True
    if "closed" in text and not s.kafka_security_protocol.upper().endswith("SSL"):
        return (
            f"{where} closed the connection: if that listener uses TLS, set KAFKA_SECURITY_PROTOCOL "
            "to SSL or SASL_SSL",
            True,
        )
    if (
        "Connect call failed" in text
        or "Unable connect" in text
        or "Unable to bootstrap" in text
        or not messages
    ):
        return f"{where} is not reachable: check KAFKA_BOOTSTRAP_SERVERS and that Kafka runs", False
    return f"{where}: {messages[-1]}", False


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def held_kafka_lines() -> Iterator[list[str]]:
    """aiokafka's ERROR lines while connecting, held (not printed) for kafka_problem to read."""
    collect = _Collect()
    aiokafka_log = logging.getLogger("aiokafka")
    aiokafka_log.addHandler(collect)
    propagate, aiokafka_log.propagate = aiokafka_log.propagate, False
    try:
        yield collect.messages
    finally:
        aiokafka_log.removeHandler(collect)
        aiokafka_log.propagate = propagate


async def check_kafka(s: Settings, wait_s: float = 30.0) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        with held_kafka_lines() as messages:
            admin = clients.admin(s, request_timeout_ms=10_000)
            try:
                await asyncio.wait_for(admin.start(), 15)
                await asyncio.wait_for(admin.describe_cluster(), 15)
                return
            except Exception as exc:
                line, final = kafka_problem(s, messages or [f"{type(exc).__name__}: {exc}"])
            finally:
                try:
                    await asyncio.wait_for(admin.close(), 5)
                except Exception:
                    pass
        if final or time.monotonic() >= deadline:
            raise CannotConnect(line)
        await asyncio.sleep(1.0)


def es_problem(s: Settings, exc: Exception) -> tuple[str, bool]:
    where = f"Elasticsearch at {'Elastic Cloud' if s.elastic_cloud_id else s.elasticsearch_url}"
    name, text = type(exc).__name__, str(exc)
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "meta", None), "status", None)
    if name == "AuthenticationException" or status == 401:
        if s.elasticsearch_api_key:
            return f"{where} refused the API key: check ELASTICSEARCH_API_KEY (expired or invalid?)", True
        if s.elasticsearch_username:
            return (
                f"{where} refused the user and password: check ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD",
                True,
            )
        return (
            f"{where} wants authentication: set ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME/PASSWORD",
            True,
        )
    if name == "AuthorizationException" or status == 403:
        return f"{where}: the credentials lack a privilege the worker needs (403): {text[:200]}", True
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text or name == "TlsError":
        return (
            f"{where}: the TLS handshake failed (certificate not trusted?): check ELASTICSEARCH_CA_CERTS "
            "or ELASTICSEARCH_SSL_FINGERPRINT",
            True,
        )
    if status == 400 and "HTTPS port" in text:
        return f"{where} speaks TLS: the URL must start with https://", True
    if "fingerprint" in text.lower():
        return f"{where}: the certificate does not match ELASTICSEARCH_SSL_FINGERPRINT", True
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return f"{where} does not speak TLS there: check the URL's scheme (http/https) and port", True
    if "Connection reset" in text or "RemoteDisconnected" in text or "closed" in text.lower():
        return f"{where} closed the connection: if it uses TLS, the URL must start with https://", True
    return f"{where} is not reachable ({name}): check ELASTICSEARCH_URL and that it runs", False


async def check_elasticsearch(s: Settings, wait_s: float = 30.0) -> None:
    deadline = time.monotonic() + wait_s
    try:
        es = engines.search_engine(s, timeout_s=10, max_retries=0)
    except ValueError as exc:  # e.g. CA certificates given for an http:// URL
        raise CannotConnect(f"Elasticsearch settings do not fit together: {exc}") from None
    try:
        while True:
            try:
                # A search with a body, not HEAD: an answer without a body (e.g. nginx's "plain HTTP
                # request sent to an HTTPS port") would leave nothing to tell the operator; a missing
                # index is an answer too (ignore_unavailable), and Serverless allows search.
                await es.search(s.es_index, {"size": 0}, ignore_unavailable=True)
                return
            except Exception as exc:  # the port's error; the client's own says more (TLS, auth)
                line, final = es_problem(s, exc.__cause__ if isinstance(exc.__cause__, Exception) else exc)
            if final or time.monotonic() >= deadline:
                raise CannotConnect(line)
            await asyncio.sleep(1.0)
    finally:
        await es.close()


def check_web_port(s: Settings) -> None:
    """WEB_PORT free on WEB_BIND? Faust would otherwise fail to bind after starting, with a traceback."""
    try:
        infos = socket.getaddrinfo(s.web_bind or None, s.web_port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise CannotConnect(f"WEB_BIND={s.web_bind!r} is not an address of this host ({exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does: TIME_WAIT is fine
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
                raise CannotConnect(
                    f"WEB_PORT {s.web_port} on {s.web_bind} is in use (another worker?): set WEB_PORT to a free port"
                ) from None
            raise CannotConnect(
                f"cannot listen on WEB_BIND={s.web_bind} WEB_PORT={s.web_port}: {exc.strerror}"
            ) from None


def check_reference_data(s: Settings) -> None:
    """Parse REFERENCE_DATA once before Faust starts; a bad file is ReferenceDataError, one line.

    Why before: the worker loads it again once Faust has joined its consumer group, which after an
    unclean stop can take a session timeout (60 s); a malformed or empty file must be refused at once.
    The cost is one more parse at start (10 million rows: a few seconds); the table is then dropped.
    """
    if s.reference_data:
        from clickagg.reference_data.errors import ReferenceDataError
        from clickagg.reference_data.store import ReferenceStore

        store_log = logging.getLogger("clickagg.reference_data.store")
        level = store_log.level
        store_log.setLevel(logging.WARNING)  # its "loaded" line is the worker's to say, once
        try:
            ReferenceStore(s.reference_data, max_bad_ratio=s.reference_max_bad_ratio).load_initial()
        except ReferenceDataError as exc:
            raise ConfigError(f"REFERENCE_DATA {exc}") from exc
        finally:
            store_log.setLevel(level)


def check(s: Settings, wait_s: float = 30.0) -> None:
    """Web port, reference data, then both services on a private event loop (the thread's own is Faust's)."""
    check_web_port(s)
    check_reference_data(s)
    elastic_transport = logging.getLogger("elastic_transport")
    level = elastic_transport.level
    elastic_transport.setLevel(logging.CRITICAL)  # its per-retry warnings: the one line says it
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(check_kafka(s, wait_s))
        loop.run_until_complete(check_elasticsearch(s, wait_s))
    finally:
        loop.close()
        elastic_transport.setLevel(level)
