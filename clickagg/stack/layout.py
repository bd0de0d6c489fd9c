"""Where the local stack keeps downloads, data, logs and pid files, and which ports it uses."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from clickagg import config

KAFKA_VERSION = "3.9.1"
ELASTICSEARCH_VERSION = "8.19.21"
OPENSEARCH_VERSION = "2.19.6"  # opt-in: `clickagg stack up opensearch`


class StackError(Exception):
    """A stack problem the user can act on; printed as one line, exit code 1."""


PORTS = ("kafka_port", "es_port", "opensearch_port", "kafka_secure_port", "es_secure_port")


@dataclass(frozen=True)
class StackSettings:
    """The local stack's `CLICKAGG_*` variables, read by the same loader as the worker's Settings.

    Why: one place reads the environment, converts and validates, and a bad value is one line naming
    the variable (the stack's own error type, so `clickagg stack` reports it like its other errors).
    """

    cache_dir: str = str(Path.home() / ".cache" / "clickagg")
    stack_dir: str = str(Path.home() / ".local" / "state" / "clickagg" / "stack")
    kafka_port: int = 9092
    es_port: int = 9200
    opensearch_port: int = 9201
    kafka_secure_port: int = 9094
    es_secure_port: int = 9243
    stack_timeout: float = 180.0

    @staticmethod
    def env_name(name: str) -> str:
        return f"CLICKAGG_{name.upper()}"

    @classmethod
    def load(cls, **flags: object) -> StackSettings:
        env = {k: v for k, v in os.environ.items() if v}  # an empty variable means "not set"
        try:
            values, _ = config.resolve(fields(cls), env, flags=flags, name_of=cls.env_name)
        except config.ConfigError as exc:
            raise StackError(str(exc).removeprefix("env: ")) from None
        loaded = cls(**values)  # type: ignore[arg-type]
        for name in PORTS:
            port = getattr(loaded, name)
            if not 0 < port < 65536:
                raise StackError(f"{cls.env_name(name)}={port!r} is not a port number")
        if loaded.stack_timeout <= 0:
            raise StackError(f"CLICKAGG_STACK_TIMEOUT must be > 0 seconds, got {loaded.stack_timeout}")
        return loaded


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
    health_timeout_s: float = 180.0  # CLICKAGG_STACK_TIMEOUT: how long `up` waits for each service

    @classmethod
    def from_env(cls, kafka_port: int | None = None, es_port: int | None = None) -> StackLayout:
        """CLICKAGG_* variables (StackSettings); the port flags of `clickagg stack` win over them."""
        s = StackSettings.load(kafka_port=kafka_port, es_port=es_port)
        return cls(
            cache_dir=Path(s.cache_dir).expanduser(),
            state_dir=Path(s.stack_dir).expanduser(),
            kafka_port=s.kafka_port,
            es_port=s.es_port,
            opensearch_port=s.opensearch_port,
            kafka_secure_port=s.kafka_secure_port,
            es_secure_port=s.es_secure_port,
            health_timeout_s=s.stack_timeout,
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
