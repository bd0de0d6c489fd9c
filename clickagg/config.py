"""SPEC's configuration contract: environment variables with matching CLI flags, validated up front."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
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

    def validate(self) -> Settings:
        if self.window_seconds <= 0:
            raise ConfigError(f"WINDOW_SECONDS must be a positive integer, got {self.window_seconds}")
        if self.allowed_lateness_seconds < 0:
            raise ConfigError("ALLOWED_LATENESS_SECONDS must be >= 0")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")
        if self.max_future_seconds < 0:
            raise ConfigError(f"MAX_FUTURE_SECONDS must be >= 0, got {self.max_future_seconds}")
        if self.idle_timeout_seconds <= 0:
            raise ConfigError("IDLE_TIMEOUT_SECONDS must be > 0")
        if not 0 < self.web_port < 65536:
            raise ConfigError(f"WEB_PORT must be a port number, got {self.web_port}")
        if not self.elasticsearch_url.startswith(("http://", "https://")):
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


def load(args: argparse.Namespace | None = None, **overrides: object) -> Settings:
    """Flags win over environment variables, which win over defaults."""
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw: object = None
        if args is not None:
            raw = getattr(args, f.name, None)
        if raw is None:
            raw = os.environ.get(_env_name(f.name))
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
