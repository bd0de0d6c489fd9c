"""SPEC's configuration contract: environment variables with matching CLI flags, validated up front."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path


class ConfigError(Exception):
    """Bad configuration; reported as one clear line before anything starts."""


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap_servers: str = "localhost:9092"
    events_topic: str = "user-activity"
    elasticsearch_url: str = "http://localhost:9200"
    es_index: str = "clickstream-minutely"
    reference_data: str = ""
    window_seconds: int = 60
    allowed_lateness_seconds: int = 10
    idle_timeout_seconds: int = 30
    app_id: str = "clickagg"
    data_dir: str = str(Path.home() / ".local" / "state" / "clickagg" / "data")
    web_port: int = 6066
    event_time_field: str = ""
    dlq_topic: str = ""
    partials_partitions: int = 0
    reference_reload_seconds: float = 10.0
    reference_max_bad_ratio: float = 0.01
    flush_interval_seconds: float = 1.0
    max_future_seconds: int = 300
    log_level: str = "INFO"
    # Tuning (measured in BENCHMARKS.md; the defaults are what the benchmark runs with).
    stage1_max_records: int = 200_000  # per batch: more repetition per batch, fewer partial rows
    stage1_fetch_bytes: int = 4 * 1024 * 1024  # per partition and fetch
    stage2_max_records: int = 2000
    stage2_fetch_bytes: int = 8 * 1024 * 1024
    producer_linger_ms: int = 5
    max_pending_finals: int = 50_000  # stage 2 flushes early when this many final documents wait
    # Production connectivity (SPEC): names follow librdkafka's and Elastic's clients. Secrets are
    # never in repr (so never in a log line or an exception) and may come from <NAME>_FILE.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ssl_ca_location: str = ""
    kafka_ssl_certificate_location: str = ""
    kafka_ssl_key_location: str = ""
    kafka_ssl_key_password: str = field(default="", repr=False)
    kafka_ssl_endpoint_identification: str = "https"
    elasticsearch_api_key: str = field(default="", repr=False)
    elasticsearch_username: str = ""
    elasticsearch_password: str = field(default="", repr=False)
    elasticsearch_ca_certs: str = ""
    elasticsearch_ssl_fingerprint: str = ""
    elasticsearch_verify_certs: str = "true"
    elastic_cloud_id: str = ""
    aws_region: str = ""
    # The search engine behind ELASTICSEARCH_URL: auto asks the node once (GET /, OpenSearch says
    # version.distribution "opensearch"); Amazon OpenSearch Service signs requests with SigV4.
    search_engine: str = "auto"
    opensearch_aws_sigv4: str = ""
    web_bind: str = "127.0.0.1"
    web_auth_token: str = field(default="", repr=False)

    @property
    def dlq(self) -> str:
        return self.dlq_topic or f"{self.events_topic}-dlq"

    @property
    def partials_topic(self) -> str:
        """Internal topics carry APP_ID so two deployments or test runs never share state."""
        return f"{self.app_id}-partials"

    @property
    def window_ms(self) -> int:
        return self.window_seconds * 1000

    @property
    def lateness_ms(self) -> int:
        return self.allowed_lateness_seconds * 1000

    @property
    def verify_es_certs(self) -> bool:
        return self.elasticsearch_verify_certs.strip().lower() not in ("false", "0", "no", "off")

    def validate(self) -> Settings:
        self._validate_connectivity()
        if self.window_seconds <= 0:
            raise ConfigError(f"WINDOW_SECONDS must be a positive integer, got {self.window_seconds}")
        if self.allowed_lateness_seconds < 0:
            raise ConfigError("ALLOWED_LATENESS_SECONDS must be >= 0")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")
        for name in (
            "stage1_max_records",
            "stage1_fetch_bytes",
            "stage2_max_records",
            "stage2_fetch_bytes",
            "max_pending_finals",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.upper()} must be a positive integer, got {getattr(self, name)}")
        if self.producer_linger_ms < 0:
            raise ConfigError(f"PRODUCER_LINGER_MS must be >= 0, got {self.producer_linger_ms}")
        if self.max_future_seconds < 0:
            raise ConfigError(f"MAX_FUTURE_SECONDS must be >= 0, got {self.max_future_seconds}")
        if self.idle_timeout_seconds <= 0:
            raise ConfigError("IDLE_TIMEOUT_SECONDS must be > 0")
        if not 0 < self.web_port < 65536:
            raise ConfigError(f"WEB_PORT must be a port number, got {self.web_port}")
        if not self.elastic_cloud_id and not self.elasticsearch_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"ELASTICSEARCH_URL must start with http:// or https://, got {self.elasticsearch_url!r}"
            )
        if not self.app_id or any(c in self.app_id for c in " /\\"):
            raise ConfigError(
                f"APP_ID must be a non-empty name without spaces or slashes, got {self.app_id!r}"
            )
        if self.reference_data and not self.reference_data.startswith("s3://"):
            if not Path(self.reference_data).exists():
                raise ConfigError(f"REFERENCE_DATA file not found: {self.reference_data}")
        return self

    def _validate_connectivity(self) -> None:
        protocol = self.kafka_security_protocol.upper()
        if protocol not in KAFKA_PROTOCOLS:
            raise ConfigError(
                f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_PROTOCOLS)}, got {self.kafka_security_protocol!r}"
            )
        mechanism = self.kafka_sasl_mechanism.upper()
        if protocol.startswith("SASL"):
            if mechanism not in SASL_MECHANISMS:
                raise ConfigError(
                    f"KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)} with {protocol}, "
                    f"got {self.kafka_sasl_mechanism!r}"
                )
            if mechanism.startswith(("PLAIN", "SCRAM")) and not (
                self.kafka_sasl_username and self.kafka_sasl_password
            ):
                raise ConfigError(f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are needed for {mechanism}")
            if mechanism == "AWS_MSK_IAM" and not self.aws_region:
                raise ConfigError("AWS_REGION is needed for KAFKA_SASL_MECHANISM=AWS_MSK_IAM")
        if self.kafka_ssl_endpoint_identification.lower() not in ("https", "none"):
            raise ConfigError(
                f"KAFKA_SSL_ENDPOINT_IDENTIFICATION must be https or none, got {self.kafka_ssl_endpoint_identification!r}"
            )
        for name in (
            "kafka_ssl_ca_location",
            "kafka_ssl_certificate_location",
            "kafka_ssl_key_location",
            "elasticsearch_ca_certs",
        ):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ConfigError(f"{name.upper()} file not found: {path}")
        if bool(self.kafka_ssl_certificate_location) != bool(self.kafka_ssl_key_location):
            raise ConfigError("KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together (mTLS)")
        if bool(self.elasticsearch_username) != bool(self.elasticsearch_password):
            raise ConfigError("ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD go together")
        if self.search_engine.lower() not in SEARCH_ENGINES:
            raise ConfigError(
                f"SEARCH_ENGINE must be one of {', '.join(SEARCH_ENGINES)}, got {self.search_engine!r}"
            )
        sigv4 = self.opensearch_aws_sigv4.lower()
        if sigv4 not in ("", "es", "aoss"):
            raise ConfigError(
                f"OPENSEARCH_AWS_SIGV4 must be es (OpenSearch Service) or aoss (Serverless), got {self.opensearch_aws_sigv4!r}"
            )
        if sigv4 and not self.aws_region:
            raise ConfigError("AWS_REGION is needed for OPENSEARCH_AWS_SIGV4")
        if sigv4 and self.search_engine.lower() == "elasticsearch":
            raise ConfigError("OPENSEARCH_AWS_SIGV4 signs OpenSearch requests: use SEARCH_ENGINE=opensearch or auto")


SEARCH_ENGINES = ("auto", "elasticsearch", "opensearch")
KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "AWS_MSK_IAM")
SECRETS = (
    "kafka_sasl_password",
    "kafka_ssl_key_password",
    "elasticsearch_api_key",
    "elasticsearch_password",
    "web_auth_token",
)


def _env_name(field_name: str) -> str:
    return field_name.upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting (e.g. --events-topic), defaulting to None so the env var or default applies."""
    for f in fields(Settings):
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=None,
            help=f"env {_env_name(f.name)} (default {f.default!r})",
        )


def _secret_file(name: str) -> str | None:
    """<NAME>_FILE (Docker and Kubernetes secrets): the file's content, without its final newline."""
    path = os.environ.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{name}_FILE={path}: cannot read it ({exc.strerror})") from None


def load(args: argparse.Namespace | None = None, **overrides: object) -> Settings:
    """Flags win over environment variables, which win over defaults."""
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw: object = None
        if args is not None:
            raw = getattr(args, f.name, None)
        if raw is None:
            raw = os.environ.get(_env_name(f.name))
        if raw is None and f.name in SECRETS:
            raw = _secret_file(_env_name(f.name))
        if f.name in overrides:
            raw = overrides[f.name]
        if raw is None:
            continue
        kind: type = type(f.default)
        try:
            values[f.name] = kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{_env_name(f.name)}={raw!r} is not a valid {kind.__name__}") from None
    return Settings(**values).validate()  # type: ignore[arg-type]
