"""Index templates and mappings, installed by the worker at start.

The documents index's mapping (SPEC's field types) is clickagg.core.documents.DOCUMENT_MAPPING, next
to the document it types; the progress index's is here.

Each index and template also records its owner, the one deployment that may write it (see
clickagg/es/ownership.py); install() checks that record before it writes anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clickagg.config import Settings
from clickagg.core.days import daily_index, day_of_index, index_patterns
from clickagg.core.documents import DOCUMENT_MAPPING
from clickagg.es import engines
from clickagg.es.errors import BadRequest, NotFound
from clickagg.es.ownership import (
    DOCUMENT_FIELDS,
    PROGRESS_FIELDS,
    UNCLAIMED_META,
    Owner,
    OwnershipError,
    is_owned_by,
    missing_fields,
    refusal,
    stored_record,
)
from clickagg.es.port import SearchEngine

log = logging.getLogger(__name__)

# The documents index's mapping lives next to the document it types (clickagg.core.documents);
# MAPPINGS stays as its name here for the code that imports it from this module.
MAPPINGS = DOCUMENT_MAPPING


PROGRESS_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "partition": {"type": "integer"},
        "partitions": {"type": "integer"},
        "closed_below_ms": {"type": "long"},
        "window_ms": {"type": "long"},
        "lateness_ms": {"type": "long"},
        "updated_at": {"type": "date"},
    },
}


def progress_index(index: str) -> str:
    """One document per partials partition: windows closing at or before closed_below_ms are final."""
    return f"{index}-progress"


# The writer refreshes the documents index itself when it matters (clickagg/es/refresh_policy.py);
# the index's own schedule is only a safety net for documents written just before a worker died.
# (Anyone else writing to it with `refresh=wait_for` waits for that schedule: use `refresh=true`.)
DOCUMENTS_REFRESH_INTERVAL = "30s"


def template_name(index: str) -> str:
    return f"{index}-template"


@dataclass(frozen=True)
class _Target:
    """One name clickagg writes (the documents alias or the progress index), with its template."""

    name: str  # what readers use: the alias over the daily indices, or the progress index itself
    subject: str  # how a refusal names it
    mappings: dict[str, Any]
    settings: dict[str, Any]
    required: dict[str, str]  # the fields that make its documents clickagg's
    create_as: str  # the concrete index install() creates (today's daily index for documents)
    patterns: tuple[str, ...]  # the template's index patterns
    alias: bool = False  # `name` is an alias every index the template creates joins


def _targets(index: str, now_ms: int | None = None, hourly: str = "") -> list[_Target]:
    progress = progress_index(index)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    today = daily_index(index, now)
    rollups = (
        [
            _Target(
                hourly,
                f"HOURLY_INDEX {hourly}",
                DOCUMENT_MAPPING,
                {"refresh_interval": DOCUMENTS_REFRESH_INTERVAL},
                DOCUMENT_FIELDS,
                create_as=daily_index(hourly, now),
                patterns=tuple(index_patterns(hourly)),
                alias=True,
            )
        ]
        if hourly
        else []
    )
    return [
        _Target(
            index,
            f"ES_INDEX {index}",
            DOCUMENT_MAPPING,
            {"refresh_interval": DOCUMENTS_REFRESH_INTERVAL},
            DOCUMENT_FIELDS,
            create_as=today,
            patterns=tuple(index_patterns(index)),
            alias=True,
        ),
        _Target(
            progress,
            f"ES_INDEX {index}'s progress index {progress}",
            PROGRESS_MAPPINGS,
            {},
            PROGRESS_FIELDS,
            create_as=progress,
            patterns=(progress,),
        ),
    ] + rollups


async def install(es: SearchEngine, index: str, owner: Owner | None = None, hourly: str = "") -> None:
    """Make `index` and `<index>-progress` (and their templates) exist with clickagg's mappings.

    With an owner (the worker): refuse with OwnershipError, before writing anything, if any of them
    belongs to another deployment (ownership.refusal); otherwise record the owner in each, deciding
    again on what is there just before each write, and check once more at the end. So of two
    deployments installing at the same moment on a new index one wins and the other is refused
    (creating an index or a template is atomic), while workers of one deployment all start.
    Without an owner (tests, tools): create what is missing as unclaimed, touch nothing that exists.
    hourly: the hourly rollups' alias (Settings.hourly), installed and owned the same way; "" none.
    """
    if owner is None:
        for target in _targets(index, hourly=hourly):
            if not (await _template_meta(es, template_name(target.name)))[0]:
                await _put_template(es, target, None, create=True)
            await _create_index(es, target, UNCLAIMED_META)
        return
    await check(es, index, owner, hourly)
    for target in _targets(index, hourly=hourly):
        await _claim_template(es, index, target, owner)
        await _claim_index(es, index, target, owner)
    await check(es, index, owner, hourly)
    for target in _targets(index, hourly=hourly):
        _, meta = await _template_meta(es, template_name(target.name))
        if not is_owned_by(meta, owner):  # left by another installer: it follows its index's owner
            log.warning(
                "%s's index template records another owner than its index; rewriting it", target.subject
            )
            await _put_template(es, target, owner, create=False)


async def check(es: SearchEngine, index: str, owner: Owner, hourly: str = "") -> None:
    """Read only: raise OwnershipError if `owner` may not write `index`, its progress index or templates.

    An index decides for itself. A template decides while its indices do not exist (or are not
    yet this owner's), so a deleted index is not recreated under another owner; once the indices
    record this owner, a template recording someone else is a leftover, not a claim.
    """
    for target in _targets(index, hourly=hourly):
        mappings = await _mappings(es, target.name)
        if target.alias and target.name in mappings:
            raise OwnershipError(_single_index_refusal(target.name, target.subject.split()[0]))
        for concrete, mapping in mappings.items():
            await _refuse_index(es, index, target, owner, concrete, mapping)
        if not _all_owned_by(mappings, owner):
            exists, meta = await _template_meta(es, template_name(target.name))
            if exists:
                _refuse_template(target, meta, owner)


async def _refuse_index(
    es: SearchEngine, index: str, target: _Target, owner: Owner, concrete: str, mapping: Mapping[str, Any]
) -> None:
    meta = mapping.get("_meta")
    documents = await _documents(es, concrete) if stored_record(meta) is None else 0
    reason = refusal(
        # A daily index speaks for its alias (the name the operator set); anything else is named.
        target.subject
        if concrete == target.name or (target.alias and day_of_index(target.name, concrete) is not None)
        else f"{target.subject} (index {concrete})",
        meta,
        owner,
        documents=documents,
        missing_fields=missing_fields(mapping.get("properties"), target.required),
        adopt_targets=f"{index},{progress_index(index)}",
    )
    if reason:
        raise OwnershipError(reason)


def _refuse_template(target: _Target, meta: Any, owner: Owner) -> None:
    reason = refusal(f"{target.subject}'s index template {template_name(target.name)}", meta, owner)
    if reason:
        raise OwnershipError(reason)


def _all_owned_by(mappings: Mapping[str, Mapping[str, Any]], owner: Owner) -> bool:
    return bool(mappings) and all(is_owned_by(m.get("_meta"), owner) for m in mappings.values())


def check_before_start(settings: Settings) -> None:
    """The worker's first step, before Faust, Kafka or its web port: refuse another deployment's index.

    Raises OwnershipError (a ConfigError: the CLI prints its one line). Anything else, such as an
    Elasticsearch that does not answer yet, is left to the pipeline's own install, which waits for
    Elasticsearch and checks again. Runs on a private event loop, leaving the thread's loop to Faust.
    """

    async def run() -> None:
        es = engines.search_engine(settings, timeout_s=5, max_retries=0)
        try:
            await check(es, settings.es_index, Owner.of(settings), settings.hourly)
        except OwnershipError:
            raise
        except Exception as exc:
            log.debug("ownership pre-check skipped: %r", exc)
        finally:
            await es.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


async def _put_template(es: SearchEngine, target: _Target, owner: Owner | None, create: bool) -> bool:
    """False when `create` and the template exists already (another installer was first)."""
    try:
        await es.put_index_template(
            template_name(target.name),
            {
                "index_patterns": list(target.patterns),
                "template": {
                    "settings": {"number_of_shards": 1, "number_of_replicas": 0, **target.settings},
                    "mappings": {**target.mappings, "_meta": owner.meta() if owner else UNCLAIMED_META},
                    **({"aliases": {target.name: {}}} if target.alias else {}),
                },
                "priority": 500,
            },
            create=create,
        )
        return True
    except BadRequest as exc:
        if create and "already exists" in str(exc):
            return False
        raise


async def _create_index(es: SearchEngine, target: _Target, meta: dict[str, Any]) -> bool:
    """False when the index exists already (perhaps created a moment ago by another installer)."""
    if await es.exists(target.create_as):
        return False
    try:
        await es.create_index(target.create_as, {"mappings": {**target.mappings, "_meta": meta}})
        return True
    except BadRequest as exc:
        if "resource_already_exists_exception" in str(exc):
            return False
        raise


async def _claim_template(es: SearchEngine, index: str, target: _Target, owner: Owner) -> None:
    """Create it, or rewrite it (keeping it current with this version's mapping) when it is ours, ours
    to claim, or its indices are ours already: another deployment's is never overwritten."""
    name = template_name(target.name)
    exists, meta = await _template_meta(es, name)
    if not exists:
        if await _put_template(es, target, owner, create=True):
            return
        _, meta = await _template_meta(es, name)  # another installer created it a moment ago
    if not is_owned_by(meta, owner) and not _all_owned_by(await _mappings(es, target.name), owner):
        _refuse_template(target, meta, owner)
    await _put_template(es, target, owner, create=False)


async def _claim_index(es: SearchEngine, index: str, target: _Target, owner: Owner) -> None:
    """Create it, or record the owner in an existing one that is unclaimed or empty without owner."""
    if await _create_index(es, target, owner.meta()):
        return
    for concrete, mapping in (await _mappings(es, target.name)).items():
        if is_owned_by(mapping.get("_meta"), owner):
            continue
        await _refuse_index(es, index, target, owner, concrete, mapping)
        try:
            await es.put_mapping(
                concrete,
                {
                    "dynamic": target.mappings["dynamic"],
                    "properties": target.mappings["properties"],
                    "_meta": owner.meta(),
                },
            )
        except BadRequest as exc:
            raise OwnershipError(
                f"{target.subject} exists with a mapping clickagg cannot use ({_reason(exc)}): "
                "use another ES_INDEX"
            ) from None
        log.info("%s: recorded this deployment as its owner (%s)", target.subject, owner.describe())


async def _mappings(es: SearchEngine, name: str) -> dict[str, Mapping[str, Any]]:
    """Concrete index -> its mapping (several when `name` is an alias); empty when it does not exist."""
    try:
        resp = await es.get_mapping(name)
    except NotFound:
        return {}
    return {concrete: body.get("mappings", {}) for concrete, body in resp.items()}


async def _documents(es: SearchEngine, name: str) -> int:
    """Documents in an index, counting those written since its last refresh (30 s apart here)."""
    await es.refresh(name)
    return await es.count(name)


async def _template_meta(es: SearchEngine, name: str) -> tuple[bool, Any]:
    """(exists, the `_meta` of the mappings the template gives new indices)."""
    templates = await es.get_index_templates(name)
    if not templates:
        return False, None
    template = templates[0]["index_template"].get("template", {})
    return True, template.get("mappings", {}).get("_meta")


def _single_index_refusal(index: str, setting: str = "ES_INDEX") -> str:
    """ES_INDEX (or HOURLY_INDEX) is a concrete index: clickagg before daily indices, or someone else's."""
    also = f" and {index}-progress" if setting == "ES_INDEX" else ""
    return (
        f"{setting} {index} is one index (clickagg before daily indices, or someone else's), but clickagg "
        f"writes daily indices {index}-YYYY.MM.DD behind an alias named {index}: use a new {setting} (the old "
        f"index stays readable under its name) or delete {index}{also} to reuse the name"
    )


def _reason(exc: BadRequest) -> str:
    return exc.reason
