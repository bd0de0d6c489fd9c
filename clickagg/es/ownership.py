"""Who may write an output index: the one deployment (APP_ID, window size, lateness) recorded in it.

The record lives in the mapping's `_meta` of the documents index, of its progress index and of their
index templates (so a recreated index carries it):

    {"clickagg": {"app_id": "clickagg", "window_ms": 60000, "lateness_ms": 10000}}

This module only decides, from what is stored and what the worker is configured with; reading and
writing Elasticsearch is clickagg.es.schema's job. The decision for one object (index or template):

- it records an owner: this worker may write it only if APP_ID, window and lateness all equal its own;
- it records `{"clickagg": {}}` (prepared by clickagg's own tooling, `schema.install` without an
  owner, as tests and the benchmark do): unclaimed, the first worker claims it;
- it records nothing (an older clickagg, or someone else): claimed only if it holds no documents;
  with documents it is refused, with the command that adopts it if they are this deployment's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clickagg.config import ConfigError, Settings

META_KEY = "clickagg"

# The fields that make documents clickagg's (SPEC's contract), by index kind.
DOCUMENT_FIELDS = {
    "time": "date",
    "article_id": "long",
    "impression": "long",
    "click": "long",
    "final": "boolean",
}
PROGRESS_FIELDS = {"partition": "integer", "closed_below_ms": "long"}


class OwnershipError(ConfigError):
    """The index belongs to another deployment (or to nobody known): this worker must not write it."""


@dataclass(frozen=True)
class Owner:
    app_id: str
    window_ms: int
    lateness_ms: int

    @classmethod
    def of(cls, settings: Settings) -> Owner:
        return cls(settings.app_id, settings.window_ms, settings.lateness_ms)

    def meta(self) -> dict[str, Any]:
        """The mapping `_meta` that records this owner."""
        return {
            META_KEY: {"app_id": self.app_id, "window_ms": self.window_ms, "lateness_ms": self.lateness_ms}
        }

    def describe(self) -> str:
        return (
            f"APP_ID={self.app_id} (WINDOW_SECONDS={_seconds(self.window_ms)}, "
            f"ALLOWED_LATENESS_SECONDS={_seconds(self.lateness_ms)})"
        )


UNCLAIMED_META: dict[str, Any] = {META_KEY: {}}


def stored_record(meta: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The `clickagg` entry of a mapping's `_meta`, or None when there is none."""
    if not isinstance(meta, Mapping):
        return None
    record = meta.get(META_KEY)
    return record if isinstance(record, Mapping) else None


def is_owned_by(meta: Mapping[str, Any] | None, owner: Owner) -> bool:
    record = stored_record(meta)
    return record is not None and _as_owner(record) == owner


def refusal(
    subject: str,
    meta: Mapping[str, Any] | None,
    mine: Owner,
    *,
    documents: int = 0,
    missing_fields: list[str] | None = None,
    adopt_targets: str = "",
) -> str | None:
    """None if this worker may write the object described by `subject`, else the one-line reason.

    subject: how the message names the object ("ES_INDEX clickstream-minutely", ...);
    meta: its stored mapping `_meta` (None: none); documents: how many it holds (0 for a template);
    missing_fields: clickagg's fields its mapping lacks or types differently (only looked at when
    it records no owner and holds documents); adopt_targets: the comma-separated indices the adopt
    command must set the owner on.
    """
    record = stored_record(meta)
    if record is not None:
        if "app_id" not in record:
            return None  # unclaimed: prepared by clickagg without an owner
        stored = _as_owner(record)
        if stored == mine:
            return None
        return (
            f"{subject} belongs to deployment {_describe_stored(record)}; this worker has "
            f"{_difference(record, mine)}: use another ES_INDEX or the owner's settings"
        )
    if documents <= 0:
        return None  # nothing in it to mix with: claimed
    if missing_fields:
        return (
            f"{subject} holds {documents} documents and no clickagg owner, and its mapping is not "
            f"clickagg's (no {', '.join(missing_fields)}): use another ES_INDEX"
        )
    return (
        f"{subject} holds {documents} clickagg documents but records no owner (written by an older "
        f"clickagg or by hand); if they are this deployment's ({mine.describe()}), adopt it with: "
        f"{adopt_command(adopt_targets, mine)}; otherwise use another ES_INDEX"
    )


def adopt_command(targets: str, owner: Owner) -> str:
    """The documented command that records `owner` in existing indices (ELASTICSEARCH_URL unexpanded:
    it may hold credentials, which never go into a message)."""
    body = json.dumps({"_meta": owner.meta()}, separators=(",", ":"))
    return (
        f'curl -X PUT "$ELASTICSEARCH_URL/{targets}/_mapping?ignore_unavailable=true" '
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


def missing_fields(properties: Mapping[str, Any] | None, required: Mapping[str, str]) -> list[str]:
    """The required fields a mapping's properties lack or give another type, as `name:type`."""
    props = properties if isinstance(properties, Mapping) else {}
    out = []
    for name, kind in required.items():
        field = props.get(name)
        if not isinstance(field, Mapping) or field.get("type") != kind:
            out.append(f"{name}:{kind}")
    return out


def _as_owner(record: Mapping[str, Any]) -> Owner | None:
    app_id, window, lateness = record.get("app_id"), record.get("window_ms"), record.get("lateness_ms")
    if not isinstance(app_id, str) or not isinstance(window, int) or not isinstance(lateness, int):
        return None
    if isinstance(window, bool) or isinstance(lateness, bool):
        return None
    return Owner(app_id, window, lateness)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _equal_int(stored: object, mine: int) -> bool:
    return _is_int(stored) and stored == mine


def _describe_stored(record: Mapping[str, Any]) -> str:
    return (
        f"APP_ID={record.get('app_id')} (WINDOW_SECONDS={_seconds(record.get('window_ms'))}, "
        f"ALLOWED_LATENESS_SECONDS={_seconds(record.get('lateness_ms'))})"
    )


def _difference(record: Mapping[str, Any], mine: Owner) -> str:
    """This worker's settings that differ from the stored owner's, as the operator would set them."""
    semantics = []
    if not _equal_int(record.get("window_ms"), mine.window_ms):
        semantics.append(f"WINDOW_SECONDS={_seconds(mine.window_ms)}")
    if not _equal_int(record.get("lateness_ms"), mine.lateness_ms):
        semantics.append(f"ALLOWED_LATENESS_SECONDS={_seconds(mine.lateness_ms)}")
    if record.get("app_id") != mine.app_id:
        return f"APP_ID={mine.app_id}" + (f" ({', '.join(semantics)})" if semantics else "")
    return ", ".join(semantics)


def _seconds(ms: object) -> str:
    if not _is_int(ms):
        return f"{ms!r} ms (unreadable)"
    assert isinstance(ms, int)
    return str(ms // 1000) if ms % 1000 == 0 else str(ms / 1000)
