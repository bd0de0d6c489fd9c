"""The one place every Kafka client is built, from Settings (SPEC "Production connectivity"); its
twin for the search engine (Elasticsearch or OpenSearch, behind the port) is clickagg/es/engines.py,
in the adapter layer beside the port it builds.

Why one place: security settings (TLS, SASL, API keys, CAs, Cloud ID) must reach every client the
same way — both stages' consumers and producers, the admin calls, `produce`, the query side, the
live page, the sink's threads — and a client built by hand elsewhere is the one that cannot connect
to a secured cluster. Nothing here logs a secret: `describe_*` says which method is used, never a value.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.abc import AbstractTokenProvider

from clickagg.config import ConfigError, Settings

# -- Kafka -----------------------------------------------------------------------------------------


def kafka_options(s: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for bootstrap servers and security, shared by every Kafka client."""
    if not s.kafka_bootstrap_servers.strip():
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is empty: give host:port[,host:port...]")
    protocol = s.kafka_security_protocol.upper()
    options: dict[str, Any] = {"bootstrap_servers": s.kafka_bootstrap_servers, "security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = kafka_ssl_context(s)
    if protocol.startswith("SASL"):
        mechanism = s.kafka_sasl_mechanism.upper()
        if mechanism == "AWS_MSK_IAM":
            options["sasl_mechanism"] = "OAUTHBEARER"
            options["sasl_oauth_token_provider"] = MskIamTokenProvider(s.aws_region)
        elif mechanism == "OAUTHBEARER":
            options["sasl_mechanism"] = "OAUTHBEARER"
            options["sasl_oauth_token_provider"] = BearerTokenProvider(s.kafka_sasl_password)
        else:
            options["sasl_mechanism"] = mechanism
        if mechanism.startswith(("PLAIN", "SCRAM")):
            options["sasl_plain_username"] = s.kafka_sasl_username
            options["sasl_plain_password"] = s.kafka_sasl_password
    return options


def kafka_ssl_context(s: Settings) -> ssl.SSLContext:
    """Verifies the brokers against KAFKA_SSL_CA_LOCATION (or the system's CAs); mTLS when a client
    certificate is given; hostname verification unless KAFKA_SSL_ENDPOINT_IDENTIFICATION=none."""
    context = ssl.create_default_context(cafile=s.kafka_ssl_ca_location or None)
    if s.kafka_ssl_certificate_location:
        context.load_cert_chain(
            s.kafka_ssl_certificate_location,
            s.kafka_ssl_key_location or None,
            password=s.kafka_ssl_key_password or None,
        )
    if s.kafka_ssl_endpoint_identification.lower() == "none":
        context.check_hostname = False
    return context


class MskIamTokenProvider(AbstractTokenProvider):
    """AWS_MSK_IAM: OAUTHBEARER tokens from aws-msk-iam-sasl-signer-python and the standard AWS
    credential chain (environment, profile, instance or task role)."""

    def __init__(self, region: str) -> None:
        self.region = region

    async def token(self) -> str:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        token, _expiry_ms = await asyncio.to_thread(MSKAuthTokenProvider.generate_auth_token, self.region)
        return str(token)

    def extensions(self) -> dict[str, str]:
        return {}


class BearerTokenProvider(AbstractTokenProvider):
    """OAUTHBEARER with a token obtained elsewhere: KAFKA_SASL_PASSWORD holds it, or the file named by
    KAFKA_SASL_PASSWORD_FILE, read again at every (re)authentication so that a sidecar can renew it."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        import os

        path = os.environ.get("KAFKA_SASL_PASSWORD_FILE")
        if path:
            return await asyncio.to_thread(lambda: open(path).read().strip())
        return self._token

    def extensions(self) -> dict[str, str]:
        return {}


def consumer(s: Settings, *topics: str, **options: Any) -> Any:
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(*topics, **kafka_options(s), **options)


def producer(s: Settings, **options: Any) -> Any:
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(**kafka_options(s), **options)


def admin(s: Settings, **options: Any) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(**kafka_options(s), **options)


def describe_kafka(s: Settings) -> str:
    protocol = s.kafka_security_protocol.upper()
    if protocol.startswith("SASL"):
        return f"{protocol} with {s.kafka_sasl_mechanism.upper()}"
    return protocol


def faust_credentials(s: Settings) -> Any:
    """The same security for the Faust app's own Kafka clients (it hosts the stages)."""
    import faust

    protocol = s.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    context = kafka_ssl_context(s) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    mechanism = s.kafka_sasl_mechanism.upper()
    if mechanism in ("OAUTHBEARER", "AWS_MSK_IAM"):
        return faust.OAuthCredentials(
            oauth_cb=kafka_options(s).get("sasl_oauth_token_provider"), ssl_context=context
        )
    return faust.SASLCredentials(
        username=s.kafka_sasl_username,
        password=s.kafka_sasl_password,
        ssl_context=context,
        mechanism=mechanism,
    )
