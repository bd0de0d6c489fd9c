"""Retention: delete this deployment's daily indices older than RETENTION_DAYS (whole indices).

Which days go is decided by clickagg.core.days (pure, fed the time); this is the thin I/O around it.
Only indices recording this deployment as owner in their mapping `_meta` are deleted: another
deployment's indices, or an index someone created by hand under a matching name, are left alone
(and said so, once per name). Several workers of one deployment may run it at the same moment: an
index already gone is not an error.
"""

from __future__ import annotations

import logging

from clickagg.core.days import to_delete
from clickagg.es.ownership import Owner, is_owned_by
from clickagg.es.port import SearchEngine
from clickagg.metrics import METRICS

log = logging.getLogger(__name__)

RUN_EVERY_S = 3600.0  # at most once an hour: a day boundary is the only thing that changes the answer


async def apply_retention(
    es: SearchEngine, index: str, owner: Owner, retention_days: int, now_ms: int, warned: set[str]
) -> list[str]:
    """Delete what retention says is gone now; returns the deleted names. `warned`: names already
    reported as not ours (kept by the caller across runs, so each is said once)."""
    if retention_days <= 0:
        return []
    found = await es.indices(f"{index}-*")
    deleted = []
    for name in to_delete(index, list(found), now_ms, retention_days):
        meta = (found[name].get("mappings") or {}).get("_meta")
        if not is_owned_by(meta, owner):
            if name not in warned:
                warned.add(name)
                log.warning(
                    "retention: %s is past RETENTION_DAYS=%d but not this deployment's: left alone",
                    name,
                    retention_days,
                )
            continue
        await es.delete_index(name, missing_ok=True)
        METRICS.inc("indices_deleted_total")
        log.info("retention: deleted %s (older than RETENTION_DAYS=%d)", name, retention_days)
        deleted.append(name)
    return deleted
