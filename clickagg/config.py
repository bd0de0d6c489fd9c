"""SPEC's configuration contract: environment variables with matching CLI flags, validated up front.

Every setting comes from one of four places, in this order of precedence: a command-line flag, an
environment variable (or `<NAME>_FILE` for a secret), the TOML config file (`--config` or
`CLICKAGG_CONFIG`; keys are the lower-case setting names), the default. `explain()` says which one
each value came from (`clickagg config show`), so an operator never has to guess why a value is what it is.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any


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
    retention_days: int = 30  # daily indices older than this are deleted (0: keep everything)
    hourly_index: str = "auto"  # hourly rollups' alias; auto: ES_INDEX with -minutely -> -hourly; "": off
    hourly_retention_days: int = 400
    log_level: str = "INFO"
    log_format: str = "text"  # or json: one ECS document per line (ecs-logging), for log shippers
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
    def hourly(self) -> str:
        """The hourly rollups' alias, or "" when they are off (HOURLY_INDEX empty)."""
        if self.hourly_index != "auto":
            return self.hourly_index
        if self.es_index.endswith("-minutely"):
            return self.es_index[: -len("-minutely")] + "-hourly"
        return f"{self.es_index}-hourly"

    @property
    def retentions(self) -> tuple[int, ...]:
        """The retentions an event must fit: its minute's day and (with rollups) its hour's day.

        An event is expired when either day is gone (clickagg.core.days.expire_before_ms), so no
        row is ever counted in one resolution and missing from the other."""
        return (self.retention_days, self.hourly_retention_days) if self.hourly else (self.retention_days,)

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
        if not [h for h in self.kafka_bootstrap_servers.split(",") if h.strip()]:
            raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is empty: give host:port of at least one broker")
        self._validate_connectivity()
        if self.window_seconds <= 0:
            raise ConfigError(f"WINDOW_SECONDS must be a positive integer, got {self.window_seconds}")
        if self.allowed_lateness_seconds < 0:
            raise ConfigError("ALLOWED_LATENESS_SECONDS must be >= 0")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")
        if self.log_format.lower() not in ("text", "json"):
            raise ConfigError(f"LOG_FORMAT must be text or json, got {self.log_format!r}")
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
        if self.retention_days < 0:
            raise ConfigError(f"RETENTION_DAYS must be >= 0 (0 keeps every day), got {self.retention_days}")
        if self.hourly_retention_days < 0:
            raise ConfigError(
                f"HOURLY_RETENTION_DAYS must be >= 0 (0 keeps every day), got {self.hourly_retention_days}"
            )
        if self.hourly and self.hourly in (self.es_index, progress_name(self.es_index)):
            raise ConfigError(
                f"HOURLY_INDEX must differ from ES_INDEX and its progress index, got {self.hourly!r}"
            )
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
        if not 0 <= self.reference_max_bad_ratio <= 1:
            raise ConfigError(
                f"REFERENCE_MAX_BAD_RATIO must be between 0 and 1 (a fraction of the rows), got {self.reference_max_bad_ratio}"
            )
        if self.reference_reload_seconds <= 0:
            raise ConfigError(f"REFERENCE_RELOAD_SECONDS must be > 0, got {self.reference_reload_seconds}")
        if self.flush_interval_seconds <= 0:
            raise ConfigError(f"FLUSH_INTERVAL_SECONDS must be > 0, got {self.flush_interval_seconds}")
        if self.partials_partitions < 0:
            raise ConfigError(
                f"PARTIALS_PARTITIONS must be >= 0 (0: as many as the events topic), got {self.partials_partitions}"
            )
        if self.reference_data and not self.reference_data.startswith("s3://"):
            path = Path(self.reference_data)
            if not path.exists():
                raise ConfigError(f"REFERENCE_DATA file not found: {self.reference_data}")
            if path.is_dir():
                raise ConfigError(f"REFERENCE_DATA is a directory, not a CSV file: {self.reference_data}")
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
            raise ConfigError(
                "OPENSEARCH_AWS_SIGV4 signs OpenSearch requests: use SEARCH_ENGINE=opensearch or auto"
            )


def progress_name(index: str) -> str:
    return f"{index}-progress"


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


def env_name(field_name: str) -> str:
    return field_name.upper()


def add_arguments(parser: argparse._ActionsContainer, names: Iterable[str] | None = None) -> None:
    """One flag per setting the command uses (e.g. --events-topic), None by default so env, file or default apply.

    `names`: the settings this command reads (clickagg.settings_doc.FOR_COMMAND); None: all of them.
    A command lists only its own flags, so `--help` says what matters to it.
    """
    from clickagg.settings_doc import HELP

    wanted = set(names) if names is not None else None
    for f in fields(Settings):
        if wanted is not None and f.name not in wanted:
            continue
        default = "" if f.name in SECRETS else f" (default {f.default!r})"
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=None,
            help=f"{HELP[f.name]}; env {env_name(f.name)}{default}",
        )


