"""Where the local stack keeps downloads, data, logs and pid files, and which ports it uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "3.9.1"
ELASTICSEARCH_VERSION = "8.19.21"
OPENSEARCH_VERSION = "2.19.6"  # opt-in: `clickagg stack up opensearch`


class StackError(Exception):
    """A stack problem the user can act on; printed as one line, exit code 1."""


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


def _env_port(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        port = int(value)
    except ValueError:
        raise StackError(f"{name}={value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise StackError(f"{name}={value!r} is not a port number")
    return port


@dataclass(frozen=True)
class StackLayout:
    """Paths and ports of one local stack; two layouts with different state dirs and ports coexist."""

    cache_dir: Path
    state_dir: Path
    kafka_port: int
    es_port: int
    opensearch_port: int = 9201
    kafka_secure_port: int = 9094  # `stack up --secure`: Kafka's SASL_SSL listener
    es_secure_port: int = 9243  # `stack up --secure`: TLS + auth (nginx) in front of Elasticsearch

    @classmethod
    def from_env(cls, kafka_port: int | None = None, es_port: int | None = None) -> StackLayout:
        cache = _env_path("CLICKAGG_CACHE_DIR", Path.home() / ".cache" / "clickagg")
        state = _env_path("CLICKAGG_STACK_DIR", Path.home() / ".local" / "state" / "clickagg" / "stack")
        return cls(
            cache_dir=cache,
            state_dir=state,
            kafka_port=kafka_port or _env_port("CLICKAGG_KAFKA_PORT", 9092),
            es_port=es_port or _env_port("CLICKAGG_ES_PORT", 9200),
            opensearch_port=_env_port("CLICKAGG_OPENSEARCH_PORT", 9201),
            kafka_secure_port=_env_port("CLICKAGG_KAFKA_SECURE_PORT", 9094),
            es_secure_port=_env_port("CLICKAGG_ES_SECURE_PORT", 9243),
        )

    @property
    def kafka_controller_port(self) -> int:
        return self.kafka_port + 10001

    @property
    def es_transport_port(self) -> int:
        return self.es_port + 100

    @property
    def kafka_lib(self) -> Path:
        return self.cache_dir / f"kafka-{KAFKA_VERSION}" / "lib"

    @property
    def es_lib(self) -> Path:
        return self.cache_dir / f"elasticsearch-{ELASTICSEARCH_VERSION}" / "lib"

    @property
    def es_launcher_dir(self) -> Path:
        return self.cache_dir / f"elasticsearch-{ELASTICSEARCH_VERSION}" / "launcher"

    def service_dir(self, name: str) -> Path:
        return self.state_dir / name

    def pid_file(self, name: str) -> Path:
        return self.service_dir(name) / "pid"

    def log_file(self, name: str) -> Path:
        return self.service_dir(name) / "service.log"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def es_url(self) -> str:
        return f"http://127.0.0.1:{self.es_port}"