def _secret_file(name: str) -> str | None:
    """<NAME>_FILE (Docker and Kubernetes secrets): the file's content, without its final newline."""
    path = os.environ.get(f"{name}_FILE")
    if not path:
        return None
    return _read_secret(f"{name}_FILE", path)


def _read_secret(where: str, path: str) -> str:
    try:
        return Path(path).expanduser().read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{where}={path}: cannot read it ({exc.strerror})") from None


def config_path(args: argparse.Namespace | None = None) -> str | None:
    """--config, else CLICKAGG_CONFIG, else none (no config file is fine)."""
    path = getattr(args, "config", None) if args is not None else None
    return path or os.environ.get("CLICKAGG_CONFIG") or None


def read_file(path: str, known: Iterable[str], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The TOML file's settings; a missing file, bad TOML or an unknown key is one ConfigError line.

    A secret may also be given as `<name>_file` (a path), like the `<NAME>_FILE` variables.
    """
    try:
        with open(Path(path).expanduser(), "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path} (--config or CLICKAGG_CONFIG)") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    known, secrets = set(known), set(secrets)
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key[: -len("_file")] if key.endswith("_file") and key[: -len("_file")] in secrets else key
        if name not in known:
            raise ConfigError(
                f"config file {path}: unknown setting {key!r} (keys are lower-case setting names, "
                "e.g. kafka_bootstrap_servers; `clickagg config show` lists them)"
            )
        if isinstance(value, dict | list):
            raise ConfigError(f"config file {path}: {key} must be a single value, not a table or list")
        values[name] = _read_secret(f"{path}: {key}", str(value)) if name != key else value
    return values


def _convert(name: str, raw: object, kind: type, where: str) -> object:
    """A flag's or variable's text, or a TOML value, as the setting's type; one line if it does not fit."""
    if isinstance(raw, bool):  # TOML true/false: only for text settings such as ELASTICSEARCH_VERIFY_CERTS
        if kind is str:
            return "true" if raw else "false"
        raise ConfigError(f"{where}: {name} must be a {kind.__name__}, got {raw!r}")
    if kind is int and isinstance(raw, float):
        raise ConfigError(f"{where}: {name} must be a whole number, got {raw!r}")
    if kind is str and not isinstance(raw, str):
        raw = str(raw)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name}={raw!r} is not a valid {kind.__name__}") from None


def resolve(
    specs: Iterable[Field[Any]],
    env: Mapping[str, str],
    *,
    flags: Mapping[str, object] | None = None,
    file_values: Mapping[str, object] | None = None,
    file_label: str = "file",
    secrets: Iterable[str] = (),
    name_of: Any = env_name,
) -> tuple[dict[str, object], dict[str, str]]:
    """Values and where each came from: flag > env (or <NAME>_FILE for a secret) > file > default.

    Shared by Settings and the local stack's settings (clickagg.stack.layout), so both read the
    environment in one way and fail with one line naming the variable.
    """
    flags, file_values, secrets = flags or {}, file_values or {}, set(secrets)
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for f in specs:
        name = name_of(f.name)
        kind: type = type(f.default) if f.default is not MISSING else str
        flag = flags.get(f.name)
        if flag is not None:
            values[f.name], sources[f.name] = _convert(name, flag, kind, "flag"), "flag"
        elif env.get(name) is not None:
            values[f.name], sources[f.name] = _convert(name, env[name], kind, "env"), "env"
        elif f.name in secrets and env.get(f"{name}_FILE"):
            values[f.name] = _read_secret(f"{name}_FILE", env[f"{name}_FILE"])
            sources[f.name] = f"env ({name}_FILE)"
        elif f.name in file_values:
            values[f.name] = _convert(name, file_values[f.name], kind, file_label)
            sources[f.name] = file_label
        else:
            sources[f.name] = "default"
    return values, sources


def explain(args: argparse.Namespace | None = None, **overrides: object) -> tuple[Settings, dict[str, str]]:
    """The effective settings and, per setting, where it came from (flag, env, file <path>, default)."""
    path = config_path(args)
    names = [f.name for f in fields(Settings)]
    file_values = read_file(path, names, SECRETS) if path else {}
    flags = {n: getattr(args, n, None) for n in names} if args is not None else {}
    flags.update({k: v for k, v in overrides.items() if v is not None})
    values, sources = resolve(
        fields(Settings),
        os.environ,
        flags=flags,
        file_values=file_values,
        file_label=f"file {path}",
        secrets=SECRETS,
    )
    return Settings(**values).validate(), sources  # type: ignore[arg-type]


def load(args: argparse.Namespace | None = None, **overrides: object) -> Settings:
    """Flags (and keyword overrides) win over environment variables, then the config file, then defaults."""
    return explain(args, **overrides)[0]


def show(settings: Settings, sources: Mapping[str, str]) -> list[str]:
    """`clickagg config show`: TOML lines (paste them into a config file), secrets redacted, with their source."""
    lines = []
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if f.name in SECRETS and value:
            text = '"<redacted>"'
        elif isinstance(value, str):
            text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            text = repr(value)
        lines.append(f"{f.name} = {text}  # {sources.get(f.name, 'default')}")
    return lines
